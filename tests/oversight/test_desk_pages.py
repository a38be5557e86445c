"""The desk at district size (issue 19): the roll a page at a time, and a view with nothing new since the chain's
checkpoint reads the chain in one small statement (the view that checked the entries checkpoints them)."""

from __future__ import annotations

import re

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
