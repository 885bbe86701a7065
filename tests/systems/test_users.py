"""The image -> user mapping shared by every system on a multi-user uplink."""

import numpy as np
import pytest
import tensorflow as tf

from semsim.systems import users


def test_group_puts_image_n_at_user_n_mod_k_of_realization_n_div_k():
    images = np.arange(12 * 2 * 3, dtype=np.float32).reshape(12, 2, 3)
    grouped = np.asarray(users.group(images, 3))
    assert grouped.shape == (4, 3, 2, 3)
    for n in range(12):
        np.testing.assert_array_equal(grouped[n // 3, n % 3], images[n])
    np.testing.assert_array_equal(users.ungroup(grouped), images)


def test_single_user_is_the_identity():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_array_equal(users.group(x, 1), x[:, None])
    np.testing.assert_array_equal(users.realization_values(x, 1), x)
    np.testing.assert_array_equal(users.per_image(x, 1), x)


def test_realization_h_and_snr_take_the_first_image_of_each_group():
    rng = np.random.default_rng(0)
    h = (rng.normal(size=(6, 4, 2)) + 1j * rng.normal(size=(6, 4, 2))).astype(np.complex64)
    picked = np.asarray(users.realization_h(h, 2))
    assert picked.dtype == np.complex64
    np.testing.assert_array_equal(picked, h[[0, 2, 4]])
    assert users.realization_h(None, 2) is None
    snr = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], np.float32)
    np.testing.assert_array_equal(users.realization_snr(snr, 6, 2), [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(users.realization_snr(7.0, 6, 3), [7.0, 7.0])
    np.testing.assert_array_equal(users.per_image(tf.constant([1.0, 2.0]), 3),
                                  [1.0, 1.0, 1.0, 2.0, 2.0, 2.0])


def test_bad_batches_are_rejected():
    with pytest.raises(ValueError, match=r"image batch \(5\).*K = 2"):
        users.group(np.zeros((5, 3)), 2)
    with pytest.raises(ValueError, match=r"image batch \(7\)"):
        users.num_realizations(7, 3)
    with pytest.raises(ValueError, match="users must be >= 1"):
        users.num_realizations(4, 0)
    with pytest.raises(ValueError, match=r"h must be \[N, M, K\*A\]"):
        users.realization_h(np.zeros((4, 2), np.complex64), 2)
    assert users.num_realizations(12, 4) == 3
