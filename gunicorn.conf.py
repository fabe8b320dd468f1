"""gunicorn settings for a checkout: `gunicorn -c gunicorn.conf.py`. They live in the package, so an
installed kyc-bridge uses the same ones with `gunicorn -c python:bridge.app.gunicorn_conf`."""

from bridge.app import gunicorn_conf as _settings

# Every name, hooks and the intake writer's handle included, as if written here.
globals().update({name: value for name, value in vars(_settings).items() if not name.startswith("__")})
