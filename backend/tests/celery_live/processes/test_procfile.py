"""The Procfile reader: lines as sh reads them (for what a Procfile needs), clear errors otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from celery_live.processes.procfile import Procfile, ProcfileError, this_python_first
from tests.paths import BACKEND_DIR, ROOT_DIR

PYTHON_M_PROCFILE = (sys.executable, "-m", "celery_live.processes.procfile")


def procfile(tmp_path: Path, text: str) -> Procfile:
    path = tmp_path / "Procfile"
    path.write_text(text)
    return Procfile(path)


def argv(tmp_path: Path, command: str, **environ: str) -> list[str]:
    """What `one: <command>` runs, expanded against `environ` alone."""
    return list(procfile(tmp_path, f"one: {command}\n").command("one", environ).argv)


def test_the_repository_procfile_runs_its_lines_in_backend():
    found = Procfile.find(BACKEND_DIR / "celery_live")
    assert found.path == ROOT_DIR / "Procfile"
    web = found.command("web", {"HOST": "127.0.0.1", "PORT": "8123"})
    assert web.cwd == BACKEND_DIR
    assert web.argv == ("daphne", "-b", "127.0.0.1", "-p", "8123", "config.asgi:application")
    assert found.command("web", {}).argv[1:5] == ("-b", "0.0.0.0", "-p", "8000")  # a PaaS's defaults
    assert found.command("worker", {}).argv[:4] == ("celery", "-A", "config", "worker")
    assert found.command("recorder", {}).argv == ("python", "manage.py", "record_events")


def test_lines_keep_their_order_and_skip_blanks_and_comments(tmp_path):
    found = procfile(tmp_path, "# the processes\n\nweb: serve\n  # indented comment\nworker-2: work  # why\n")
    assert found.names == ["web", "worker-2"]
    assert found.command("worker-2", {}).argv == ("work",)
    assert found.command("web", {}).cwd == tmp_path  # where honcho and foreman run it


def test_variables_expand_from_the_environment_given(tmp_path):
    command = "run $A ${B} ${C:-fallback} ${D:-} x${A}y $ end"
    assert argv(tmp_path, command, A="1", B="2", C="3", D="4") == [
        "run", "1", "2", "3", "4", "x1y", "$", "end",
    ]  # fmt: skip
    # Unset or empty: the default; an empty unquoted expansion is no argument at all.
    assert argv(tmp_path, command, A="1", C="") == ["run", "1", "fallback", "x1y", "$", "end"]


def test_unquoted_expansions_split_into_words_quoted_ones_do_not(tmp_path):
    environ = {"ARGS": "  -Q q1  -n w@%h ", "EMPTY": ""}
    assert argv(tmp_path, "celery worker $ARGS", **environ) == ["celery", "worker", "-Q", "q1", "-n", "w@%h"]
    assert argv(tmp_path, 'echo "$ARGS" "$EMPTY" a${ARGS}b', **environ) == [
        "echo", "  -Q q1  -n w@%h ", "", "a", "-Q", "q1", "-n", "w@%h", "b",
    ]  # fmt: skip


def test_quotes_and_escapes_as_in_sh(tmp_path):
    command = r"""python -c 'print("$HOME")' "a b" "say \"hi\" \$X" a\ b '' \#not-a-comment # a comment"""
    assert argv(tmp_path, command, HOME="/h", X="x") == [
        "python", "-c", 'print("$HOME")', "a b", 'say "hi" $X', "a b", "", "#not-a-comment",
    ]  # fmt: skip


def test_cd_and_assignments_set_the_directory_and_the_environment(tmp_path):
    found = procfile(tmp_path, 'web: cd ${APP:-app} && MODE=live LABEL="$NAME x" EMPTY= serve --mode $MODE\n')
    web = found.command("web", {"NAME": "n", "MODE": "old", "PATH": "/bin"})
    assert web.cwd == tmp_path / "app"  # relative to the Procfile, not to our cwd
    assert web.argv == ("serve", "--mode", "old")  # as sh: words expand before assignments apply
    assert (web.env["MODE"], web.env["LABEL"], web.env["EMPTY"], web.env["NAME"]) == ("live", "n x", "", "n")
    assert found.command("web", {"APP": "/srv/site"}).cwd == Path("/srv/site")


def test_this_python_comes_first_on_path(tmp_path):
    here = str(Path(sys.executable).parent)
    web = procfile(tmp_path, "web: serve\n").command("web", {"PATH": "/usr/bin:/bin"})
    assert web.env["PATH"] == f"{here}{os.pathsep}/usr/bin:/bin"
    assert this_python_first(web.env)["PATH"] == web.env["PATH"]  # not twice


def test_extra_arguments_and_environment_go_over_the_line(tmp_path):
    worker = procfile(tmp_path, "worker: LEVEL=info celery worker\n").command("worker", {})
    more = worker.with_args("-Q", "doomed").with_env(LEVEL="debug", EXTRA="1")
    assert more.argv == ("celery", "worker", "-Q", "doomed")
    assert (more.env["LEVEL"], more.env["EXTRA"]) == ("debug", "1")
    assert worker.argv == ("celery", "worker")  # the original is unchanged


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("web serve", "this is not `name: command`"),
        (" web: serve", "this is not `name: command`"),
        ("web:", "there is no command to run"),
        ("web: LEVEL=info", "there is no command to run"),
        ("web: serve | tee log", "a pipe (|) is not supported"),
        ("web: migrate; serve", "a second command (;) is not supported"),
        ("web: serve > log", "a redirection (>) is not supported"),
        ("web: serve &", "a background command (&) is not supported"),
        ("web: serve || true", "a pipe (|) is not supported"),
        ("web: migrate && serve", "&& is supported after `cd DIR` only"),
        ("web: cd a && cd b && serve", "&& is supported after `cd DIR` only"),
        ("web: serve $(hostname)", "command substitution ($(...)) is not supported"),
        ("web: serve `hostname`", "command substitution (`...`) is not supported"),
        ("web: serve ${PORT:=80}", "${PORT:=80} is not supported: only ${VAR} and ${VAR:-default}"),
        ("web: serve ${PORT", "a ${ is never closed"),
        ("web: serve $1", "$1 is not supported"),
        ("web: serve 'x", "a ' is never closed"),
        ('web: serve "x', 'a " is never closed'),
        ("web: serve *.py", "a glob (*) is not supported"),
        ("web: cd ~/app && serve", "`~` is not expanded here"),
    ],
)
def test_a_line_sh_would_read_otherwise_is_an_error_naming_it(tmp_path, line, problem):
    with pytest.raises(ProcfileError) as error:
        procfile(tmp_path, f"# first\nbeat: tick\n{line}\n")
    assert str(error.value).startswith(f"{tmp_path / 'Procfile'}, line 3: {problem}")
    assert str(error.value).endswith(f"\n    {line}")  # the line itself, to be found at once


def test_a_name_twice_or_a_name_missing_is_an_error(tmp_path):
    with pytest.raises(ProcfileError, match=r"line 2: web is defined twice \(first on line 1\)"):
        procfile(tmp_path, "web: a\nweb: b\n")
    with pytest.raises(ProcfileError, match=r"has no 'worker' line \(it has web, beat\)"):
        procfile(tmp_path, "web: a\nbeat: b\n").command("worker", {})
    with pytest.raises(ProcfileError, match="has no process lines"):
        procfile(tmp_path, "# nothing\n")


def test_a_line_that_expands_to_nothing_is_an_error_when_expanded(tmp_path):
    found = procfile(tmp_path, "web: $SERVER\nbeat: cd $DIRS && tick\n")
    with pytest.raises(ProcfileError, match="line 1: the command expands to nothing\n    web: \\$SERVER"):
        found.command("web", {})
    with pytest.raises(ProcfileError, match=r"line 2: cd needs one directory, not \['a', 'b'\]"):
        found.command("beat", {"DIRS": "a b"})


def test_finding_a_procfile_looks_up_from_the_directory_given(tmp_path):
    (tmp_path / "Procfile").write_text("web: serve\n")
    (tmp_path / "backend" / "app").mkdir(parents=True)
    assert Procfile.find(tmp_path / "backend" / "app").path == tmp_path / "Procfile"
    with pytest.raises(ProcfileError, match="cannot read the Procfile"):
        Procfile(tmp_path / "nowhere" / "Procfile")


def test_python_m_procfile_becomes_the_line_in_its_directory(tmp_path):
    (tmp_path / "site").mkdir()
    code = "import os; print(os.getpid(), os.getcwd(), os.environ['GREETING'])"
    (tmp_path / "Procfile").write_text(f'hello: cd site && GREETING="hi $WHO" python -c "{code}"\n')
    process = subprocess.Popen(
        [*PYTHON_M_PROCFILE, "--procfile", tmp_path / "Procfile", "hello"],
        cwd=BACKEND_DIR,
        env={**os.environ, "WHO": "there"},
        stdout=subprocess.PIPE,
        text=True,
    )
    output, _ = process.communicate(timeout=30)
    # Its pid is the program's: a container's SIGTERM reaches the program itself.
    assert output.split(maxsplit=2) == [str(process.pid), str(tmp_path / "site"), "hi there\n"]


def test_python_m_procfile_says_what_is_wrong_and_exits_2(tmp_path):
    (tmp_path / "Procfile").write_text("web: serve | tee\n")
    done = subprocess.run(
        [*PYTHON_M_PROCFILE, "web"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(BACKEND_DIR)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert f"{tmp_path / 'Procfile'}, line 1: a pipe (|) is not supported" in done.stderr


@pytest.mark.parametrize(
    "words",
    [
        "$A ${B:-b} x${A}y ${EMPTY:-fallback} $UNSET end",
        '"$ARGS" $ARGS a${ARGS}b "$EMPTY" ${EMPTY}',
        r"""'$A "q"' "a \"b\" \$A \\ $A" a\ b '' "" end""",
        "-c ${N:-2} -n w@%h # and a comment",
    ],
)
def test_words_come_out_as_sh_makes_them(tmp_path, words):
    environ = {"A": "1", "ARGS": " -Q q  -n w@%h ", "EMPTY": "", "N": ""}
    # sh's own reading, one <argument> a line.
    sh = subprocess.run(
        ["sh", "-c", f"printf '<%s>\\n' {words}"], env=environ, capture_output=True, text=True, check=True
    )
    assert argv(tmp_path, words, **environ) == [line[1:-1] for line in sh.stdout.splitlines()]
