"""SCSC: standards-compatible semantic communication (Han et al.): learned pre-processing
(PPEN) and precoding/combining enhancement (PCEN) around a real HEVC + LDPC + QPSK + SVD
chain, trained through a proxy network. See docs/scsc.md."""
