"""`flask acceptance verify-archive FILE.zip`: check a project archive against its manifest and the audit chain."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

cli = click.Group("acceptance", help="竣工验收、档案")


@cli.command("verify-archive")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def verify_archive_command(path: str) -> None:
    from residents_app.works.acceptance.archive import verify_archive

    with open(path, "rb") as fh:
        check = verify_archive(fh.read())
    click.echo(f"estate={check.estate_id} files={check.file_count} manifest_sha256={check.manifest_sha256}")
    if check.ok:
        click.echo(f"OK: 档案包与清单一致，归档记录在日志第 {check.archive_event_seq} 条")
        return
    for p in check.problems:
        click.echo(f"PROBLEM: {p}")
    sys.exit(1)
