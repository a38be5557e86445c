"""Operational checks: readiness (database reachable, migrations at head) and audit-chain integrity."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app

from residents_app.extensions import db


@dataclass
class Readiness:
    problems: dict[str, str] = field(default_factory=dict)
    revision: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def migration_heads() -> set[str]:
    """Head revision(s) of the migration scripts shipped with this code (cached per app)."""
    cache = current_app.extensions.setdefault("ops", {})
    if "heads" not in cache:
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", current_app.extensions["migrate"].directory)
        cache["heads"] = set(ScriptDirectory.from_config(cfg).get_heads())
    return cache["heads"]


def check_readiness() -> Readiness:
    from alembic.migration import MigrationContext

    result = Readiness()
    try:
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            current = set(MigrationContext.configure(conn).get_current_heads())
    except sa.exc.SQLAlchemyError as exc:
        result.problems["database"] = f"数据库无法连接（{type(exc).__name__}）"
        return result
    heads = migration_heads()
    result.revision = ",".join(sorted(current)) or None
    if current != heads:
        have = ", ".join(sorted(current)) or "无（未迁移）"
        result.problems["migrations"] = f"数据库结构版本 {have} 不是最新版本 {', '.join(sorted(heads))}；" \
                                        "请运行 flask db upgrade"
    return result


def audit_chain_problems() -> tuple[int, list[str]]:
    """Recompute every hash and link of every chain: (entries checked, problems in Chinese)."""
    from residents_app.audit.chain import GENESIS, compute_hash
    from residents_app.audit.models import AuditEvent

    problems: list[str] = []
    checked = 0
    chain, prev_seq, prev_hash, broken = None, 0, GENESIS, False
    stmt = sa.select(AuditEvent).order_by(AuditEvent.chain, AuditEvent.seq).execution_options(yield_per=1000)
    for ev in db.session.execute(stmt).scalars():
        if ev.chain != chain:
            chain, prev_seq, prev_hash, broken = ev.chain, 0, GENESIS, False
        if broken:
            continue
        checked += 1
        where = f"链 {ev.chain} 第 {ev.seq} 条（{ev.kind}）"
        if ev.seq != prev_seq + 1:
            problems.append(f"{where}：序号应为 {prev_seq + 1}，有条目缺失")
            broken = True
        elif ev.prev_hash != prev_hash:
            problems.append(f"{where}：与前一条的哈希不衔接")
            broken = True
        elif compute_hash(ev) != ev.hash:
            problems.append(f"{where}：内容与哈希不符（被改动）")
            broken = True
        prev_seq, prev_hash = ev.seq, ev.hash
    return checked, problems
