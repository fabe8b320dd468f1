"""The webhook path: a verified Persona event becomes one transaction (event, state, jobs, audit)."""
