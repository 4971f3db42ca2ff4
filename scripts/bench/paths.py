"""Where the benchmarks find the checkout and write their figures (standard library only:
report.py and the bench venv's processes import it too)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "backend"
#: Every benchmark's figures, as report.py reads them.
RAW = ROOT / "docs" / "benchmarks" / "raw"
