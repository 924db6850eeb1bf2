"""Field checks for the JSON bodies of the /_sim fault controls (ValueError with the reason)."""

from __future__ import annotations

import math
from typing import Any


def only(body: dict[str, Any], known: tuple[str, ...]) -> None:
    """Refuse fields outside `known`: a typo must not silently fall back to a default."""
    unknown = set(body) - set(known)
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)} (known: {', '.join(known)})")


def number(body: dict[str, Any], name: str, default: float) -> float:
    """A finite number (not a bool), or `default` when absent."""
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number")
    return float(value)


def integer(
    body: dict[str, Any], name: str, default: int, lo: int | None = None, hi: int | None = None
) -> int:
    """An integer (not a bool) within [lo, hi] where given, or `default` when absent."""
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be between {lo} and {hi}")
    return value
