"""docker-compose.yml, Procfile and .ci/run say what the README says."""

import shutil
import subprocess

import pytest

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


def test_procfile_has_web_worker_beat_and_recorder():
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line]
    assert [line.split(":", 1)[0] for line in lines] == ["web", "worker", "beat", "recorder"]
    assert "CELERY_LIVE_RECORDER=0" in lines[0]  # history is written by the recorder process only


def test_ci_runs_make_test_and_nothing_else():
    commands = [
        line
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"]
