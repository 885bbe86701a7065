"""Deep InfoMax mutual-information estimation with the Jensen-Shannon estimator.

Deep InfoMax (Hjelm et al., 2019) learns a representation ``y = E(x)`` that keeps much
information about its input by maximizing a neural estimate of ``I(x; y)``. A
*discriminator* ``T(x, y)`` scores pairs; positives are the pairs of one image and its
own representation (samples of the joint), negatives pair an image with another image's
representation (samples of the product of marginals), obtained by permuting the batch.

Jensen-Shannon estimator (the f-GAN bound, shifted so that independence gives 0)::

    I_JS = E_joint[log 2 - softplus(-T)] - E_marginals[softplus(T) - log 2]

Its supremum over ``T`` is ``2 JSD(P_joint || P_x P_y)`` in nats (``0`` for independent
pairs, at most ``2 log 2``), reached by ``T* = log p(x, y) / (p(x) p(y))``; it is
monotone in the mutual information and has well-behaved gradients.

* :class:`GlobalDiscriminator`: the flattened image concatenated with the flattened
  representation, through fully connected layers -> one score per pair.
* :class:`LocalDiscriminator`: the representation broadcast over every position of an
  encoder feature map, concatenated with it, through 1x1 convolutions -> one score per
  (pair, position); the local MI is averaged over positions.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

LOG2 = math.log(2.0)


def js_mi(positive_scores, negative_scores):
    """The Jensen-Shannon MI estimate (nats, scalar) from discriminator scores of joint
    pairs and of shuffled pairs (any shapes; each is averaged)."""
    pos = tf.reduce_mean(LOG2 - tf.nn.softplus(-positive_scores))
    neg = tf.reduce_mean(tf.nn.softplus(negative_scores) - LOG2)
    return pos - neg


def shuffle_batch(y):
    """A permutation of the batch without fixed points (shift by one): example ``i`` gets
    the representation of example ``i + 1 mod B``. Deterministic, so every example is
    paired with another one's representation."""
    return tf.roll(y, shift=1, axis=0)


def _flat(t):
    return tf.reshape(t, [tf.shape(t)[0], -1])


class GlobalDiscriminator(keras.layers.Layer):
    """``T(x, y)`` on ``[flatten(x), flatten(y)]``: ``Dense(units, ReLU)`` x2 -> ``Dense(1)``.

    ``call(x, y)``: ``x`` ``[B, ...]`` (the image, float32), ``y`` ``[B, ...]`` (the
    representation); returns scores ``[B]``.
    """

    def __init__(self, units: int = 256, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.hidden = [keras.layers.Dense(self.units, activation="relu") for _ in range(2)]
        self.out = keras.layers.Dense(1)

    def call(self, x, y):
        h = tf.concat([_flat(x), _flat(y)], axis=-1)
        for layer in self.hidden:
            h = layer(h)
        return self.out(h)[:, 0]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class LocalDiscriminator(keras.layers.Layer):
    """``T(f_ij, y)`` at every position ``(i, j)`` of a feature map: ``[f, y]`` through
    1x1 convolutions (``units`` ReLU, ``units`` ReLU, 1).

    ``call(features, y)``: ``features`` ``[B, h, w, C]``, ``y`` ``[B, ...]``; returns scores
    ``[B, h, w]``.
    """

    def __init__(self, units: int = 128, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.hidden = [keras.layers.Conv2D(self.units, 1, activation="relu") for _ in range(2)]
        self.out = keras.layers.Conv2D(1, 1)

    def call(self, features, y):
        shape = tf.shape(features)
        y = _flat(y)[:, None, None, :]
        y = tf.broadcast_to(y, tf.concat([shape[:3], tf.shape(y)[-1:]], 0))
        h = tf.concat([features, y], axis=-1)
        for layer in self.hidden:
            h = layer(h)
        return self.out(h)[..., 0]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def global_local_mi(global_d: GlobalDiscriminator, local_d: LocalDiscriminator,
                    image, features, y) -> tuple[tf.Tensor, tf.Tensor]:
    """``(I_global, I_local)`` JS estimates (nats) for a batch: ``image`` ``[B, H, W, 3]``,
    encoder ``features`` ``[B, h, w, C]``, representation ``y`` ``[B, ...]``; negatives
    pair each image with the next one's representation (:func:`shuffle_batch`)."""
    y_neg = shuffle_batch(y)
    mi_global = js_mi(global_d(image, y), global_d(image, y_neg))
    mi_local = js_mi(local_d(features, y), local_d(features, y_neg))
    return mi_global, mi_local
