"""A tiny learned system following the KerasSystem convention (for adapter tests)."""

import keras
import tensorflow as tf

from semsim.phy import AnalogLink, LinkSpec, complex_to_reals, reals_to_complex


class ToyJSCC(keras.Model):
    """1x1-conv encoder to 4 real channels at half resolution, the analog link, and a
    1x1-conv decoder; CR = 4 * (H/2) * (W/2) / (3 H W) = 1/3."""

    def __init__(self, link: LinkSpec, **kwargs):
        super().__init__(**kwargs)
        self.link = AnalogLink(link)
        self.encoder = keras.layers.Conv2D(4, 2, strides=2)
        self.decoder = keras.layers.Conv2DTranspose(3, 2, strides=2, activation="sigmoid")

    def call(self, inputs, training=False):
        image = inputs["image"]
        z = self.encoder(image)
        shape = tf.shape(z)
        nt = self.link.link.num_tx_ant
        x = reals_to_complex(tf.reshape(z, [shape[0], nt, -1]))
        state = self.link.observe(shape[0], inputs["snr_db"], inputs.get("h"))
        x_hat = self.link.transmit(x, state, inputs["snr_db"]).x_hat
        z_hat = tf.reshape(complex_to_reals(x_hat), shape)
        image_hat = self.decoder(z_hat)
        sent = tf.cast(tf.size(z[0]), tf.float32) / tf.cast(tf.size(image[0]), tf.float32)
        return {"image_hat": image_hat, "cr": tf.fill(shape[:1], sent)}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            out = self(data, training=True)
            loss = tf.reduce_mean((out["image_hat"] - data["image"]) ** 2)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return {"loss": loss}


def toy_link() -> LinkSpec:
    return LinkSpec(num_rx_ant=2, antennas_per_user=2)
