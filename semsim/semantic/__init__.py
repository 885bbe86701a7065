"""semsim.semantic."""
