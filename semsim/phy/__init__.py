"""semsim.phy: the shared physical layer, Sionna blocks wrapped as Keras 3 layers.

Conventions: complex64 signals shaped ``[batch, ..., antennas, symbols]``; SNR in dB is
the per-receive-antenna average SNR (see :mod:`semsim.phy.channel` for its exact
calibration); noise variances ``no`` are per complex sample, linear.
"""

from semsim.phy.analog import AnalogLink, ChannelState, Transmission
from semsim.phy.channel import MultiUserUplinkChannel, RayleighMIMOChannel, make_channel
from semsim.phy.csi import NoisyCSI, PerfectCSI, PilotLSEstimator, make_csi, orthogonal_pilots
from semsim.phy.detection import LMMSEDetector, ZFDetector
from semsim.phy.power import PowerNormalization
from semsim.phy.spec import CSISpec, LinkSpec
from semsim.phy.utils import complex_to_reals, reals_to_complex

__all__ = [
    "AnalogLink",
    "ChannelState",
    "Transmission",
    "make_channel",
    "CSISpec",
    "LinkSpec",
    "RayleighMIMOChannel",
    "MultiUserUplinkChannel",
    "PerfectCSI",
    "PilotLSEstimator",
    "NoisyCSI",
    "make_csi",
    "orthogonal_pilots",
    "LMMSEDetector",
    "ZFDetector",
    "PowerNormalization",
    "reals_to_complex",
    "complex_to_reals",
]

# Digital chain (QAM, LDPC, DVB-S2, DigitalLink): appended below.

from semsim.phy.digital import DigitalLink  # noqa: E402
from semsim.phy.dvbs2 import DVBS2LDPCCodec  # noqa: E402
from semsim.phy.ldpc import LDPC5GCodec  # noqa: E402
from semsim.phy.qam import QAMDemapper, QAMMapper  # noqa: E402

__all__ += ["QAMMapper", "QAMDemapper", "LDPC5GCodec", "DVBS2LDPCCodec", "DigitalLink"]
