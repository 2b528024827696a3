"""The argument types of the command line: whole numbers and finite numbers, refused with a
reason argparse prints as `error: argument --x: ...`."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not positive")
    return n


def finite(text: str, positive: bool) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    # `not (...)`, so that NaN, which compares false with everything, is refused as well
    if not (math.isfinite(x) and (x > 0 if positive else x >= 0)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'positive' if positive else 'non-negative'} finite number")
    return x


def positive_float(text: str) -> float:
    return finite(text, positive=True)


def nonnegative_float(text: str) -> float:
    return finite(text, positive=False)
