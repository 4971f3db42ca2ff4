"""The competitors' venv, `.bench-venv`: Flower, celery-progress and matplotlib, never in the product's.

The product's venv makes or updates it (`ensure_bench_venv`, from
requirements-competitors.txt) and asks it what it holds (`installed_versions`), which runs
this module under the bench venv's Python: `python -m scripts.bench.bench_venv` prints
the versions as JSON. Standard library only at import, for that reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from .paths import ROOT

VENV = ROOT / ".bench-venv"
REQUIREMENTS = Path(__file__).resolve().parent / "requirements-competitors.txt"
STAMP = VENV / ".requirements-installed"


def ensure_bench_venv() -> Path:
    """Create or update .bench-venv from the requirements file; return its Python."""
    python = VENV / "bin" / "python"
    if python.exists() and STAMP.exists() and STAMP.stat().st_mtime > REQUIREMENTS.stat().st_mtime:
        return python
    if not python.exists():
        print(f"creating {VENV.relative_to(ROOT)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print(f"installing {REQUIREMENTS.relative_to(ROOT)} into {VENV.relative_to(ROOT)} ...", flush=True)
    # Without the backend on the path (make bench puts it there): pip would take the
    # product's package for one installed here and check its requirements too.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", str(REQUIREMENTS)],
        env=env,
        check=True,
    )
    STAMP.touch()
    return python


def installed_versions(python: Path) -> dict[str, str]:
    """Versions of the competitors (and Celery) in the bench venv, and celery-progress's directory."""
    out = subprocess.run([str(python), "-m", __name__], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    """Under the bench venv: print what `installed_versions` returns."""
    import celery_progress

    versions = {
        name.replace("-", "_"): metadata.version(name)
        for name in ("flower", "celery-progress", "celery", "redis", "django", "tornado")
    }
    print(json.dumps({**versions, "dir": os.path.dirname(celery_progress.__file__)}))


if __name__ == "__main__":
    main()
