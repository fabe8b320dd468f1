"""The wheel works on its own: built from the files the Dockerfile copies, installed into a fresh
venv, run from a directory outside the checkout, it migrates a database, serves, stores a signed
webhook, and gunicorn loads its settings from the installed package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from bridge import config as config_module
from bridge.persona import samples
from conftest import WEBHOOK_SECRET, free_port, new_id, signed_headers, wait_healthy

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "bridge", "migrations")  # what the Dockerfile's build stage copies


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(source)])
    [built] = dist.glob("kyc_bridge-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv (no pip of its own: this one's pip installs into it, with the dependencies)."""
    root = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", str(root)])
    run([sys.executable, "-m", "pip", "--python", str(root / "bin" / "python"), "install", "--quiet", str(wheel)])
    return root / "bin"


@pytest.fixture
def site(tmp_path, venv) -> tuple[Path, dict[str, str]]:
    """A working directory outside the checkout and an environment that knows nothing of it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BRIDGE_", "PERSONA_", "FLUENTCRM_", "N8N_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=f"{venv}{os.pathsep}{env.get('PATH', '')}",
               BRIDGE_DATABASE_URL=f"sqlite:///{tmp_path / 'bridge.db'}", BRIDGE_SECRET_KEY="k",
               BRIDGE_ADMIN_TOKEN="t", PERSONA_WEBHOOK_SECRETS=WEBHOOK_SECRET)
    return tmp_path, env


def approved_event() -> bytes:
    template_id = config_module.load(None).user_types["customer"].template_id
    return samples.encode(samples.inquiry_event(event_id=new_id("evt"), inquiry_id=new_id("inq"), status="approved",
                                                created_at=datetime.now(timezone.utc), template_id=template_id))


def test_the_wheel_holds_every_module_migration_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = run(["git", "ls-files", "bridge", "migrations"], cwd=REPO).stdout.split()
    # migrations/ ships as the package bridge.migrations
    expected = {"bridge/" + path if path.startswith("migrations/") else path for path in tracked}
    assert expected - names == set(), "missing from the wheel (pyproject.toml: packages / package-data)"


def test_installed_wheel_migrates_serves_and_stores_a_signed_webhook(site, venv):
    cwd, env = site
    where = run([str(venv / "python"), "-c", "import bridge; print(bridge.__file__)"], cwd=cwd, env=env).stdout
    assert not where.startswith(str(REPO)), where  # the installed copy, not the checkout
    assert "database at revision head" in run([str(venv / "kyc-bridge"), "db", "upgrade"], cwd=cwd, env=env).stdout
    port = free_port()
    server = subprocess.Popen([str(venv / "kyc-bridge"), "serve", "--port", str(port)], cwd=cwd, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, seconds=60)
        assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
        body = approved_event()
        response = requests.post(f"{base}/webhooks/persona", data=body, headers=signed_headers(body), timeout=10)
        assert (response.status_code, response.json()["status"]) == (200, "stored"), response.text
        health = run([str(venv / "kyc-bridge"), "healthcheck", "--role", "web"], cwd=cwd,
                     env={**env, "BRIDGE_BIND": f"127.0.0.1:{port}"})
        assert health.stdout.strip() == "healthy (web)"
    finally:
        server.terminate()
        server.wait(30)


def test_installed_gunicorn_settings_load_and_serve(site, venv):
    cwd, env = site
    run([str(venv / "kyc-bridge"), "db", "upgrade"], cwd=cwd, env=env)
    conf = ["-c", "python:bridge.app.gunicorn_conf"]
    run([str(venv / "gunicorn"), "--check-config", *conf], cwd=cwd, env=env)
    port = free_port()
    env = {**env, "BRIDGE_BIND": f"127.0.0.1:{port}", "BRIDGE_WEB_WORKERS": "1", "BRIDGE_WEB_THREADS": "2",
           "BRIDGE_ACCESS_LOG": ""}
    master = subprocess.Popen([str(venv / "gunicorn"), *conf], cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, seconds=60)
        body = approved_event()
        response = requests.post(f"{base}/webhooks/persona", data=body, headers=signed_headers(body), timeout=10)
        assert response.status_code == 200, response.text
    finally:
        master.terminate()
        master.wait(30)
