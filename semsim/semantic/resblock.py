"""Residual convolution block used by the multi-user system's encoder and decoder."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="semsim")
class ResBlock(keras.layers.Layer):
    """Two 3x3 convolutions with PReLU and an identity (or 1x1-projected) shortcut.

    ``call(x)``: ``x`` ``[B, H, W, C_in]`` float32 -> ``[B, H, W, filters]``:
    ``y = PReLU(conv(PReLU(conv(x))) + shortcut(x))``, where ``shortcut`` is the
    identity when ``C_in == filters`` and a 1x1 convolution otherwise.
    """

    def __init__(self, filters: int, kernel_size: int = 3, **kwargs):
        super().__init__(**kwargs)
        if filters < 1:
            raise ValueError(f"filters must be >= 1, got {filters}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd integer >= 1, got {kernel_size}")
        self.filters = filters
        self.kernel_size = kernel_size
        self.conv1 = keras.layers.Conv2D(filters, kernel_size, padding="same")
        self.act1 = keras.layers.PReLU(shared_axes=[1, 2])
        self.conv2 = keras.layers.Conv2D(filters, kernel_size, padding="same")
        self.act2 = keras.layers.PReLU(shared_axes=[1, 2])
        self.shortcut = None

    def build(self, input_shape):
        c_in = input_shape[-1]
        if c_in != self.filters:
            self.shortcut = keras.layers.Conv2D(self.filters, 1)
            self.shortcut.build(input_shape)
        self.conv1.build(input_shape)
        out_shape = tuple(input_shape[:-1]) + (self.filters,)
        self.act1.build(out_shape)
        self.conv2.build(out_shape)
        self.act2.build(out_shape)

    def call(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        y = self.conv2(self.act1(self.conv1(x)))
        return self.act2(y + skip)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}
