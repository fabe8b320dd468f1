"""Garbage-collector setting for the long-running web processes."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Exempt what was loaded at start (modules, the Flask app, SQLAlchemy's mappers and compiled
    statements) from collection. Otherwise every full collection walks that whole graph while
    holding the GIL: 35-65 ms pauses in the middle of webhook requests (bench/ingest.py)."""
    gc.collect()
    gc.freeze()
