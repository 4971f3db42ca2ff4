"""docker-compose.yml, Procfile and .ci/run say what the README says."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from celery_live.processes.procfile import Procfile
from tests.paths import BACKEND_DIR, ROOT_DIR

ROOT = ROOT_DIR


def compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def compose_env(**env: str) -> dict[str, str]:
    """The environment compose reads the file with: none of the test run's DJANGO_SECRET_KEY."""
    return {**{k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}, **env}


@pytest.mark.skipif(compose_command() is None, reason="no docker compose client on this machine")
def test_docker_compose_file_is_valid_and_has_every_service():
    command = compose_command()
    env = compose_env(DJANGO_SECRET_KEY="a-long-random-string-for-this-test-only-0123456789")
    subprocess.run([*command, "config", "-q"], cwd=ROOT, env=env, check=True)
    services = subprocess.run(
        [*command, "config", "--services"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    assert sorted(services) == ["backend", "beat", "celery", "db", "recorder", "redis"]


@pytest.mark.skipif(compose_command() is None, reason="no docker compose client on this machine")
def test_compose_refuses_to_run_without_a_secret_key():
    done = subprocess.run(
        [*compose_command(), "config", "-q"], cwd=ROOT, env=compose_env(), capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "set DJANGO_SECRET_KEY" in done.stderr


def test_compose_runs_the_app_in_login_mode_with_debug_off():
    environment = (ROOT / "docker-compose.yml").read_text().split("x-app:")[0]
    assert 'DJANGO_DEBUG: "0"' in environment
    assert 'CELERY_LIVE_REQUIRE_LOGIN: "1"' in environment


def test_compose_uses_the_seed_images_with_healthchecks():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "image: redis:7-alpine" in text
    assert "image: postgres:16-alpine" in text
    assert text.count("healthcheck:") >= 3


def test_procfile_has_web_beat_worker_and_recorder():
    procfile = Procfile(ROOT / "Procfile")
    assert procfile.names == ["web", "beat", "worker", "recorder"]
    # History is written by the recorder process only.
    assert procfile.command("web", {}).env["CELERY_LIVE_RECORDER"] == "0"


def test_the_image_and_compose_run_the_procfile_lines_and_nothing_else():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY Procfile ." in dockerfile
    assert 'CMD ["python", "-m", "celery_live.processes.procfile", "web"]' in dockerfile
    compose = (ROOT / "docker-compose.yml").read_text()
    run = r"python -m celery_live\.processes\.procfile (\w+)"
    commands = re.findall(r"^    command: (.*)$", compose, re.MULTILINE)
    # Each app service runs one line (the web after migrating); Redis is compose's own.
    assert [re.search(run, command)[1] for command in commands[:-1]] == ["web", "worker", "beat", "recorder"]
    assert commands[0].startswith('sh -c "python manage.py migrate --noinput && exec ')
    assert commands[-1].startswith("redis-server")


def test_the_image_collects_static_files_with_debug_off_and_keeps_no_secret_key(tmp_path):
    dockerfile = (ROOT / "Dockerfile").read_text()
    [line] = [line for line in dockerfile.splitlines() if line.startswith("RUN") and "collectstatic" in line]
    command = line.split("&&")[-1].split()
    assigned = dict(word.split("=", 1) for word in command[: command.index("python")])
    assert assigned["DJANGO_DEBUG"] == "0"
    assert not re.search(r"^ENV .*DJANGO_SECRET_KEY", dockerfile, re.MULTILINE)  # not in the image
    inherited = {k: v for k, v in os.environ.items() if k not in ("DJANGO_DEBUG", "DJANGO_SECRET_KEY")}
    env = {
        **inherited,
        **assigned,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CELERY_LIVE_DATA_DIR": str(tmp_path),
    }
    argv = [sys.executable, *command[command.index("python") + 1 :]]
    subprocess.run(argv, cwd=BACKEND_DIR, env=env, check=True)
    assert (tmp_path / "staticfiles" / "celery_live" / "css" / "app.css").exists()


def test_ci_runs_make_test_and_nothing_else():
    commands = [
        line
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"]
