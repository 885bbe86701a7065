"""An all-zero input must not make a fresh Swin stack's gradients explode.

Keras starts biases at zero. Before the fix, an all-black image (encoder) or all-zero
feature maps (decoder: an image whose policy sent nothing) kept every activation of a
freshly built stack exactly zero, and each LayerNorm passed gradients with gain
``1/sqrt(epsilon)``: at the reference paper's sizes the input gradient was 1e27-1e30
against about 1e-3 for a random input, and training diverged on its first such image.
The reference here is the same stack's gradient on a random input.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from semsim.semantic.swin import SwinDecoder, SwinEncoder


def _input_gradient(layer, x, *extra):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_mean(layer(x, *extra))
    return float(np.max(np.abs(tape.gradient(loss, x).numpy())))


@pytest.mark.parametrize("which", ["encoder", "decoder"])
def test_all_zero_input_gets_gradients_of_the_order_of_a_random_input(which):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    if which == "encoder":  # paper sizes (the defaults), a black 32x32 image
        layer, shape, extra = SwinEncoder(16), (2, 32, 32, 3), ()
        random_input = rng.random(shape, np.float32)
    else:  # the paper's decoder, conditioned, 16 maps of 8x8
        layer, shape = SwinDecoder(conditioned=True), (2, 8, 8, 16)
        extra = (tf.constant(rng.normal(size=(2, 32)).astype(np.float32)),)
        random_input = rng.normal(size=shape).astype(np.float32)
    zero = _input_gradient(layer, np.zeros(shape, np.float32), *extra)
    reference = _input_gradient(layer, random_input, *extra)
    assert np.isfinite(zero) and reference > 0
    # tolerance: a factor 10 either way (measured ratio 0.5-1; 1e24 and more before the fix)
    assert 0.1 < zero / reference < 10.0, (zero, reference)
