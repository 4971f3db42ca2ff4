"""docker-compose.yml, Procfile and .ci/run say what the README says."""

import re
import shutil
import subprocess

import pytest

from celery_live.processes.procfile import Procfile
from tests.paths import ROOT_DIR

ROOT = ROOT_DIR


def compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.skipif(compose_command() is None, reason="no docker compose client on this machine")
def test_docker_compose_file_is_valid_and_has_every_service():
    command = compose_command()
    subprocess.run([*command, "config", "-q"], cwd=ROOT, check=True)
    services = subprocess.run(
        [*command, "config", "--services"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    assert sorted(services) == ["backend", "beat", "celery", "db", "recorder", "redis"]


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


def test_ci_runs_make_test_and_nothing_else():
    commands = [
        line
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"]
