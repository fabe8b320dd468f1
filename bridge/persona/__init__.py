"""Pure Persona layer: webhook signatures and event parsing. Standard library only, no I/O."""
