"""The Procfile: the process list, written once, read by everything that starts the processes.

`make run` (`manage.py run_dashboard`), the test stacks and docker-compose.yml run its lines;
so can honcho, foreman or a PaaS, which hand each line to `sh -c`. Here a line is read as
sh would read it, for the part of sh a Procfile needs, and run without a shell: the pid
started is the program's own, so signals (a worker's warm shutdown on SIGTERM) reach it.

A line is `name: [cd DIR &&] [VAR=value ...] program [argument ...]`:

- words are split on blanks; '...' and "..." quote, a backslash escapes one character;
- `$VAR`, `${VAR}` and `${VAR:-default}` (the default when VAR is unset or empty) expand
  from the environment given, unquoted expansions split into words as sh splits them (an
  empty one is no word at all), quoted ones do not;
- `cd DIR &&` sets the directory, relative to the Procfile's own (where honcho and foreman
  run it); without it the command runs there;
- `VAR=value` before the program is set in its environment only, over what was given.

Anything else sh would do (pipes, `;`, `||`, redirections, `$(...)`, globbing, `~`) is an
error that names the line, not a surprise. Blank lines and `#` comments are skipped.

`python -m celery_live.processes.procfile NAME` becomes the Procfile's NAME process (it
execs it): a container's command runs the line the others run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# What honcho and foreman take for a process line (a name at the start of the line, then a
# colon); a name may have a dash, as theirs may.
_LINE = re.compile(r"([A-Za-z0-9_-]+):\s*(.*)")
_ASSIGNMENT = re.compile(rf"({_NAME})=(.*)", re.DOTALL)
_BRACED = re.compile(rf"({_NAME})(?::-(.*))?", re.DOTALL)
_BLANKS = re.compile(r"[ \t\n]+")
# The rest of sh's syntax, refused with what it is: a line is one command.
_UNSUPPORTED = {
    "|": "a pipe (|)",
    ";": "a second command (;)",
    "&": "a background command (&)",
    "<": "a redirection (<)",
    ">": "a redirection (>)",
    "(": "a subshell, ( ... )",
    ")": "a subshell, ( ... )",
    "`": "command substitution (`...`)",
    "*": "a glob (*)",
    "?": "a glob (?)",
    "[": "a glob ([)",
}


class ProcfileError(ValueError):
    """A Procfile that is missing, or a line of it this reader does not run as sh would."""


@dataclass(frozen=True)
class _Variable:
    """`$NAME`, `${NAME}` or `${NAME:-default}` in a word; `quoted` inside "..."."""

    name: str
    default: str | None
    quoted: bool

    def value(self, environ: Mapping[str, str]) -> str:
        value = environ.get(self.name, "")
        return self.default if not value and self.default is not None else value


# A word: literal text (quoted or not: never split) and variables, in order.
_Word = tuple[str | _Variable, ...]


class _Lexer:
    """Splits a command into words and `&&`, refusing the sh syntax it does not run."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.tokens: list[_Word | str] = []
        self.parts: list[str | _Variable] = []

    def tokens_of(self) -> list[_Word | str]:
        text = self.text
        while self.at < len(text):
            char = text[self.at]
            if char in " \t":
                self._end_word()
                self.at += 1
            elif char == "#" and not self.parts:
                break  # a comment, to the end of the line
            elif text.startswith("&&", self.at):
                self._end_word()
                self.tokens.append("&&")
                self.at += 2
            elif char in _UNSUPPORTED:
                raise ProcfileError(f"{_UNSUPPORTED[char]} is not supported: quote it, or write one command")
            elif char == "~" and not self.parts:
                raise ProcfileError("`~` is not expanded here: write the directory")
            elif char == "'":
                end = text.find("'", self.at + 1)
                if end < 0:
                    raise ProcfileError("a ' is never closed")
                self._add(text[self.at + 1 : end])
                self.at = end + 1
            elif char == '"':
                self._double_quoted()
            elif char == "\\":
                if self.at + 1 == len(text):
                    raise ProcfileError("a line may not end with \\ (no continuation lines)")
                self._add(text[self.at + 1])
                self.at += 2
            elif char == "$":
                self._add(self._dollar(quoted=False))
            else:
                self._add(char)
                self.at += 1
        self._end_word()
        return self.tokens

    def _add(self, part: str | _Variable) -> None:
        if isinstance(part, str) and self.parts and isinstance(self.parts[-1], str):
            self.parts[-1] += part
        else:
            self.parts.append(part)

    def _end_word(self) -> None:
        if self.parts:
            self.tokens.append(tuple(self.parts))
            self.parts = []

    def _double_quoted(self) -> None:
        text = self.text
        self.at += 1
        self._add("")  # "" is a word, an empty one
        while self.at < len(text):
            char = text[self.at]
            if char == '"':
                self.at += 1
                return
            if char == "\\" and text[self.at + 1 : self.at + 2] in ("$", "`", '"', "\\"):
                self._add(text[self.at + 1])
                self.at += 2
            elif char == "`":
                raise ProcfileError(f"{_UNSUPPORTED['`']} is not supported")
            elif char == "$":
                self._add(self._dollar(quoted=True))
            else:
                self._add(char)
                self.at += 1
        raise ProcfileError('a " is never closed')

    def _dollar(self, quoted: bool) -> str | _Variable:
        rest = self.text[self.at + 1 :]
        if rest.startswith("{"):
            end = rest.find("}")
            if end < 0:
                raise ProcfileError("a ${ is never closed")
            braced = _BRACED.fullmatch(rest[1:end])
            if braced is None:
                raise ProcfileError(
                    f"${{{rest[1:end]}}} is not supported: only ${{VAR}} and ${{VAR:-default}}"
                )
            name, default = braced.groups()
            if default is not None and any(char in default for char in "$`'\"\\"):
                raise ProcfileError(f"the default of ${{{name}}} may hold no quotes, $ or \\")
            self.at += end + 2
            return _Variable(name, default, quoted)
        if rest.startswith("("):
            raise ProcfileError("command substitution ($(...)) is not supported")
        if named := re.match(_NAME, rest):
            self.at += 1 + named.end()
            return _Variable(named[0], None, quoted)
        if rest[:1] not in ("", " ", "\t", '"'):
            raise ProcfileError(f"${rest[0]} is not supported: only $VAR, ${{VAR}} and ${{VAR:-default}}")
        self.at += 1
        return "$"  # a lone $ is itself, as in sh


def _fields(word: _Word, environ: Mapping[str, str]) -> list[str]:
    """The arguments `word` makes: unquoted expansions split on blanks, as sh splits them."""
    fields: list[str] = []
    text, solid = "", False  # solid: the word is there even if empty ("" or '')
    for part in word:
        if isinstance(part, str):
            text, solid = text + part, True
        elif part.quoted:
            text, solid = text + part.value(environ), True
        else:
            first, *rest = _BLANKS.split(part.value(environ))
            text += first
            for piece in rest:
                if solid or text:
                    fields.append(text)
                text, solid = piece, False
    if solid or text:
        fields.append(text)
    return fields


def _joined(word: _Word, environ: Mapping[str, str]) -> str:
    """The value of an assignment's word: expanded, never split."""
    return "".join(part if isinstance(part, str) else part.value(environ) for part in word)


@dataclass(frozen=True)
class _Line:
    """A Procfile line, parsed; expanded against an environment by `Procfile.command`."""

    number: int
    text: str
    directory: _Word | None
    assignments: tuple[tuple[str, _Word], ...]
    words: tuple[_Word, ...]


def _parse(number: int, text: str, command: str) -> _Line:
    tokens = _Lexer(command).tokens_of()
    directory = None
    if "&&" in tokens:
        if tokens.count("&&") > 1 or tokens[0] != ("cd",) or len(tokens) < 4 or tokens[2] != "&&":
            raise ProcfileError("&& is supported after `cd DIR` only: write `cd DIR && COMMAND`")
        directory, tokens = tokens[1], tokens[3:]
    assignments = []
    while tokens and isinstance(head := tokens[0][0], str) and (assigned := _ASSIGNMENT.fullmatch(head)):
        name, value = assigned.groups()
        assignments.append((name, ((value,) if value else ()) + tokens[0][1:]))
        tokens = tokens[1:]
    if not tokens:
        raise ProcfileError("there is no command to run")
    return _Line(number, text, directory, tuple(assignments), tuple(tokens))


def this_python_first(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with this interpreter's directory first on PATH, as an activated virtualenv
    has it: the Procfile's `python`, `celery` and `daphne` are then this venv's, however we
    were started (`make run` calls .venv/bin/python without activating anything)."""
    here = str(Path(sys.executable).parent)
    path = environ.get("PATH", os.defpath)
    if path.split(os.pathsep)[0] != here:
        path = os.pathsep.join((here, path))
    return {**environ, "PATH": path}


@dataclass(frozen=True)
class ProcessCommand:
    """One Procfile line, expanded: what to run, where, and its whole environment."""

    name: str
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]

    def with_args(self, *args: str) -> ProcessCommand:
        """The same command with `args` after its own (e.g. a worker's `-Q queue -n name@%h`)."""
        return replace(self, argv=(*self.argv, *args))

    def with_env(self, **env: str) -> ProcessCommand:
        """The same command with `env` over its environment, the line's own VAR=value included."""
        return replace(self, env={**self.env, **env})

    def popen(self, **options: Any) -> subprocess.Popen:
        """Start it; `options` go to subprocess.Popen (stdout, start_new_session...)."""
        return subprocess.Popen(self.argv, cwd=self.cwd, env=dict(self.env), **options)

    def exec(self) -> NoReturn:
        """Become it: this process's pid, hence its signals, are the program's."""
        os.chdir(self.cwd)
        os.execvpe(self.argv[0], self.argv, dict(self.env))


class Procfile:
    """A Procfile's lines by name, in its order; every line is checked when it is read."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).absolute()
        try:
            text = self.path.read_text()
        except OSError as exc:
            raise ProcfileError(f"cannot read the Procfile {self.path}: {exc.strerror}") from None
        self._lines: dict[str, _Line] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                entry = _LINE.fullmatch(line)
                if entry is None:
                    raise ProcfileError("this is not `name: command` (a name of letters, digits, _ and -)")
                name, command = entry.groups()
                if name in self._lines:
                    raise ProcfileError(f"{name} is defined twice (first on line {self._lines[name].number})")
                self._lines[name] = _parse(number, line, command)
            except ProcfileError as exc:
                raise ProcfileError(f"{self.path}, line {number}: {exc}\n    {line}") from None
        if not self._lines:
            raise ProcfileError(f"{self.path} has no process lines")

    @classmethod
    def find(cls, start: str | os.PathLike) -> Procfile:
        """The Procfile in `start` or the nearest directory above it."""
        start = Path(start).absolute()
        for directory in (start, *start.parents):
            if (directory / "Procfile").is_file():
                return cls(directory / "Procfile")
        raise ProcfileError(f"no Procfile in {start} or any directory above it")

    @property
    def names(self) -> list[str]:
        """The process names, in the Procfile's order."""
        return list(self._lines)

    def command(self, name: str, environ: Mapping[str, str]) -> ProcessCommand:
        """The line `name`, expanded against `environ`, which its process then runs with
        (this Python's directory first on PATH, the line's own VAR=value over the rest)."""
        line = self._lines.get(name)
        if line is None:
            raise ProcfileError(f"{self.path} has no {name!r} line (it has {', '.join(self._lines)})")
        try:
            cwd = self.path.parent
            if line.directory is not None:
                directory = _fields(line.directory, environ)
                if len(directory) != 1:
                    raise ProcfileError(f"cd needs one directory, not {directory}")
                cwd = cwd / directory[0]
            argv = tuple(field for word in line.words for field in _fields(word, environ))
            if not argv:
                raise ProcfileError("the command expands to nothing")
        except ProcfileError as exc:
            raise ProcfileError(f"{self.path}, line {line.number}: {exc}\n    {line.text}") from None
        env = this_python_first(environ)
        env.update((variable, _joined(word, environ)) for variable, word in line.assignments)
        return ProcessCommand(name, argv, cwd, env)


def main(argv: list[str] | None = None) -> NoReturn:
    """`python -m celery_live.processes.procfile NAME`: exec the Procfile's NAME line."""
    parser = argparse.ArgumentParser(
        prog="python -m celery_live.processes.procfile",
        description="Become the process a Procfile line names (e.g. a container's command).",
    )
    parser.add_argument("name", help="the line's name: web, worker...")
    parser.add_argument(
        "--procfile", type=Path, help="default: the Procfile in the current directory or above it"
    )
    args = parser.parse_args(argv)
    try:
        procfile = Procfile(args.procfile) if args.procfile else Procfile.find(Path.cwd())
        command = procfile.command(args.name, os.environ)
    except ProcfileError as exc:
        parser.exit(2, f"{parser.prog}: {exc}\n")
    command.exec()


if __name__ == "__main__":
    main()
