"""semsim.systems."""
