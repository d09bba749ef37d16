"""Argument checks the modules share, so every bad value gets the same clear message."""

from __future__ import annotations

import operator


def whole_number(name: str, value, *, minimum: int) -> int:
    """``value`` as an int if it is a whole number ≥ ``minimum``; otherwise a clear error.

    A non-integer (a float, a string, a bool) is a ``TypeError``; a number that is too small a
    ``ValueError``. numpy integers are accepted.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a whole number, got the bool {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        hint = (f"int({value!r}) = {int(value)}"
                if isinstance(value, float) and value.is_integer() else "an int")
        raise TypeError(f"{name} must be a whole number, got {value!r} "
                        f"({type(value).__name__}); pass {hint}") from None
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {number}")
    return number
