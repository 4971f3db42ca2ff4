"""Declarations: a host's setting listing the dotted paths of the objects it declares.

Launchable tasks (`launchable.py`) and scenarios (`scenarios.py`) are both declared so: each
entry is imported, checked, and keyed by one of its fields, which no two entries may share.
A bad entry is an ImproperlyConfigured naming the setting and the entry.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

T = TypeVar("T")


def load(setting: str, paths: object, of: type[T], key: str, problem: Callable[[T], str]) -> dict[str, T]:
    """The objects of class `of` that the setting named `setting` (its value: `paths`) lists,
    by their field `key`, in the setting's order. `problem(item)` says what is wrong with an
    item of the right class ("" if nothing).

    Loaded once for each value of the setting (a changed setting, as tests make, counts at
    once): every card the page renders may ask, in Daphne's loop.
    """
    if not isinstance(paths, (list, tuple)):
        raise ImproperlyConfigured(f"{setting} must be a list of dotted paths, not {paths!r}")
    for path in paths:
        if not isinstance(path, str):
            raise ImproperlyConfigured(f"{setting}: {path!r} is not a dotted path")
    return _load_all(setting, tuple(paths), of, key, problem)


@cache
def _load_all(
    setting: str, paths: tuple[str, ...], of: type[T], key: str, problem: Callable[[T], str]
) -> dict[str, T]:
    found: dict[str, T] = {}
    for path in paths:
        item = _load_one(setting, path, of, problem)
        name = getattr(item, key)
        if name in found:
            raise ImproperlyConfigured(f"{setting}: {path!r} repeats the {key} {name!r}")
        found[name] = item
    return found


def _load_one(setting: str, path: str, of: type[T], problem: Callable[[T], str]) -> T:
    """The object at dotted `path`; ImproperlyConfigured naming the entry if it is no good."""
    try:
        item = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{setting}: cannot import {path!r}: {exc}") from exc
    if not isinstance(item, of):
        wrong = f"is a {type(item).__name__}, not a {of.__module__}.{of.__qualname__}"
    else:
        wrong = problem(item)
    if wrong:
        raise ImproperlyConfigured(f"{setting}: {path!r} {wrong}")
    return item
