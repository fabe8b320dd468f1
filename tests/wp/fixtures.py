"""Session-scoped fixtures for the WordPress and browser tests (loaded with `pytest_plugins`).

Each skips with a reason when its tools are missing, except under CI=true where that fails.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import unavailable
from wp.services import Browser, BridgeServer, PersonaStandIn, chromium_missing


@pytest.fixture(scope="session")
def wp_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wp-services")


@pytest.fixture(scope="session")
def persona_standin(wp_workdir: Path) -> Iterator[PersonaStandIn]:
    if shutil.which("openssl") is None:
        unavailable("openssl not found (needed for the HTTPS Persona stand-in)")
    standin = PersonaStandIn(wp_workdir)
    yield standin
    standin.close()


@pytest.fixture(scope="session")
def bridge(wp_workdir: Path, persona_standin: PersonaStandIn) -> Iterator[BridgeServer]:
    """A real `kyc-bridge serve` on a temporary SQLite store. The hosted flow is the HTTPS stand-in:
    the consent page's CSP (form-action 'self' https:) would block a redirect to plain http."""
    server = BridgeServer(wp_workdir / "bridge", persona_standin.https_url + "/verify")
    yield server
    server.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    reason = chromium_missing()
    if reason:
        unavailable(reason)
    started = Browser()
    yield started
    started.close()


@pytest.fixture(scope="session")
def wordpress(bridge: BridgeServer, persona_standin: PersonaStandIn):  # type: ignore[no-untyped-def]
    from wp.site import WordPressSite, missing_tools

    reason = missing_tools()
    if reason:
        unavailable(reason)
    site = WordPressSite(bridge, persona_script_url=persona_standin.http_url + "/persona-standin.js")
    yield site
    site.close()
