"""Entry points: the CLI, the demo, the servers and their process wiring."""
