"""Plain-JSON forms of detector state: floats that may be infinite or NaN, optional floats, arrays.

JSON has no NaN or infinity, and a snapshot must be strict JSON (another language, a console, ``jq``
must read it), so a non-finite float is written as the string ``"nan"``, ``"inf"`` or ``"-inf"``.
Every reader checks the type it expects: a damaged snapshot fails with ``ValueError``/``TypeError``
/``KeyError`` (the processor turns those into ``SnapshotError``), never with a half-restored state.

>>> floats([1.5, float("inf"), float("-inf")])
[1.5, 'inf', '-inf']
>>> float_list(floats([0.1, float("nan")]))[0], math.isnan(float_list(["nan"])[0])
(0.1, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def enc(x: float) -> float | str:
    """``x`` as a JSON value: itself when finite, else ``"nan"``, ``"inf"`` or ``"-inf"``."""
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def dec(v: Any) -> float:
    """The float written by ``enc``."""
    if isinstance(v, str):
        x = _NON_FINITE.get(v)
        if x is None:
            msg = f"{v!r} is not a number"
            raise ValueError(msg)
        return x
    if isinstance(v, bool) or not isinstance(v, int | float):
        msg = f"{v!r} is not a number"
        raise TypeError(msg)
    return float(v)


def enc_opt(x: float | None) -> float | str | None:
    return None if x is None else enc(x)


def dec_opt(v: Any) -> float | None:
    return None if v is None else dec(v)


def floats(xs: Iterable[float]) -> list[float | str]:
    return [enc(float(x)) for x in xs]


def float_list(v: Any, length: int | None = None) -> list[float]:
    """A list of floats written by ``floats``; ``length`` when it must have that many."""
    if not isinstance(v, list):
        msg = f"expected a list of numbers, not {type(v).__name__}"
        raise TypeError(msg)
    if length is not None and len(v) != length:
        msg = f"expected {length} numbers, not {len(v)}"
        raise ValueError(msg)
    return [dec(x) for x in v]


def opt_floats(xs: Iterable[float | None]) -> list[float | str | None]:
    return [enc_opt(x) for x in xs]


def opt_float_list(v: Any, length: int) -> list[float | None]:
    if not isinstance(v, list) or len(v) != length:
        msg = f"expected a list of {length} numbers or nulls"
        raise ValueError(msg)
    return [dec_opt(x) for x in v]


def bool_list(v: Any, length: int) -> list[bool]:
    if not isinstance(v, list) or len(v) != length or not all(isinstance(b, bool) for b in v):
        msg = f"expected a list of {length} booleans"
        raise ValueError(msg)
    return list(v)


def integer(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        msg = f"{v!r} is not an integer"
        raise TypeError(msg)
    return v


def opt_integer(v: Any) -> int | None:
    return None if v is None else integer(v)


def array(a: FloatArray) -> list[Any]:
    """A 1-d or 2-d float array as (nested) lists; ``from_array`` reads it back with its shape."""
    if a.ndim == 1:
        return floats(a.tolist())
    return [floats(row) for row in a.tolist()]


def from_array(v: Any, shape: tuple[int, ...]) -> FloatArray:
    """The array ``array`` wrote; ``shape`` is checked (a 2-d array with no rows keeps its width)."""
    if len(shape) == 1:
        out = np.array(float_list(v, shape[0]), dtype=np.float64)
    else:
        if not isinstance(v, list) or len(v) != shape[0]:
            msg = f"expected {shape[0]} rows"
            raise ValueError(msg)
        out = np.array([float_list(row, shape[1]) for row in v], dtype=np.float64).reshape(shape)
    return out
