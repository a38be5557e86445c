"""The desk at district size (issue 19): the roll a page at a time, and a view with nothing new since the chain's
checkpoint reads the chain in one small statement (a street-office view that checked the entries checkpoints them;
a committee member's view verifies from the checkpoint and writes nothing)."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from residents_app.audit.models import AuditCheckpoint, AuditEvent
from residents_app.audit.services import record
from residents_app.oversight import desk
from tests.querycount import count_statements

T = AuditEvent.__table__


def _labels(html: str) -> list[str]:
    return re.findall(r"<tr><td>(\d幢-\d+)</td>", html)


def test_the_roll_is_shown_a_page_at_a_time(client, login_as, voted_round, monkeypatch):
    monkeypatch.setattr(desk, "PAGE_SIZE", 4)
    login_as(client, voted_round.street)
    first = client.get(f"/rounds/{voted_round.id}/verify").get_data(as_text=True)
    assert _labels(first) == ["1幢-101", "1幢-102", "1幢-201", "1幢-202"]
    assert "冻结名册与各户投票（6 户，" in first
    assert first.count("第 1–4 户，共 6 户") == 2  # above and below the table
    assert f'<a href="/rounds/{voted_round.id}/verify?page=2#roll">2</a>' in first
    assert '<details id="roll-fold">' in first  # folded on the first page
    second = client.get(f"/rounds/{voted_round.id}/verify?page=2").get_data(as_text=True)
    assert _labels(second) == ["2幢-101", "2幢-102"]
    assert "第 5–6 户，共 6 户" in second and '<details id="roll-fold" open>' in second
    # The proxy's mandate and the pending paper ballot are on the page of their units.
    assert f'/audit/files/{voted_round.mandate_file_id}"' in second and "纸质 待第二人确认" in second
    assert f'/audit/files/{voted_round.mandate_file_id}"' not in first
    # The figures and the flags are the whole round's on every page.
    for html in (first, second):
        assert "需要留意的情况（4）" in html and "389.30 m²（69.91%）" in html
    assert client.get(f"/rounds/{voted_round.id}/verify?page=3").status_code == 404


def test_a_short_roll_has_no_pager(client, login_as, voted_round):
    login_as(client, voted_round.street)
    html = client.get(f"/rounds/{voted_round.id}/verify").get_data(as_text=True)
    assert len(_labels(html)) == 6 and 'class="pager' not in html


def _head(db, chain):
    return db.session.execute(sa.select(T.c.seq, T.c.hash).where(T.c.chain == chain)
                              .order_by(T.c.seq.desc()).limit(1)).one()


def test_a_view_checkpoints_what_it_checked_and_the_next_reads_the_chain_once(client, login_as, voted_round, now,
                                                                               db):
    chain = voted_round.estate_id
    login_as(client, voted_round.street)
    assert db.session.get(AuditCheckpoint, chain) is None
    seq, hash_ = _head(db, chain)
    html = client.get(f"/rounds/{voted_round.id}/verify").get_data(as_text=True)
    assert f"本小区审计日志完好：共 {seq} 条" in html and 'id="chain-checkpoint"' not in html  # from genesis
    db.session.expire_all()
    cp = db.session.get(AuditCheckpoint, chain)
    assert (cp.seq, cp.hash, cp.verified_by) == (seq, hash_, f"user:{voted_round.street.id}:vr_street")

    # Nothing new: the chain is one statement (the checkpoint with its entry), no walk.
    with count_statements(db.engine) as counted:
        html = client.get(f"/rounds/{voted_round.id}/verify").get_data(as_text=True)
    assert f"第 1–{seq} 条已于" in html and "本次核对该检查点及其后的 0 条" in html
    assert sum("audit_checkpoint" in s for s in counted.statements) == 1, counted.report()
    assert not [s for s in counted.statements if re.search(r"audit_event\.seq > [%?:]", s)], counted.report()

    # One new entry: checked from the checkpoint, then the checkpoint moves on to it.
    record("test.after", chain=chain, actor="test", now=now, data={})
    db.session.commit()
    html = client.get(f"/rounds/{voted_round.id}/verify").get_data(as_text=True)
    assert f"本小区审计日志完好：共 {seq + 1} 条" in html and "本次核对该检查点及其后的 1 条" in html
    db.session.expire_all()
    assert db.session.get(AuditCheckpoint, chain).seq == seq + 1


def _checkpoint(db, chain):
    db.session.expire_all()
    cp = db.session.get(AuditCheckpoint, chain)
    return None if cp is None else (cp.seq, cp.hash, cp.verified_at, cp.verified_by)


def _chain_reads(counted) -> tuple[int, list[str]]:
    """(statements reading the checkpoint, statements walking the chain from a seq or writing the checkpoint)."""
    return (sum("audit_checkpoint" in s and s.lstrip().upper().startswith("SELECT") for s in counted.statements),
            [s for s in counted.statements if re.search(r"audit_event\.seq > [%?:]", s)
             or re.match(r"\s*(INSERT|UPDATE)[^;]*audit_checkpoint", s, re.I | re.S)])


def test_a_street_view_records_the_checkpoint_and_a_committee_view_verifies_from_it_writing_nothing(
        client, login_as, voted_round, now, db, monkeypatch):
    from residents_app.oversight import views

    chain = voted_round.estate_id
    street_at, committee_at, later_at = (now + timedelta(hours=h) for h in (1, 2, 3))
    seq, hash_ = _head(db, chain)

    # A committee member's view with no checkpoint: the whole chain walked, verified, nothing recorded.
    login_as(client, voted_round.c1)
    monkeypatch.setattr(views, "utcnow", lambda: committee_at)
    html = client.get(f"/rounds/{voted_round.id}/verify").get_data(as_text=True)
    assert f"本小区审计日志完好：共 {seq} 条" in html and 'id="chain-checkpoint"' not in html
    assert _checkpoint(db, chain) is None

    # The street office's view records the head it checked, under the viewer, at the view's time.
    login_as(client, voted_round.street)
    monkeypatch.setattr(views, "utcnow", lambda: street_at)
    client.get(f"/rounds/{voted_round.id}/verify")
    street_actor = f"user:{voted_round.street.id}:vr_street"
    assert _checkpoint(db, chain) == (seq, hash_, street_at, street_actor)

    # An entry after the checkpoint; a committee member's view checks it from the checkpoint (one statement, no
    # walk) and reports the chain verified, but the checkpoint stays where the street office left it.
    record("test.after", chain=chain, actor="test", now=now, data={})
    db.session.commit()
    login_as(client, voted_round.c1)
    monkeypatch.setattr(views, "utcnow", lambda: committee_at)
    for _ in range(2):  # and so does the next one: still from the street office's checkpoint
        with count_statements(db.engine) as counted:
            html = client.get(f"/rounds/{voted_round.id}/verify").get_data(as_text=True)
        assert f"本小区审计日志完好：共 {seq + 1} 条" in html
        assert f"第 1–{seq} 条已于 2026-09-01 11:00 完整核验（{street_actor}），本次核对该检查点及其后的 1 条" in html
        assert _chain_reads(counted) == (1, []), counted.report()
        assert _checkpoint(db, chain) == (seq, hash_, street_at, street_actor)

    # The street office's next view moves it on to the new entry.
    login_as(client, voted_round.street)
    monkeypatch.setattr(views, "utcnow", lambda: later_at)
    html = client.get(f"/rounds/{voted_round.id}/verify").get_data(as_text=True)
    assert "本次核对该检查点及其后的 1 条" in html
    new_head = _head(db, chain)
    assert new_head[0] == seq + 1
    assert _checkpoint(db, chain) == (seq + 1, new_head[1], later_at, street_actor)


def test_an_admin_view_records_the_checkpoint(client, login_as, voted_round, now, factory, db, monkeypatch):
    from residents_app.oversight import views

    admin = factory.user("admin", username="vr_admin")
    db.session.commit()
    chain = voted_round.estate_id
    seq, hash_ = _head(db, chain)
    login_as(client, admin)
    monkeypatch.setattr(views, "utcnow", lambda: now)
    html = client.get(f"/rounds/{voted_round.id}/verify").get_data(as_text=True)
    assert f"本小区审计日志完好：共 {seq} 条" in html
    assert _checkpoint(db, chain) == (seq, hash_, now, f"user:{admin.id}:vr_admin")
