"""Shared test set-up: quiet TensorFlow, one seed per test."""

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from semsim.seeding import set_seed  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same seeds, whatever ran before it."""
    set_seed(1234)


class _DroppedImaginaryParts(logging.Handler):
    """Collects TensorFlow's "casting complex to float discards the imaginary part"
    warnings (a log record, not a Python warning, so ``filterwarnings`` cannot catch it)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "discard the imaginary part" in record.getMessage():
            self.messages.append(record.getMessage())


DROPPED_IMAGINARY = _DroppedImaginaryParts()
logging.getLogger("tensorflow").addHandler(DROPPED_IMAGINARY)


@pytest.fixture(autouse=True)
def _fail_on_dropped_imaginary_parts():
    """A test fails when the code it runs casts a complex tensor to a real dtype."""
    DROPPED_IMAGINARY.messages.clear()
    yield
    if DROPPED_IMAGINARY.messages:
        pytest.fail("TensorFlow warned: " + DROPPED_IMAGINARY.messages[0], pytrace=False)
