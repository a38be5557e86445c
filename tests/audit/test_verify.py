"""`flask audit verify`: every kind of tampering is named, exactly, and the log refuses changes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from residents_app.audit.chain import compute_hash
from residents_app.audit.models import AuditEvent
from residents_app.audit.services import record
from residents_app.audit.verify import verify_chain

T = AuditEvent.__table__


def run_verify(app, *args):
    return app.test_cli_runner().invoke(args=["audit", "verify", *args])


def test_intact_chain_passes(app, chain5):
    estate, events = chain5
    result = run_verify(app, "--estate", "AUD1")
    assert result.exit_code == 0, result.output
    assert f"OK    链 {estate.id}（AUD1 {estate.name}）：5 条，末条哈希 {events[-1].hash}" in result.output
    assert "校验通过：1 条链全部完好" in result.output


def test_edited_entry_is_named(app, chain5, tamper):
    estate, events = chain5
    target = events[2]
    tamper(sa.update(T).where(T.c.id == target.id).values(data={"i": 2, "备注": "改过"}))
    result = run_verify(app)
    assert result.exit_code == 1
    assert (f"BROKEN 链 {estate.id}（AUD1 {estate.name}）：前 2 条完好；第一条有问题的记录："
            f"seq=3 id={target.id} kind=ballot.cast problem=hash_mismatch") in result.output
    assert "内容被改动" in result.output
    assert "校验失败：1 条链有问题" in result.output


def test_edited_actor_or_time_is_named(app, chain5, tamper, now):
    estate, events = chain5
    tamper(sa.update(T).where(T.c.id == events[0].id).values(actor="user:2:someone-else"))
    rep = verify_chain(estate.id)
    assert (rep.broken.seq, rep.broken.event_id, rep.broken.problem) == (1, events[0].id, "hash_mismatch")
    assert rep.entry_count == 0


def test_edited_and_rehashed_entry_breaks_the_next_link(app, db, chain5, tamper):
    estate, events = chain5
    target = events[1]
    tamper(sa.update(T).where(T.c.id == target.id).values(data={"i": 1, "备注": "改过"}))
    forged = db.session.get(AuditEvent, target.id)
    new_hash = compute_hash(forged)
    tamper(sa.update(T).where(T.c.id == target.id).values(hash=new_hash))
    result = run_verify(app)
    assert result.exit_code == 1
    assert f"seq=3 id={events[2].id} kind=ballot.cast problem=link_broken" in result.output
    assert "前 2 条完好" in result.output


def test_removed_entry_is_a_gap(app, chain5, tamper):
    estate, events = chain5
    tamper(sa.delete(T).where(T.c.id == events[2].id))
    result = run_verify(app)
    assert result.exit_code == 1
    assert f"seq=4 id={events[3].id} kind=ballot.changed problem=seq_gap" in result.output
    assert "序号不连续：缺少第 3 条（条目被删除）" in result.output


def test_two_removed_entries_are_named_as_a_range(app, chain5, tamper):
    estate, events = chain5
    tamper(sa.delete(T).where(T.c.id.in_([events[1].id, events[2].id])))
    rep = verify_chain(estate.id)
    assert (rep.broken.seq, rep.broken.problem) == (4, "seq_gap")
    assert "缺少第 2–3 条" in rep.broken.message


def test_removed_first_entry(app, chain5, tamper):
    estate, events = chain5
    tamper(sa.delete(T).where(T.c.id == events[0].id))
    rep = verify_chain(estate.id)
    assert (rep.broken.seq, rep.broken.event_id, rep.broken.problem) == (2, events[1].id, "bad_start")


def test_swapped_entries_are_reported_as_reordered(app, chain5, tamper):
    estate, events = chain5
    a, b = events[1], events[2]  # seq 2 and 3
    tamper(
        sa.update(T).where(T.c.id == a.id).values(seq=-1),
        sa.update(T).where(T.c.id == b.id).values(seq=2),
        sa.update(T).where(T.c.id == a.id).values(seq=3),
    )
    result = run_verify(app)
    assert result.exit_code == 1
    assert f"seq=2 id={b.id} kind=ballot.cast problem=reordered" in result.output
    assert "本条的 prev_hash 指向第 3 条" in result.output


def test_only_the_broken_chain_fails(app, db, factory, chain5, tamper, now):
    estate, events = chain5
    other_estate = factory.estate(code="AUD2")
    for i in range(3):
        record("register.change", chain=other_estate.id, actor="system", now=now, data={"n": i})
    other = SimpleNamespace(id=other_estate.id, name=other_estate.name)
    tamper(sa.update(T).where(T.c.id == events[4].id).values(kind="round.cancelled"))
    result = run_verify(app)
    assert result.exit_code == 1
    assert f"OK    链 {other.id}（AUD2 {other.name}）：3 条" in result.output
    assert f"seq=5 id={events[4].id} kind=round.cancelled problem=hash_mismatch" in result.output
    only_other = run_verify(app, "--estate", "AUD2")
    assert only_other.exit_code == 0
    assert f"链 {estate.id}" not in only_other.output


def test_unknown_estate_code_is_a_usage_error(app, chain5):
    result = run_verify(app, "--estate", "NOPE")
    assert result.exit_code == 2
    assert "找不到编码为 'NOPE' 的小区" in result.output


def test_empty_log_passes(app, db):
    result = run_verify(app)
    assert result.exit_code == 0
    assert "审计日志为空" in result.output


@pytest.mark.parametrize("stmt", ["update", "delete"])
def test_database_refuses_changes(db, chain5, stmt):
    estate, events = chain5
    conn = db.session.connection()
    statement = (sa.update(T).where(T.c.id == events[0].id).values(kind="x") if stmt == "update"
                 else sa.delete(T).where(T.c.id == events[0].id))
    savepoint = conn.begin_nested()
    with pytest.raises(DBAPIError) as info:
        conn.execute(statement)
    savepoint.rollback()
    assert "append-only" in str(info.value)
    assert f"({stmt.upper()} refused)" in str(info.value)
    assert conn.execute(sa.select(sa.func.count()).select_from(T).where(T.c.chain == estate.id)).scalar() == 5


def test_orm_refuses_changes(db, chain5):
    estate, events = chain5
    db.session.get(AuditEvent, events[0].id).kind = "x"
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
    db.session.rollback()


def test_anchor_detects_a_cut_tail(app, chain5, tamper):
    estate, events = chain5
    ok = run_verify(app, "--estate", "AUD1", "--anchor", f"5:{events[4].hash[:12]}")
    assert ok.exit_code == 0
    assert f"OK    锚点：链 {estate.id} 第 5 条与公布的哈希一致" in ok.output
    tamper(sa.delete(T).where(T.c.id == events[4].id))
    cut = run_verify(app, "--estate", "AUD1", "--anchor", f"5:{events[4].hash[:12]}")
    assert cut.exit_code == 1
    assert f"BROKEN 锚点：链 {estate.id} 已没有第 5 条（末尾条目被删除）" in cut.output
    # Without the anchor the shortened chain still looks whole: that is what anchors are for.
    assert run_verify(app, "--estate", "AUD1").exit_code == 0


def test_anchor_with_a_different_hash(app, chain5):
    estate, events = chain5
    result = run_verify(app, "--estate", "AUD1", "--anchor", "3:" + "f" * 12)
    assert result.exit_code == 1
    assert f"BROKEN 锚点：链 {estate.id} 第 3 条的哈希 {events[2].hash[:16]}… 与公布的 ffffffffffff… 不一致" \
        in result.output


@pytest.mark.parametrize("args", [["--anchor", "5:abcdefabcdef"], ["--estate", "AUD1", "--anchor", "x:12"]])
def test_anchor_usage_errors(app, chain5, args):
    result = run_verify(app, *args)
    assert result.exit_code == 2


def test_beijing_time_is_hashed_as_utc(app, db, factory):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    estate = factory.estate(code="AUDTZ")
    ev = record("test.tz", chain=estate.id, actor="system",
                now=datetime(2026, 9, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    assert ev.at.isoformat() == "2026-09-01T02:00:00+00:00"
    db.session.expire_all()
    assert verify_chain(estate.id).ok


def test_naive_time_is_refused(db, factory):
    from datetime import datetime

    estate = factory.estate(code="AUDNV")
    with pytest.raises(ValueError, match="aware datetime"):
        record("test.naive", chain=estate.id, actor="system", now=datetime(2026, 9, 1, 10, 0))
