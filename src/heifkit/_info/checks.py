"""Checks of values users pass (save parameters, ``info`` entries): a wrong type is a ``TypeError``, a wrong
value a ``ValueError``, and each message names the parameter."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

__all__ = ["type_name", "as_int", "int_in", "flag", "is_bytes", "mapping", "U16", "U32"]

U16 = 2**16 - 1
U32 = 2**32 - 1


def type_name(value: Any) -> str:
    return type(value).__name__


def as_int(value: Any, name: str) -> int:
    """``value`` as an int (numpy integers too), refusing bools, floats and strings."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type_name(value)}") from None


def int_in(value: Any, name: str, low: int, high: int) -> int:
    """:func:`as_int`, and ``low <= value <= high``."""
    number = as_int(value, name)
    if not low <= number <= high:
        raise ValueError(f"invalid {name} {number}: must be {low}..{high}")
    return number


def flag(value: Any, name: str) -> bool:
    """A yes/no parameter: bool, or the ints 0 and 1."""
    if isinstance(value, bool):
        return value
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be True or False, not {type_name(value)}") from None
    if number not in (0, 1):
        raise ValueError(f"invalid {name} {value!r}: use True or False")
    return bool(number)


def is_bytes(value: Any) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))


def mapping(value: Any, name: str, keys: tuple[str, ...]) -> Mapping[str, Any] | None:
    """A dict parameter with ``keys`` (None or an empty mapping: none given)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict with {', '.join(keys)}, not {type_name(value)}")
    if not value:
        return None
    missing = [k for k in keys if k not in value]
    if missing:
        raise ValueError(f"{name} is missing {', '.join(missing)} (it needs {', '.join(keys)})")
    return value
