"""TensorFlow's start-up lines on the native stderr, filtered for the command line.

TensorFlow 2.21 writes its C++ log through absl before ``absl::InitializeLog()`` runs,
so ``TF_CPP_MIN_LOG_LEVEL`` does not silence what it prints while it is imported and
while it first looks for devices (checked on this stack: ``TF_CPP_MIN_LOG_LEVEL``,
``GLOG_minloglevel`` and ``ABSL_MIN_LOG_LEVEL`` all leave them). On a machine without a
GPU that is seven lines, one of them an ``E`` record ("failed call to cuInit") that reads
like a failure although nothing failed (TensorFlow then uses the CPU, as it would without
the message). :func:`start_tensorflow` imports TensorFlow and Keras and lists the GPUs
with the process's file descriptor 2 sent to a temporary file, then writes back every
record except absl's ``I`` (INFO) records, its preamble line and that CUDA error.
Warnings and other errors are written back unchanged; ``-v`` skips the filter.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile

log = logging.getLogger("semsim")

#: The first line of an absl log record: severity letter, MMDD, time.
RECORD = re.compile(r"^([IWEF])\d{4} \d")
PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
CUDA_INIT = "failed call to cuInit"


def filter_native_log(text: str) -> str:
    """What to write back of a captured native stderr text.

    A record is a line matching :data:`RECORD` and the lines after it that do not (a
    multi-line message). Dropped: ``I`` records, absl's preamble line, and ``E`` records
    containing :data:`CUDA_INIT`. Everything else (``W``/``E``/``F`` records, plain lines
    before the first record) is kept in order. ``text`` is the native output only: a plain
    line after a dropped record is its tail.
    """
    kept: list[str] = []
    drop = False
    for line in text.splitlines(keepends=True):
        record = RECORD.match(line)
        if record:
            drop = record.group(1) == "I" or (record.group(1) == "E" and CUDA_INIT in line)
        elif line.startswith(PREAMBLE):
            continue
        if not drop:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def filtered_native_stderr():
    """Inside the block, file descriptor 2 goes to a temporary file and ``sys.stderr`` to a
    buffer; on exit the Python text is written back unchanged, then what
    :func:`filter_native_log` keeps of the native text. (Python's own writes are kept apart
    so that a warning printed after a dropped multi-line record is not taken for its tail.)
    """
    sys.stderr.flush()
    saved = os.dup(2)
    python_text = io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            with contextlib.redirect_stderr(python_text):
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = filter_native_log(capture.read().decode("utf-8", "replace"))
            sys.stderr.write(python_text.getvalue() + kept)
            sys.stderr.flush()


def start_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow and Keras and find the GPUs, with the native start-up log filtered
    unless ``verbose``; then the TensorFlow version and the GPUs found go to the debug log
    (shown by ``-v``, which also shows TensorFlow's own records)."""
    with contextlib.nullcontext() if verbose else filtered_native_stderr():
        import keras  # noqa: F401  (its import prints the same start-up records)
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
    log.debug("TensorFlow %s: %s", tf.__version__,
              f"{len(gpus)} GPU(s): {', '.join(g.name for g in gpus)}" if gpus
              else "no GPU found; running on the CPU")
