"""Whether a person may start a new verification: one rule, per status, for the site's button and
message (the KYC lookups' `may_retry`), the n8n email's retry link, and the bridge's own refusal
to start a new inquiry. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping

# The final statuses whose retry is configurable ([onboarding.retry] in the TOML), and the default.
CONFIGURABLE = ("declined", "failed", "expired")
DEFAULT = {"declined": False, "failed": True, "expired": True}
# Nothing decided yet: the person starts or continues.
OPEN = ("not_started", "created", "pending")


def may_retry(status: str, allowed: Mapping[str, bool], *, lapsed: bool = False) -> bool:
    """True when a new (or continued) verification may start after `status`. Submitted cases wait
    for their decision and an approval needs nothing more: both False. An approval past its renewal
    deadline (`lapsed`, shown `expired`) always may: verifying again is what it asks for."""
    if status in OPEN or lapsed:
        return True
    return bool(allowed.get(status, False)) if status in CONFIGURABLE else False
