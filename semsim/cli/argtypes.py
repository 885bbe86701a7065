"""argparse ``type=`` converters shared by the sub-commands."""

from __future__ import annotations

import argparse


def int_at_least(minimum: int, name: str):
    """A converter of text to an ``int >= minimum``; ``name`` describes the bound in the
    error (``"an integer >= 0"``, ``"a positive integer"``)."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from err
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {name}, got {value}")
        return value

    return convert


positive_int = int_at_least(1, "a positive integer")
non_negative_int = int_at_least(0, "an integer >= 0")
