"""The one percentile every benchmark uses, and the shapes its figures take in raw/*.json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], p: float) -> float:
    """The `p`-th percentile (0-100) of `values`, interpolated linearly between the two
    nearest ranks (numpy's default; p=50 is the median); nan when there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def describe(values_ms: list[float], ndigits: int | None = None) -> dict[str, Any]:
    """n, p50/p90/p99/max and the values themselves (for plots), as written to raw/*.json.

    Rounded to `ndigits` when given; with no values, n=0 and the figures are None.
    """
    if not values_ms:
        return {"n": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None, "latencies_ms": []}

    def kept(value: float) -> float:
        return value if ndigits is None else round(value, ndigits)

    return {
        "n": len(values_ms),
        "p50_ms": kept(percentile(values_ms, 50)),
        "p90_ms": kept(percentile(values_ms, 90)),
        "p99_ms": kept(percentile(values_ms, 99)),
        "max_ms": kept(max(values_ms)),
        "latencies_ms": [kept(v) for v in values_ms],
    }


def summary(name: str, values_ms: list[float]) -> str:
    """One printed line: n, p50/p90/p99 and max in ms."""
    return (
        f"{name:<28} n={len(values_ms):<5} p50={percentile(values_ms, 50):7.2f} ms  "
        f"p90={percentile(values_ms, 90):7.2f} ms  p99={percentile(values_ms, 99):7.2f} ms  "
        f"max={max(values_ms):7.2f} ms"
    )
