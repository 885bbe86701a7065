"""Equal terms: every shipped system of a scenario meets the same physical layer.

The channel layer is spied on (its ``call`` wrapped), so these tests see the noise variance
and the sent mask that each system's transmission actually met, not a recomputation.
"""

import numpy as np
import pytest
import tensorflow as tf

from semsim.phy import MultiUserUplinkChannel, RayleighMIMOChannel
from semsim.seeding import set_seed
from semsim.systems.base import CSISpec, LinkSpec, TrainSpec
from semsim.systems.registry import get_system_type

SIZE = 16
SNR_DB = 10.0
TINY = {
    "deepjscc": dict(filters=(4, 4, 4, 4), cr=1 / 6, eval_batch_size=4),
    "adjscc": dict(filters=(4, 4, 4, 4), cr=1 / 6, eval_batch_size=4),
    "reference": dict(num_maps=4, encoder_dims=(8, 12), encoder_depths=(1, 1),
                      encoder_heads=(2, 2), decoder_dims=(12, 8), decoder_depths=(1, 1),
                      decoder_heads=(2, 2), window_size=2, channel_embed_dim=8,
                      entropy_embed_dim=8, hidden_units=16),
    "swinjscc": dict(channels=8, rates=(1, 2, 4, 8), encoder_dims=(8, 8), encoder_depths=(1, 1),
                     encoder_heads=(2, 2), decoder_dims=(8, 8), decoder_depths=(1, 1),
                     decoder_heads=(2, 2), hidden=8, eval_batch_size=4),
    "multiuser": dict(num_maps=4, filters=(8, 8, 16), policy_units=16, num_heads=2,
                      entropy_levels=64, eval_batch_size=4),
    "separation": dict(codec="jpeg", code="ldpc5g", modulation="qpsk", cr=0.25),
}  # fmt: skip
SINGLE = ("deepjscc", "adjscc", "reference", "swinjscc", "separation")
UPLINK = ("deepjscc", "adjscc", "swinjscc", "multiuser", "separation")


def _link(users: int, snr: str = "average") -> LinkSpec:
    return LinkSpec(num_rx_ant=2, users=users, antennas_per_user=2 if users == 1 else 1,
                    csi=CSISpec(mode="perfect"), snr=snr)


def _images(n: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.meshgrid(np.linspace(0, 1, SIZE), np.linspace(0, 1, SIZE), indexing="ij")
    a, b = rng.uniform(0.2, 0.8, (2, n, 1, 1, 3))
    return np.clip(a + 0.3 * b * (yy + xx)[None, ..., None], 0, 1).astype(np.float32)


def _h(n: int = 4) -> np.ndarray:
    rng = np.random.default_rng(1)
    return ((rng.normal(size=(n, 2, 2)) + 1j * rng.normal(size=(n, 2, 2))) / np.sqrt(2)).astype(
        np.complex64)


def _spy_channel_calls(monkeypatch) -> list:
    """Record every eager call of the channel layer: ``(snr_mode, no [R], sent [R, ...])``."""
    calls = []
    for cls in (RayleighMIMOChannel, MultiUserUplinkChannel):
        original = cls.call

        def spying(self, x, snr_db, h=None, sent=None, _original=original):
            y, h_out, no = _original(self, x, snr_db, h=h, sent=sent)
            if tf.executing_eagerly():  # not Keras' symbolic build pass
                calls.append((self.snr_mode, no.numpy(), np.asarray(sent)))
            return y, h_out, no

        monkeypatch.setattr(cls, "call", spying)
    return calls


def _run(type_name: str, link: LinkSpec, images: np.ndarray, h: np.ndarray):
    """Build a tiny ``type_name`` system on ``link`` and send ``images`` over ``h`` at
    SNR_DB, eagerly (so that the spy sees concrete values). Returns the CR per image."""
    set_seed(0)
    spec = get_system_type(type_name)
    system = spec.factory(spec.params(**TINY[type_name]), link, (SIZE, SIZE), 0)
    if type_name == "separation":
        stream = tf.data.Dataset.from_tensor_slices(images).batch(4).repeat()
        system.prepare(stream, TrainSpec(steps_per_epoch=1), None, False)
        return system.transmit(images, SNR_DB, h=h).cr
    inputs = {"image": tf.constant(images), "snr_db": tf.fill([len(images)], SNR_DB),
              "h": tf.constant(h)}
    return np.asarray(system.model(inputs, training=False)["cr"])


@pytest.fixture(scope="module")
def runs():
    """``(users, snr definition) -> {type: (cr [N], channel calls of the transmission)}``:
    every system of a 2x2 link and of a two-user uplink sends the same 4 images over the
    same ``h`` at the same SNR."""
    images, h = _images(), _h()
    results = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        calls = _spy_channel_calls(monkeypatch)
        # "realized" is checked once per system type (the uplink only for multiuser).
        for users, snr, types in ((1, "average", SINGLE), (2, "average", UPLINK),
                                  (1, "realized", SINGLE), (2, "realized", ("multiuser",))):
            for type_name in types:
                del calls[:]
                cr = _run(type_name, _link(users, snr), images, h)
                sent = [c for c in calls if c[1].shape[0] == len(images) // users]
                assert sent, f"{type_name}: no transmission reached the channel layer"
                results.setdefault((users, snr), {})[type_name] = (cr, sent)
    return results


LINKS = pytest.mark.parametrize("users", [1, 2], ids=["2x2", "2-user uplink"])


@LINKS
def test_same_h_snr_and_power_give_every_system_the_same_noise(runs, users):
    noise = {t: np.concatenate([c[1] for c in calls]) for t, (_, calls) in runs[users, "average"].items()}
    assert set(noise) == set(SINGLE if users == 1 else UPLINK)
    # Per-receive-antenna average SNR, unit symbol energy on A antennas: no = A / snr.
    antennas = 2 if users == 1 else 1
    for type_name, no in noise.items():
        np.testing.assert_allclose(no, antennas / 10 ** (SNR_DB / 10), rtol=1e-6,
                                   err_msg=type_name)


def test_the_link_declares_the_snr_definition_for_every_system(runs):
    for (_, snr), systems in runs.items():
        for type_name, (_, calls) in systems.items():
            assert {c[0] for c in calls} == {snr}, type_name
    shipped = {t for (_, snr), systems in runs.items() if snr == "realized" for t in systems}
    assert shipped == set(SINGLE) | set(UPLINK)


@LINKS
def test_cr_is_what_entered_the_channel(runs, users):
    for type_name, (cr, calls) in runs[users, "average"].items():
        # 2 reals per sent complex entry, summed over the calls (data and any index symbols),
        # per image (image n = realization n // K, user n % K).
        axes = (1, 2) if users == 1 else (2, 3)
        counted = sum(2 * c[2].sum(axis=axes) for c in calls).reshape(-1)
        if type_name == "separation":  # codewords span images: each is charged the mean
            counted = np.full_like(counted, counted.mean())
        np.testing.assert_allclose(cr, counted / (3 * SIZE * SIZE), rtol=1e-6, err_msg=type_name)


@LINKS
def test_no_system_sends_holes(runs, users):
    # The one layout compacts the kept symbols: the channel uses a sender occupies are a
    # prefix, and in every one of them but the last all its antennas carry a sent symbol.
    for type_name, (_, calls) in runs[users, "average"].items():
        for _, _, sent in calls:
            per_user = sent if users > 1 else sent[:, None]  # [R, K, A, L]
            used, full = per_user.any(axis=2), per_user.all(axis=2)  # [R, K, L]
            last = used.sum(axis=-1, keepdims=True) - 1
            uses = np.arange(used.shape[-1])
            assert np.all(used == (uses <= last)), type_name
            assert np.all(full[uses < last]), type_name


def test_the_scenario_link_declares_the_snr_definition():
    from pydantic import ValidationError

    from semsim.scenario.schema_link import LinkConfig

    assert LinkConfig(nr=2, nt=2).to_spec().snr == "average"
    assert LinkConfig(nr=4, users=2, snr="realized").to_spec().snr == "realized"
    with pytest.raises(ValidationError, match="snr"):
        LinkConfig(nr=2, nt=2, snr="peak")
