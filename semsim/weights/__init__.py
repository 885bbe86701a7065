"""Shipped pretrained weights of the learned systems (see ``docs/weights.md``).

Layout (package data)::

    semsim/weights/<scenario>/<profile>/<system>.weights.h5     Keras weights
    semsim/weights/<scenario>/<profile>/<system>.manifest.json  what made them

:mod:`semsim.weights.manifest` defines the config hash, the validation PSNR and the
manifest; :mod:`semsim.weights.shipped` is what ``semsim run`` calls to use a shipped
checkpoint (only when the hash of the resolved config and the SHA-256 of the file match);
:mod:`semsim.weights.build` (``python -m semsim.weights.build FILE --profile standard``)
trains and writes them.
"""

from __future__ import annotations

from pathlib import Path

#: Version marker of the learned models' code, part of every config hash. Bump it in any
#: change that alters what a trained checkpoint means (layers, channel mapping, SNR
#: definition, loss...) without changing a resolved parameter: every shipped checkpoint
#: then stops matching and must be rebuilt.
MODEL_CODE_VERSION = 1

#: Where the shipped checkpoints live (inside the installed package).
WEIGHTS_DIR = Path(__file__).resolve().parent
