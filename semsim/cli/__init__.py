"""semsim.cli."""
