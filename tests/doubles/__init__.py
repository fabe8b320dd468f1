"""Test doubles: fake remote services that run for real on 127.0.0.1."""
