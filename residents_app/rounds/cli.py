"""`flask rounds ...`: the stored counters checked (and rebuilt) from the ballots."""

from __future__ import annotations

import sys

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from residents_app.extensions import db

EXIT_BROKEN = 1


@click.group("rounds", cls=AppGroup, help="表决：计数器核对")
def cli() -> None:
    pass


@cli.command("recount", help="按选票重新计数，与各表决保存的计数器逐楼栋、逐选项核对；不一致时以非零状态退出"
                             "（--rebuild：按重新计数的结果重建计数器）。")
@click.option("--round", "round_ids", type=int, multiple=True, help="只核对这些表决（可多次给出）")
@click.option("--estate", "estate_code", help="只核对该小区（小区编码）")
@click.option("--rebuild", is_flag=True, help="把不一致的表决的计数器按选票重建")
def recount_command(round_ids: tuple[int, ...], estate_code: str | None, rebuild: bool) -> None:
    from residents_app.registry.models import Estate
    from residents_app.rounds.counters import problems_by_round, rebuild_counters

    estate_ids = None
    if estate_code:
        estate = db.session.execute(sa.select(Estate).where(Estate.code == estate_code)).scalar_one_or_none()
        if estate is None:
            click.echo(f"找不到小区 {estate_code}", err=True)
            sys.exit(2)
        estate_ids = [estate.id]
    by_round = problems_by_round(estate_ids, list(round_ids) or None)
    problems = [p for found in by_round.values() for p in found]
    for p in problems:
        click.echo(f"BROKEN {p.subject}：{p.message}（{p.code}）")
    if not problems:
        click.echo("OK    计数器与选票一致")
        return
    broken = sorted(by_round)
    if rebuild:
        rebuild_counters(broken)
        db.session.commit()
        click.echo(f"已按选票重建 {len(broken)} 个表决的计数器：{'、'.join(f'#{r}' for r in broken)}")
        return
    click.echo(f"核对失败：{len(problems)} 处计数器与选票不符（表决 {'、'.join(f'#{r}' for r in broken)}）")
    sys.exit(EXIT_BROKEN)
