"""Typer sub-applications, one module per command group; cli.py mounts them."""
