"""Onboarding and privacy: consent before a verification, withdrawal, export and erasure."""
