"""semsim: link-level simulation of semantic communication over wireless MIMO links.

Packages
--------
``semsim.phy``       physical layer (Sionna blocks wrapped as Keras layers)
``semsim.semantic``  learned semantic blocks (Swin, CCAM, entropy, policies, ViT compensation)
``semsim.systems``   end-to-end systems (learned and classic) behind one interface
``semsim.codecs``    classic image codecs (HEVC intra, JPEG, JPEG 2000)
``semsim.data``      data sets and ``tf.data`` pipelines
``semsim.scenario``  YAML scenarios, their schema and the runner
``semsim.report``    results files, tables and plots
``semsim.cli``       the ``semsim`` command

The Python API (:mod:`semsim.api`), for notebooks without YAML files:
``semsim.load_scenario(dict | str | Path)``, ``semsim.run(scenario, out=...)`` (returns
the results), ``semsim.build_system(scenario, name)`` (untrained) and
``semsim.trained_system(scenario, name)`` (with its shipped weights, or
``retrain=True``). ``import semsim`` stays light:
TensorFlow is imported on first use of the API.
"""

import logging as _logging
import traceback as _traceback

__version__ = "0.1.0"
__all__ = ["__version__", "load_scenario", "run", "build_system", "trained_system"]


class _CastGradientFilter(_logging.Filter):
    """Drops TensorFlow's "casting complex64 to float32 discards the imaginary part"
    warning where it is raised by the *gradient* of a real -> complex cast (e.g. Sionna's
    AWGN scales its noise by ``tf.cast(sqrt(no), complex64)``, and ``no`` depends on the
    signal power): the derivative with respect to a real input is the real part of the
    complex gradient, so nothing is lost there. The same warning from a forward cast of a
    complex signal to float (which does drop data) still shows, and the test suite fails
    on it (tests/conftest.py)."""

    def filter(self, record: _logging.LogRecord) -> bool:
        if "discard the imaginary part" not in record.getMessage():
            return True
        return not any(frame.name == "_CastGrad" for frame in _traceback.extract_stack())


_logging.getLogger("tensorflow").addFilter(_CastGradientFilter())


def __getattr__(name: str):
    if name in ("load_scenario", "run", "build_system", "trained_system", "NoShippedWeights"):
        from semsim import api

        return getattr(api, name)
    raise AttributeError(f"module 'semsim' has no attribute {name!r}")
