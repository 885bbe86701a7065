"""semsim.codecs."""
