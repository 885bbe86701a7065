"""TensorFlow's "casting complex64 to float32 discards the imaginary part" warning: shown
(and failing the test suite, tests/conftest.py) for a forward cast that drops data, not
for the gradient of a real -> complex cast (as in Sionna's AWGN noise scaling), whose
real part is the exact derivative."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tensorflow as tf

import semsim  # noqa: F401 - installs the filter


@pytest.fixture
def tf_records():
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep()
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
    from tests.conftest import DROPPED_IMAGINARY
    DROPPED_IMAGINARY.messages.clear()  # the forward cast below warns on purpose


def test_forward_cast_of_a_complex_signal_still_warns(tf_records):
    z = tf.constant([1 + 2j, 3 - 1j], tf.complex64)
    assert tf.cast(z, tf.float32).numpy().tolist() == [1.0, 3.0]
    assert any("discard the imaginary part" in m for m in tf_records)


def test_gradient_through_a_real_to_complex_cast_is_exact_and_silent(tf_records):
    # L(x) = |c * cast(x) + d|^2 with complex c, d: dL/dx = 2 Re(conj(c) (c x + d)).
    x = tf.Variable([0.5, -1.5], dtype=tf.float32)
    c = tf.constant([1 - 2j, 0.5 + 1j], tf.complex64)
    d = tf.constant([0.3 + 0.1j, -2 + 0.5j], tf.complex64)
    with tf.GradientTape() as tape:
        y = c * tf.cast(x, tf.complex64) + d
        loss = tf.reduce_sum(tf.abs(y) ** 2)
    grad = tape.gradient(loss, x).numpy()
    xn, cn, dn = x.numpy().astype(np.complex128), c.numpy(), d.numpy()
    expected = 2 * np.real(np.conj(cn) * (cn * xn + dn))
    np.testing.assert_allclose(grad, expected, rtol=1e-5)
    assert not any("discard the imaginary part" in m for m in tf_records), tf_records
