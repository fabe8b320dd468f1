"""Rate limits for the public routes (flask-limiter). Counters live in memory per process unless
BRIDGE_RATELIMIT_STORAGE_URI points at a shared store (e.g. redis://…) for several processes."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, headers_enabled=True)
STORAGE_ENV = "BRIDGE_RATELIMIT_STORAGE_URI"
PER_PROCESS = "memory://"


def storage_uri(environ: Mapping[str, str]) -> str:
    """Where the limit counters live: this process (the default), or a store that several processes
    and hosts share (redis://host:6379/0, memcached://host:11211; redis needs `pip install kyc-bridge[redis]`)."""
    return environ.get(STORAGE_ENV, "").strip() or PER_PROCESS


def describe(uri: str) -> str:
    """The start-up line about rate limits (scheme and host only: a URI may carry a password)."""
    if uri == PER_PROCESS:
        return (f"rate limits: counted per process ({PER_PROCESS}); with several processes or hosts set "
                f"{STORAGE_ENV}=redis://HOST:6379/0 to share them")
    parts = urlsplit(uri)
    return f"rate limits: shared through {parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


# The blueprints with routes decorated with @limiter.limit.
LIMITED_BLUEPRINTS = ("onboarding", "verify")


def init_app(app: Flask) -> None:
    hook_lists = (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
    registered_before = [list(hooks.get(None, ())) for hooks in hook_lists]
    limiter.init_app(app)
    # Flask-Limiter's own app-wide hooks are the ones init_app added; the app's keep their place.
    _check, inject_headers, release = ([hook for hook in hooks.get(None, ()) if hook not in before]
                                       for hooks, before in zip(hook_lists, registered_before))
    for hooks, before in zip(hook_lists, registered_before):
        hooks[None] = before
    # The before-request check is dropped: there are no default limits, and the routes decorated
    # with @limiter.limit check for themselves; app-wide it would only resolve "no limits" on every
    # other request, at a third of a webhook's non-database CPU time. The after-request hook (the
    # X-RateLimit headers) and teardown only matter where a limit was checked: they run for the
    # limited blueprints, not for every webhook (14 µs a webhook).
    for name in LIMITED_BLUEPRINTS:
        app.after_request_funcs[name] = [*inject_headers, *app.after_request_funcs.get(name, [])]
        app.teardown_request_funcs[name] = [*release, *app.teardown_request_funcs.get(name, [])]


def per_ip() -> str:
    from bridge.web.common import runtime

    return runtime().config.rate_limit_per_ip


def per_link() -> str:
    from bridge.web.common import runtime

    return runtime().config.rate_limit_per_link


def link_key() -> str:
    """The link token of the request (path or JSON body): limits one link, whatever the IP."""
    token = (request.view_args or {}).get("token")
    if token is None and request.is_json:
        token = (request.get_json(silent=True) or {}).get("link_token")
    return f"link:{token or '-'}"
