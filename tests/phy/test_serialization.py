"""Every layer of ``semsim.phy`` is registered as Keras-serializable: its config
round-trips through Keras serialization, and a user's functional model holding phy
layers saves to ``.keras`` and reloads (in safe mode) computing the same outputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from semsim import phy
from semsim.phy.spec import CSISpec, LinkSpec

LAYERS = [
    phy.AnalogLink(LinkSpec(num_rx_ant=4, users=2, antennas_per_user=1,
                            csi=CSISpec(mode="ls", pilots=2), detector="zf")),
    phy.RayleighMIMOChannel(4, 2, fading="fast", rx_correlation=0.3),
    phy.MultiUserUplinkChannel(3, 4, 1, fading="block"),
    phy.PerfectCSI(),
    phy.PilotLSEstimator(2, 4, pilot_power=2.0),
    phy.NoisyCSI(error_var=0.1),
    phy.LMMSEDetector(unbiased=True, symbol_energy=2.0),
    phy.ZFDetector(symbol_energy=0.5),
    phy.PowerNormalization(2.0, axes=(2, 3)),
    phy.QAMMapper("16qam"),
    phy.QAMDemapper("64qam", hard_out=True),
    phy.LDPC5GCodec(64, 128, num_iter=5),
    phy.DVBS2LDPCCodec("short"),
    phy.DigitalLink("qpsk", code="ldpc5g", k=64, n=128, num_tx_ant=2, num_rx_ant=2),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: type(layer).__name__)
def test_config_round_trips_through_keras_serialization(layer):
    cls = type(layer)
    assert keras.saving.get_registered_name(cls) == f"semsim.phy>{cls.__name__}"
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(again) is cls
    assert again.get_config() == layer.get_config()


def test_every_public_phy_layer_is_covered():
    public = {name for name in phy.__all__
              if isinstance(getattr(phy, name), type)
              and issubclass(getattr(phy, name), keras.layers.Layer)}
    assert public == {type(layer).__name__ for layer in LAYERS}


def test_functional_model_with_phy_layers_saves_and_reloads(tmp_path):
    bits = keras.Input((2, 64), name="bits")                      # [B, Nt, 16 symbols x 4 bits]
    h = keras.Input((2, 2), dtype="complex64", name="h")         # [B, Nr, Nt]
    no = keras.Input((), name="no")                              # [B] noise variance
    x = phy.PowerNormalization(1.0)(phy.QAMMapper("16qam")(bits))   # [B, Nt, 16] complex64
    x_hat, no_eff = phy.LMMSEDetector()(keras.ops.matmul(h, x), h, no)
    llr = phy.QAMDemapper("16qam")(x_hat, no_eff)
    model = keras.Model({"bits": bits, "h": h, "no": no}, {"x_hat": x_hat, "llr": llr})
    rng = np.random.default_rng(0)
    inputs = {
        "bits": rng.integers(0, 2, (3, 2, 64)).astype("float32"),
        # a unitary (rotation with phases) channel: well conditioned
        "h": np.tile(np.array([[0.6, -0.8j], [0.8, 0.6j]], "complex64"), (3, 1, 1)),
        "no": np.full((3,), 1e-4, "float32"),
    }
    path = tmp_path / "user_model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    expected, got = model(inputs), loaded(inputs)
    for key in ("x_hat", "llr"):
        np.testing.assert_allclose(np.asarray(got[key]), np.asarray(expected[key]), atol=1e-5)
    # noiseless, well-conditioned: the detector recovers the sent symbols' hard decisions
    np.testing.assert_array_equal(np.asarray(got["llr"]) > 0, inputs["bits"] > 0.5)
