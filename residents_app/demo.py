"""Demo street office, estate and accounts (`flask demo load`)."""

from __future__ import annotations

import click

demo_cli = click.Group("demo", help="Demo data for a newcomer.")


@demo_cli.command("load")
def demo_load():
    """Load the demo street office and estate (placeholder until the registry issue lands)."""
    click.echo("demo: nothing to load yet")
