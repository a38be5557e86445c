"""`flask audit ...`: check the hash chains from the command line."""

from __future__ import annotations

import sys

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from residents_app.extensions import db

EXIT_BROKEN = 1
EXIT_USAGE = 2


@click.group("audit", cls=AppGroup, help="审计日志：校验哈希链")
def cli() -> None:
    pass


def _estate_labels() -> dict[int, str]:
    from residents_app.registry.models import Estate

    rows = db.session.execute(sa.select(Estate.id, Estate.code, Estate.name)).all()
    labels = {r.id: f"{r.code} {r.name}" for r in rows}
    labels[0] = "系统"
    return labels


@cli.command("verify", help="逐条重算哈希与链接，指出第一条被改动、删除或调换的记录；有问题时以非零状态退出。")
@click.option("--estate", "estate_code", metavar="CODE", help="只校验该小区（小区编码）的链")
def verify_command(estate_code: str | None) -> None:
    from residents_app.audit.verify import verify_all, verify_chain
    from residents_app.registry.models import Estate

    labels = _estate_labels()
    if estate_code is not None:
        estate = db.session.execute(sa.select(Estate).where(Estate.code == estate_code)).scalar_one_or_none()
        if estate is None:
            click.echo(f"错误：找不到编码为 {estate_code!r} 的小区", err=True)
            sys.exit(EXIT_USAGE)
        reports = [verify_chain(estate.id)]
    else:
        reports = verify_all()
    broken = 0
    for rep in reports:
        label = labels.get(rep.chain, f"小区#{rep.chain}（已不在登记中）")
        if rep.ok:
            click.echo(f"OK    链 {rep.chain}（{label}）：{rep.entry_count} 条，末条哈希 {rep.head_hash}")
        else:
            broken += 1
            b = rep.broken
            click.echo(f"BROKEN 链 {rep.chain}（{label}）：前 {rep.entry_count} 条完好；"
                       f"第一条有问题的记录：seq={b.seq} id={b.event_id} kind={b.kind} problem={b.problem}")
            click.echo(f"       {b.message}")
    if not reports:
        click.echo("审计日志为空：没有可校验的链")
    if broken:
        click.echo(f"校验失败：{broken} 条链有问题", err=True)
        sys.exit(EXIT_BROKEN)
    click.echo(f"校验通过：{len(reports)} 条链全部完好")
