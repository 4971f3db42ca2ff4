"""The demo host's settings for production: DEBUG off unless asked, a secret key required,
HTTPS settings that `manage.py check --deploy` accepts."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from tests.paths import BACKEND_DIR


def run_in_backend(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    """`python argv...` in backend/ with the project's settings and `env`, and neither
    DJANGO_DEBUG nor DJANGO_SECRET_KEY from the test run unless `env` gives them."""
    base = {k: v for k, v in os.environ.items() if k not in ("DJANGO_DEBUG", "DJANGO_SECRET_KEY")}
    return subprocess.run(
        [sys.executable, *argv],
        cwd=BACKEND_DIR,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def debug_setting(**env: str) -> subprocess.CompletedProcess:
    return run_in_backend(["-c", "from django.conf import settings; print(settings.DEBUG)"], **env)


def test_without_a_secret_key_debug_off_refuses_to_start_and_says_why():
    done = debug_setting()
    assert done.returncode != 0
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: Set DJANGO_SECRET_KEY")


def test_debug_is_off_unless_asked():
    assert debug_setting(DJANGO_SECRET_KEY=secrets.token_urlsafe(50)).stdout.strip() == "False"
    assert debug_setting(DJANGO_DEBUG="1").stdout.strip() == "True"  # local use: no key needed


def test_check_deploy_is_clean_with_https_a_long_random_key_and_debug_off():
    done = run_in_backend(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_HTTPS="1",
    )
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout


def test_https_leaves_health_probes_on_plain_http_and_trusts_a_proxy_only_when_told():
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_REDIRECT_EXEMPT, s.SECURE_PROXY_SSL_HEADER)"
    )
    key = secrets.token_urlsafe(50)
    https = run_in_backend(["-c", code], DJANGO_SECRET_KEY=key, DJANGO_HTTPS="1").stdout.strip()
    assert https == "True ['^healthz$'] None"
    proxied = run_in_backend(["-c", code], DJANGO_SECRET_KEY=key, DJANGO_HTTPS="1", DJANGO_BEHIND_PROXY="1")
    assert proxied.stdout.strip().endswith("('HTTP_X_FORWARDED_PROTO', 'https')")
