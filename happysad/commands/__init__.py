"""The `happysad` commands, one module per group; happysad.cli puts them together."""
