"""Start the test bridge, the Persona stand-in and the test WordPress, print where they are, and
keep them running until Ctrl-C (scripts/wp-dev.sh). For looking at the plugin by hand."""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wp.services import BridgeServer, PersonaStandIn  # noqa: E402
from wp.site import ADMIN_PASS, ADMIN_USER, WordPressSite, missing_tools  # noqa: E402


def _interrupt(signum, frame):  # type: ignore[no-untyped-def]
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    reason = missing_tools()
    if reason:
        print(f"cannot start WordPress: {reason}", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="kycb-dev-"))
    standin = PersonaStandIn(workdir)
    bridge = BridgeServer(workdir / "bridge", standin.https_url + "/verify")
    site = None
    try:
        site = WordPressSite(bridge, persona_script_url=standin.http_url + "/persona-standin.js")
        print(f"bridge     {bridge.url}  (token {bridge.token}, log {workdir / 'bridge' / 'bridge.log'})")
        print(f"WordPress  {site.url}/wp-admin/  ({ADMIN_USER} / {ADMIN_PASS}); files in {site.root}")
        print(f"pages      {', '.join(site.info['pages'].values())}")
        print(f"env        WP_DIR={site.wp_dir} WP_URL={site.url}")
        print("Ctrl-C (or SIGTERM) stops everything.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        if site is not None:
            site.close()
        bridge.close()
        standin.close()


if __name__ == "__main__":
    sys.exit(main())
