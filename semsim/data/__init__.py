"""semsim.data."""
