"""The Alembic migrations, installed as the package `bridge.migrations` (see pyproject.toml) so an
installed kyc-bridge finds them without a checkout (bridge/store/migrate.py)."""
