"""`flask calendar ...`: the working-day calendar from the command line."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from residents_app.db import utcnow
from residents_app.errors import DomainError

cli = AppGroup("calendar", help="法定节假日工作日历（公示期计算用）。")


@cli.command("import-year")
@click.argument("year", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-declare", is_flag=True, help="只录入日期，暂不确认该年已完整。")
def import_year_cmd(year: int, file: Path, no_declare: bool):
    """Import YEAR's schedule from FILE: lines `YYYY-MM-DD,休|班[,说明]`; then declare the year complete."""
    from residents_app.extensions import db
    from residents_app.publicity import holidays

    try:
        n = holidays.import_year(year, file.read_text(encoding="utf-8-sig"), actor="cli:calendar", now=utcnow(),
                                 declare=not no_declare)
    except DomainError as exc:
        db.session.rollback()
        details = "".join(f"\n  {k}：{v}" for k, v in exc.errors.items())
        raise click.ClickException(f"{exc.message}{details}") from None
    db.session.commit()
    click.echo(f"已导入 {year} 年 {n} 个日期" + ("" if no_declare else f"，{year} 年已确认完整"))


@cli.command("years")
def years_cmd():
    """List the covered years."""
    from residents_app.publicity import holidays

    info = holidays.calendar_overview(utcnow())
    for y in info["years"]:
        click.echo(f"{y.year}\t{y.source}\t调整 {y.override_count} 天")
    if info["next_year_missing"]:
        click.echo(f"警告：{info['next_year']} 年的节假日安排尚未录入")
