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
@click.option("--anchor", metavar="SEQ:HASH",
              help="与 --estate 同用：核对此前公布的末条（如报告上印的“第 N 条”及其哈希，可只写前 12 位以上），"
                   "发现末尾条目被删除")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="并行校验的进程数：每个进程校验整条链（每个小区一条）并核对该小区的数据；输出与单进程相同")
def verify_command(estate_code: str | None, anchor: str | None, jobs: int) -> None:
    from residents_app.audit.parallel import extra_checks, verify_chains
    from residents_app.audit.verify import EXTRA_CHECKS, chains_present, run_extra_checks, verify_chain
    from residents_app.registry.models import Estate

    labels = _estate_labels()
    if anchor is not None and estate_code is None:
        click.echo("错误：--anchor 须与 --estate 一起使用", err=True)
        sys.exit(EXIT_USAGE)
    if estate_code is not None:
        estate = db.session.execute(sa.select(Estate).where(Estate.code == estate_code)).scalar_one_or_none()
        if estate is None:
            click.echo(f"错误：找不到编码为 {estate_code!r} 的小区", err=True)
            sys.exit(EXIT_USAGE)
        reports = [verify_chain(estate.id)]
    else:
        # Streamed (verify._walk reads each chain in batches): memory does not grow with the log.
        reports = verify_chains(chains_present(), jobs)
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
    if anchor is not None:
        broken += _check_anchor(reports[0].chain, anchor)
    if not reports:
        click.echo("审计日志为空：没有可校验的链")
    # The features' own tables against the log (e.g. each closed round recounted from its ballot entries).
    if estate_code is not None:
        problems = run_extra_checks([reports[0].chain])
    elif jobs > 1:
        problems = extra_checks(list(db.session.execute(sa.select(Estate.id)).scalars()), jobs)
    else:
        problems = run_extra_checks(None)
    for problem in problems:
        label = labels.get(problem.chain, f"小区#{problem.chain}（已不在登记中）")
        click.echo(f"BROKEN 链 {problem.chain}（{label}）{problem.describe()}（{problem.code}）")
    if EXTRA_CHECKS and not problems:
        click.echo("OK    数据核对：各表与日志一致（已结束的表决按日志重新计票，结果相符）")
    if broken or problems:
        failures = ([f"{broken} 条链有问题"] if broken else []) + (
            [f"{len(problems)} 处数据与日志不一致"] if problems else [])
        click.echo(f"校验失败：{'；'.join(failures)}", err=True)
        sys.exit(EXIT_BROKEN)
    click.echo(f"校验通过：{len(reports)} 条链全部完好")


def _check_anchor(chain: int, anchor: str) -> int:
    """1 when the published entry is missing or differs (the end of the chain was cut or rewritten)."""
    from residents_app.audit.models import AuditEvent

    seq_text, _, prefix = anchor.partition(":")
    prefix = prefix.strip().lower()
    if not seq_text.strip().isdigit() or len(prefix) < 12 or any(c not in "0123456789abcdef" for c in prefix):
        click.echo("错误：--anchor 格式应为 第几条:哈希（至少 12 位十六进制），例如 57:3fa2b19c0d4e", err=True)
        sys.exit(EXIT_USAGE)
    seq = int(seq_text)
    stored = db.session.execute(
        sa.select(AuditEvent.hash).where(AuditEvent.chain == chain, AuditEvent.seq == seq)).scalar_one_or_none()
    if stored is None:
        click.echo(f"BROKEN 锚点：链 {chain} 已没有第 {seq} 条（末尾条目被删除）")
        return 1
    if not stored.startswith(prefix):
        click.echo(f"BROKEN 锚点：链 {chain} 第 {seq} 条的哈希 {stored[:16]}… 与公布的 {prefix[:16]}… 不一致")
        return 1
    click.echo(f"OK    锚点：链 {chain} 第 {seq} 条与公布的哈希一致")
    return 0
