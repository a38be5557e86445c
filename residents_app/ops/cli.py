"""`flask ops backup PATH`, `flask ops restore PATH`, `flask ops verify-audit`."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from residents_app.extensions import db
from residents_app.ops.backup import BackupError, backup_database, restore_database

cli = AppGroup("ops", help="Operations: backup, restore, audit-chain check.")


@cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="overwrite PATH if it exists")
def backup(path: Path, force: bool):
    """Write a consistent copy of the database to PATH while the app keeps running."""
    try:
        result = backup_database(db.engine, path, overwrite=force)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"已备份 {result.dialect} 数据库到 {result.path}（{result.size_bytes} 字节）")


@cli.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def restore(path: Path, yes: bool):
    """Replace the database's content with the backup at PATH, then verify the audit chains.

    Stop the web app and the scheduler first.
    """
    if not yes:
        click.confirm(f"这会用 {path} 覆盖当前数据库的全部内容，确定吗？", abort=True)
    db.session.remove()
    try:
        restore_database(db.engine, path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"已从 {path} 恢复数据库")
    _verify_audit()


@cli.command("verify-audit")
def verify_audit():
    """Recompute every audit-chain hash and link (exit code 1 if any chain is broken)."""
    _verify_audit()


def _verify_audit() -> None:
    from residents_app.ops.services import audit_chain_problems

    checked, problems = audit_chain_problems()
    for problem in problems:
        click.echo(f"审计链损坏：{problem}", err=True)
    if problems:
        raise click.exceptions.Exit(1)
    click.echo(f"审计链完整：已核对 {checked} 条记录")
