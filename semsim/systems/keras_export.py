"""The ``.keras`` export of a prepared learned system.

After a learned system is prepared (trained, or loaded from shipped or resumed weights)
the runner writes its Keras model to ``checkpoints/<system>/model.keras`` (Keras
``model.save``, written atomically): the model that is evaluated, architecture and
weights in one file, loadable without semsim's scenario machinery::

    from semsim.systems.keras_export import load_exported
    model = load_exported("runs/siso_awgn-quick/checkpoints/deepjscc/model.keras")
    out = model({"image": images, "snr_db": snr_db})     # see semsim.systems.keras_system

Loading uses ``keras.saving.load_model(path, safe_mode=True)`` (no code in the file is
executed; only classes registered as Keras-serializable are built).

Not exported, with a one-line log saying why: systems that are not one Keras model
(``scsc``: learned pre/post networks around an HEVC + LDPC chain; ``classified``: another
system plus a classifier), and any model whose saving fails. ``mijscc`` exports its
transmission model; its classifier head stays in its own weights file.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import keras

from semsim.atomic import atomic_path
from semsim.systems.registry import SHIPPED

MODEL_FILE = "model.keras"
logger = logging.getLogger(__name__)


def export_model(name: str, system, workdir: str | Path) -> Path | None:
    """Save the Keras model of the prepared system ``name`` as ``workdir/model.keras``
    (atomically). Returns the path, or ``None`` when there is nothing to export (a
    classic system, silently) or it cannot be exported (logged with the reason). An
    ``OSError`` (disk full, permissions) propagates and leaves any previous file."""
    if not getattr(system, "trainable", False):
        return None
    model = getattr(system, "model", None)
    if not isinstance(model, keras.Model):
        logger.info("%s: no %s export: a %s system is not one Keras model", name, MODEL_FILE,
                    getattr(system, "type_name", type(system).__name__))
        return None
    path = Path(workdir) / MODEL_FILE
    try:
        with atomic_path(path) as tmp:
            model.save(tmp)
    except (NotImplementedError, TypeError, ValueError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        logger.warning("%s: no %s export: Keras cannot save %s: %s", name, MODEL_FILE,
                       type(model).__name__, reason)
        return None
    return path


def load_exported(path: str | Path) -> keras.Model:
    """Load a ``model.keras`` written by :func:`export_model` in safe mode. The shipped
    system modules are imported first, so that their model classes are registered."""
    for _, builder, _ in SHIPPED.values():
        importlib.import_module(builder.partition(":")[0])
    return keras.saving.load_model(Path(path), safe_mode=True)
