"""semsim.phy: the shared physical layer, Sionna blocks wrapped as Keras 3 layers.

Conventions: complex64 signals shaped ``[batch, ..., antennas, symbols]``; SNR in dB is
the per-receive-antenna average SNR (see :mod:`semsim.phy.channel` for its exact
calibration); noise variances ``no`` are per complex sample, linear.

The names below are imported on first access (``semsim.phy.AnalogLink``), so that
importing a light submodule (:mod:`semsim.phy.spec`, used to validate scenarios) does not
import TensorFlow or Sionna.
"""

import importlib

#: Public name -> the submodule defining it.
_EXPORTS: dict[str, str] = {
    "AnalogLink": "analog",
    "ChannelState": "analog",
    "Transmission": "analog",
    "make_channel": "channel",
    "CSISpec": "spec",
    "LinkSpec": "spec",
    "RayleighMIMOChannel": "channel",
    "MultiUserUplinkChannel": "channel",
    "PerfectCSI": "csi",
    "PilotLSEstimator": "csi",
    "NoisyCSI": "csi",
    "make_csi": "csi",
    "orthogonal_pilots": "csi",
    "LMMSEDetector": "detection",
    "ZFDetector": "detection",
    "PowerNormalization": "power",
    "reals_to_complex": "utils",
    "complex_to_reals": "utils",
    # digital chain
    "QAMMapper": "qam",
    "QAMDemapper": "qam",
    "LDPC5GCodec": "ldpc",
    "DVBS2LDPCCodec": "dvbs2",
    "DigitalLink": "digital",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'semsim.phy' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"semsim.phy.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
