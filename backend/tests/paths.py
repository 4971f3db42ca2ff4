"""Where the tests find the project: the repository root and the backend directory."""

from pathlib import Path

BACKEND_DIR = Path(__file__).resolve().parent.parent
ROOT_DIR = BACKEND_DIR.parent
