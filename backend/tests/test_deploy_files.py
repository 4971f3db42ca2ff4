"""docker-compose.yml, Procfile and .ci/run say what the README says."""

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

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


def compose_services() -> dict[str, dict]:
    """docker-compose.yml's services, its anchors and merge keys resolved."""
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


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
    assert sorted(services) == ["backend", "beat", "celery", "db", "migrate", "proxy", "recorder", "redis"]


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
    services = compose_services()
    run = r"^python -m celery_live\.processes\.procfile (\w+)$"
    lines = {name: re.match(run, service.get("command", "")) for name, service in services.items()}
    # Each app service runs one line, the one-shot `migrate` the migrations; Redis is compose's own.
    assert {name: line[1] for name, line in lines.items() if line} == {
        "backend": "web",
        "celery": "worker",
        "beat": "beat",
        "recorder": "recorder",
    }
    assert services["migrate"]["command"] == "python manage.py migrate --noinput"
    assert services["redis"]["command"].startswith("redis-server")


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


APP_SERVICES = ("backend", "celery", "beat", "recorder")


def test_the_web_service_scales_behind_a_proxy_that_balances_and_upgrades_websockets():
    services = compose_services()
    # No host port, no fixed name: `--scale backend=N` starts N replicas without a clash.
    assert "ports" not in services["backend"]
    assert all("container_name" not in service for service in services.values())
    proxy = services["proxy"]
    assert proxy["image"] == "nginx:alpine"
    assert proxy["ports"] == ["8000:8000"]
    assert proxy["volumes"] == ["./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro"]
    assert proxy["depends_on"] == {"backend": {"condition": "service_healthy"}}
    assert "healthcheck" in proxy


def nginx_directives() -> list[str]:
    """deploy/nginx.conf's directives, one per item, comments and extra spaces dropped."""
    text = re.sub(r"#.*", "", (ROOT / "deploy" / "nginx.conf").read_text())
    return [" ".join(part.split()) for part in re.split(r"[;{}]", text) if part.strip()]


def test_the_proxy_re_resolves_the_replicas_and_passes_websockets_and_the_client():
    directives = nginx_directives()
    for expected in (
        "listen 8000",
        # Docker's DNS, asked again while nginx runs (a variable): scaled or restarted
        # replicas are found.
        "resolver 127.0.0.11 valid=5s ipv6=off",
        "set $backend http://backend:8000",
        "proxy_pass $backend",
        # WebSockets: HTTP/1.1, the upgrade passed through, no 60 s idle cut.
        "map $http_upgrade $connection_upgrade",
        "proxy_http_version 1.1",
        "proxy_set_header Upgrade $http_upgrade",
        "proxy_set_header Connection $connection_upgrade",
        "proxy_read_timeout 1h",
        # Who asked, and how: the host (origin checks), the client's address, the scheme.
        "proxy_set_header Host $http_host",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for",
        "proxy_set_header X-Forwarded-Proto $scheme",
    ):
        assert expected in directives, expected


@pytest.mark.skipif(
    shutil.which("nginx") is None, reason="no nginx on this machine to check deploy/nginx.conf"
)
def test_the_proxy_config_is_valid_nginx(tmp_path):
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid; error_log stderr; events {{}}\n"
        f"http {{ access_log off; include {ROOT / 'deploy' / 'nginx.conf'}; }}\n"
    )
    done = subprocess.run(["nginx", "-t", "-c", str(main)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_migrations_run_once_before_any_app_service_starts():
    services = compose_services()
    migrate = services["migrate"]
    assert migrate["restart"] == "no"  # a one-shot: done, it stays done
    assert set(migrate["depends_on"]) == {"redis", "db"}
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert "migrate" not in services[name]["command"]  # replicas never migrate side by side
