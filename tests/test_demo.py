"""`kyc-bridge demo` end to end: a real gunicorn server, signed events over HTTP, the printed report."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import requests

from bridge import config as config_module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_reports_states_and_tag_changes_and_keeps_serving(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLUENTCRM_", "N8N_", "BRIDGE_", "PERSONA_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge.app.cli", "demo", "--port", str(port), "--database", str(tmp_path / "demo.db")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if line.startswith("Press Ctrl-C"):
                break
        output = "\n".join(lines)
        assert "Press Ctrl-C" in output, output
        states = {line.strip().split("  ")[0]: line for line in lines if "CRM sync:" in line}
        assert "approved" in states["Ada (investor)"] and "investor/enhanced" in states["Ada (investor)"]
        assert "approved" in states["Ben (customer)"]
        assert "declined" in states["Chloé (vendor)"]  # the older 'completed' arrived late and lost
        assert " failed " in states["Dev (cooperative member, pre-2025 payload)"]
        assert any("200 duplicate" in line for line in lines)
        assert any("arrives late" in line and "200 stored" in line for line in lines)
        assert "would have been made (FluentCRM not configured)" in output
        assert "Chloé (vendor): dry run: would attach kyc-declined, kyc-type-vendor" in output
        # still serving afterwards, where it said
        assert f"keeps serving on http://127.0.0.1:{port}" in output
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        # links and Persona's redirect back follow --port (the bundled config says 8000)
        link = re.search(r"consent page .*?(http://\S+)", output).group(1)
        assert link.startswith(f"http://127.0.0.1:{port}/verify/")
        assert requests.get(link, timeout=5).status_code == 200
        token = re.search(r"Bearer (\S+)'", output).group(1)
        session = requests.post(f"http://127.0.0.1:{port}/api/v1/sessions", timeout=10, json={
            "email": "fay@example.com", "user_type": "customer", "consent": {
                "share_with_persona": True, "persona_retention": True, "gdpr_processing": True,
                "text_version": config_module.load(None).consent.version}},
            headers={"Authorization": f"Bearer {token}"})
        assert session.status_code == 201, session.text
        redirect = parse_qs(urlsplit(session.json()["hosted_url"]).query)["redirect-uri"]
        assert redirect == [f"http://127.0.0.1:{port}/verify/done"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
    assert (tmp_path / "demo.db").exists()


def test_demo_and_serve_links_follow_the_port_unless_the_config_names_its_own_address():
    bundled = config_module.load(None)
    moved = config_module.served_at(bundled, "0.0.0.0", 8700)
    assert moved.public_url == "http://127.0.0.1:8700"
    assert "http://127.0.0.1:8700" in moved.allowed_redirect_origins
    assert "http://127.0.0.1:8000" not in moved.allowed_redirect_origins
    assert config_module.served_at(bundled, "::", 8700).public_url == "http://[::1]:8700"
    tunnel = replace(bundled, public_url="https://demo.example.net")
    assert config_module.served_at(tunnel, "127.0.0.1", 8700) is tunnel
