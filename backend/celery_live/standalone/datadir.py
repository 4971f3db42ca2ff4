"""The standalone's data directory: its SQLite database, its secret key and its private Redis.

One `celery-live` serves from a directory at a time (a lock file says which); `celery-live
manage` may use it meanwhile (SQLite waits for the other's writes).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from pathlib import Path
from typing import BinaryIO


class DataDirError(RuntimeError):
    """The directory cannot be used: not creatable, not writable, or another command's."""


class DataDir:
    """The paths inside the data directory, and what is made there once."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser().absolute()
        self._lock: BinaryIO | None = None

    @property
    def database(self) -> Path:
        return self.path / "db.sqlite3"

    @property
    def redis(self) -> Path:
        """The private Redis's files (when the event log needs one)."""
        return self.path / "redis"

    @property
    def secret_key_file(self) -> Path:
        return self.path / "secret_key"

    def make(self) -> None:
        """Make the directory (OSError if it cannot be), its owner's only: it holds password
        hashes and sessions (the database) and the secret key."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def lock(self) -> None:
        """Make the directory if need be and hold its lock while this process lives.

        A second `celery-live` on the same directory would start a second private Redis on
        the same files and a second recorder of the same database: it is refused instead.
        """
        try:
            self.make()
            handle = open(self.path / "celery-live.lock", "a+b")  # noqa: SIM115 - held for the process's life
        except OSError as exc:
            raise DataDirError(f"cannot use the data dir {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise DataDirError(
                f"another celery-live serves from {self.path}; stop it or pass another --data-dir"
            ) from None
        self._lock = handle

    def secret_key(self) -> str:
        """Django's secret key: the one kept here, made (random, readable by its owner only)
        the first time, so sessions outlive a restart and every process signs alike."""
        with contextlib.suppress(FileNotFoundError):
            if key := self.secret_key_file.read_text().strip():
                return key
        key = secrets.token_urlsafe(50)
        draft = self.path / f".secret_key.{secrets.token_hex(8)}"
        try:
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(key)
            # A link appears whole or not at all: no process ever reads half a key, and of
            # two first starts at once the key that landed first is everyone's.
            os.link(draft, self.secret_key_file)
        except FileExistsError:
            key = self.secret_key_file.read_text().strip()
        except OSError as exc:
            raise DataDirError(f"cannot write {self.secret_key_file}: {exc.strerror}") from None
        finally:
            draft.unlink(missing_ok=True)
        return key
