"""semsim.report."""
