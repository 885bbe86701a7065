"""semsim: link-level simulation of semantic communication over wireless MIMO links.

Packages
--------
``semsim.phy``       physical layer (Sionna blocks wrapped as Keras layers)
``semsim.semantic``  learned semantic blocks (Swin, CCAM, entropy, policies, ViT compensation)
``semsim.systems``   end-to-end systems (learned and classic) behind one interface
``semsim.codecs``    classic image codecs (HEVC intra, JPEG, JPEG 2000)
``semsim.data``      data sets and ``tf.data`` pipelines
``semsim.scenario``  YAML scenarios, their schema and the runner
``semsim.report``    results files, tables and plots
``semsim.cli``       the ``semsim`` command
"""

__version__ = "0.1.0"
