"""`flask roster import|export` and `flask register street-office|estate`.

`cli` (the roster group) is registered by create_app; `register_cli` is attached through the
registry blueprint (views.bp, cli_group=None), as create_app registers one group per feature.
"""

from __future__ import annotations

from pathlib import Path

import click

from residents_app.db import utcnow
from residents_app.errors import DomainError
from residents_app.extensions import db

CLI_ACTOR = "system:cli"


def _fail(exc: DomainError) -> None:
    db.session.rollback()
    click.echo(f"错误：{exc.message}", err=True)
    rows = exc.errors.get("rows") if isinstance(exc.errors, dict) else None
    if rows:
        for e in rows:
            where = f"第 {e['row']} 行" + (f"「{e['column']}」列" if e["column"] else "")
            click.echo(f"  {where}：{e['message']}", err=True)
    else:
        for key, msg in (exc.errors or {}).items():
            click.echo(f"  {key}: {msg}", err=True)
    raise SystemExit(1)


COUNT_LABELS = {
    "unit_count_in_file": "文件中的房号",
    "owner_rows_in_file": "文件中的业主行",
    "buildings_added": "新增楼栋",
    "units_added": "新增房号",
    "units_changed": "修改房号",
    "owners_added": "新增业主",
    "owners_changed": "修改业主",
    "ownerships_added": "新增产权关系",
    "ownerships_removed": "移除产权关系",
    "units_missing": "文件中缺少的房号（保留，未删除）",
}


def print_plan(plan) -> None:
    for key, value in plan.counts().items():
        click.echo(f"  {COUNT_LABELS[key]}: {value}")
    if plan.units_missing:
        shown = "、".join(plan.units_missing[:20]) + ("……" if len(plan.units_missing) > 20 else "")
        click.echo(f"  注意：以下房号不在文件中，已保留：{shown}")


cli = click.Group("roster", help="Roster (名册) import and export.")


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--estate", "estate_code", required=True, help="estate code")
@click.option("--dry-run", is_flag=True, help="check and report, write nothing")
def roster_import(path: Path, estate_code: str, dry_run: bool):
    """Import a roster file (CSV or XLSX, format in docs/ROSTER.md) into an estate."""
    from residents_app.registry.roster import import_roster
    from residents_app.registry.services import estate_by_code

    try:
        estate = estate_by_code(estate_code)
        plan = import_roster(estate, path.name, path.read_bytes(), actor=CLI_ACTOR, now=utcnow(), dry_run=dry_run)
    except DomainError as exc:
        _fail(exc)
    if dry_run:
        db.session.rollback()
        click.echo(f"试导入（未写入）{estate.code}：")
    else:
        db.session.commit()
        click.echo(f"已导入 {estate.code}：" if plan.has_changes else f"{estate.code}：名册无变化")
    print_plan(plan)


@cli.command("export")
@click.option("--estate", "estate_code", required=True, help="estate code")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def roster_export(estate_code: str, path: Path):
    """Export an estate's register to XLSX in the import format."""
    from residents_app.registry.roster import export_roster_xlsx
    from residents_app.registry.services import estate_by_code

    try:
        estate = estate_by_code(estate_code)
    except DomainError as exc:
        _fail(exc)
    path.write_bytes(export_roster_xlsx(estate.id))
    click.echo(f"已导出 {estate.code} 名册到 {path}")


register_cli = click.Group("register", help="Street offices and estates.")


@register_cli.command("street-office")
@click.argument("code")
@click.argument("name")
@click.option("--district", default="", help="district name")
def register_street_office(code: str, name: str, district: str):
    """Create a street office (街道)."""
    from residents_app.registry.services import create_street_office

    try:
        office = create_street_office(code, name, district)
    except DomainError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(f"已创建街道 {office.code} {office.name}")


@register_cli.command("estate")
@click.argument("code")
@click.argument("name")
@click.option("--street", "street_code", required=True, help="street office code")
@click.option("--address", default="", help="address")
def register_estate(code: str, name: str, street_code: str, address: str):
    """Create an estate (小区) under a street office."""
    from residents_app.registry.services import create_estate

    try:
        estate = create_estate(code, name, street_code, address, actor=CLI_ACTOR, now=utcnow())
    except DomainError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(f"已创建小区 {estate.code} {estate.name}（街道 {street_code}）")
