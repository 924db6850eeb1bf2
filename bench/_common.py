"""Helpers shared by the benchmarks: Django setup, percentiles, the final JSON line."""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xcon.settings")
    import django

    django.setup()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 50):.1f}  p90 {pct(values, 90):.1f}  p99 {pct(values, 99):.1f}  "
        f"mean {statistics.fmean(values):.1f}  n {len(values)}"
    )


def emit(result: dict[str, Any]) -> None:
    """The last line of every benchmark is one JSON object."""
    print(json.dumps(result), flush=True)
