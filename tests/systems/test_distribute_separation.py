"""The separation baseline's per-image HEVC encoding and decoding on a thread pool
gives exactly the serial results."""

import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from semsim.seeding import set_seed
from semsim.systems.base import CSISpec, LinkSpec, TrainSpec
from semsim.systems.separation import SeparationSystem

LINK = LinkSpec(num_rx_ant=2, antennas_per_user=2, csi=CSISpec(mode="perfect"))


def _system(workers: int, images: np.ndarray) -> SeparationSystem:
    system = SeparationSystem(LINK, code="ldpc5g", modulation="16qam", cr=0.2, workers=workers)
    system.prepare(tf.data.Dataset.from_tensor_slices(images).batch(4).repeat(),
                   TrainSpec(steps_per_epoch=2), None, False)
    return system


def test_thread_pool_equals_serial():
    a = skimage.data.astronaut() / 255.0
    images = np.stack([a[y : y + 32, x : x + 32] for y in (120, 250)
                       for x in (100, 180, 260, 340)]).astype(np.float32)
    rng = np.random.default_rng(5)
    h = ((rng.normal(size=(8, 2, 2)) + 1j * rng.normal(size=(8, 2, 2))) / np.sqrt(2)
         ).astype(np.complex64)
    serial, pooled = _system(1, images), _system(4, images)
    failures = []
    for snr in (8.0, 14.0, 40.0, 14.0):  # the repeated SNR reads the memoized codec results
        outs = []
        for system in (serial, pooled):
            set_seed(11)
            outs.append(system.transmit(images, snr, h=h))
        one, two = outs
        np.testing.assert_array_equal(one.images_hat, two.images_hat)
        np.testing.assert_array_equal(one.cr, two.cr)
        assert one.extras.keys() == two.extras.keys()
        for key in one.extras:
            np.testing.assert_array_equal(one.extras[key], two.extras[key])
        failures.append(one.extras["failed"])
    # both paths covered: some images decoded, some fell back
    assert min(f.sum() for f in failures) < 8 and max(f.sum() for f in failures) > 0


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers"):
        SeparationSystem(LINK, workers=0)
