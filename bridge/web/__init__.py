"""Flask application factory and blueprints (one per surface). Views only translate HTTP."""

from __future__ import annotations

import logging
import os

from flask import Flask

from bridge import config as config_module
from bridge.config import Config
from bridge.runtime import Runtime
from bridge.settings import Settings


def create_app(settings: Settings | None = None, config: Config | None = None,
               runtime: Runtime | None = None) -> Flask:
    if runtime is None:
        settings = settings or Settings.from_env(os.environ)
        config = config or config_module.load(settings.config_file)
        runtime = Runtime.build(settings, config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = runtime.config.max_body_bytes
    from bridge.web import limits

    app.config["RATELIMIT_STORAGE_URI"] = limits.storage_uri(os.environ)
    logging.getLogger(__name__).info("%s", limits.describe(app.config["RATELIMIT_STORAGE_URI"]))
    if runtime.config.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = runtime.config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["kyc_bridge"] = runtime
    register_blueprints(app)
    register_errorhandlers(app)
    return app


def register_blueprints(app: Flask) -> None:
    from bridge.web import api, contacts, health, limits, onboarding, verify, webhooks

    limits.init_app(app)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(contacts.bp)
    app.register_blueprint(onboarding.bp)
    app.register_blueprint(verify.bp)
    app.register_blueprint(health.bp)


def register_errorhandlers(app: Flask) -> None:
    from bridge.web.errors import register

    register(app)
