"""semsim.scenario."""
