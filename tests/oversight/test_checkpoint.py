"""The verification desk walks the chain from the last verified checkpoint (issue 19 item 4)."""

from __future__ import annotations

import sqlalchemy as sa

from residents_app.audit.models import AuditCheckpoint, AuditEvent
from residents_app.audit.services import record
from residents_app.audit.verify import verify_chain, verify_since_checkpoint
from residents_app.extensions import db

T = AuditEvent.__table__


def _head(chain):
    return db.session.execute(sa.select(T.c.seq, T.c.hash).where(T.c.chain == chain)
                              .order_by(T.c.seq.desc()).limit(1)).one()


def _sign(client, voted_round):
    resp = client.post(f"/rounds/{voted_round.id}/verify", data={"decision": "verified", "comment": "齐全"})
    assert resp.status_code == 302


def test_a_sign_off_records_the_checkpoint_the_desk_then_walks_from(client, login_as, voted_round, now):
    chain = voted_round.estate_id
    login_as(client, voted_round.street)
    assert db.session.get(AuditCheckpoint, chain) is None
    assert verify_since_checkpoint(chain).from_seq == 0  # no checkpoint: from genesis
    seq, hash_ = _head(chain)
    _sign(client, voted_round)
    cp = db.session.get(AuditCheckpoint, chain)
    # The chain's head as the sign-off's full walk found it (the sign-off's own entry comes after it).
    assert (cp.seq, cp.hash, cp.verified_by) == (seq, hash_, f"user:{voted_round.street.id}:vr_street")
    record("test.after", chain=chain, actor="test", now=now, data={})
    db.session.commit()
    rep = verify_since_checkpoint(chain)
    full = verify_chain(chain)
    assert (rep.ok, rep.from_seq, rep.entry_count, rep.head_seq, rep.head_hash) == (
        True, seq, full.entry_count, full.head_seq, full.head_hash)
    assert full.entry_count == seq + 2  # the sign-off and the test entry
    page = client.get(f"/rounds/{voted_round.id}/verify").get_data(as_text=True)
    assert "本小区审计日志完好" in page
    assert f"第 1–{seq} 条已于" in page and "本次核对该检查点及其后的 2 条" in page


def test_the_desk_still_sees_a_change_at_or_after_the_checkpoint(client, login_as, voted_round, tamper, now):
    chain = voted_round.estate_id
    login_as(client, voted_round.street)
    _sign(client, voted_round)
    cp_seq = db.session.get(AuditCheckpoint, chain).seq
    # After the checkpoint: found by the walk from it.
    after = db.session.execute(sa.select(T.c.id).where(T.c.chain == chain, T.c.seq == cp_seq + 1)).scalar_one()
    tamper(sa.update(T).where(T.c.id == after).values(actor="user:99:mallory"))
    rep = verify_since_checkpoint(chain)
    assert (rep.ok, rep.broken.seq, rep.broken.problem) == (False, cp_seq + 1, "hash_mismatch")


def test_a_changed_checkpoint_entry_sends_the_desk_back_to_genesis(client, login_as, voted_round, tamper):
    chain = voted_round.estate_id
    login_as(client, voted_round.street)
    _sign(client, voted_round)
    cp_seq = db.session.get(AuditCheckpoint, chain).seq
    first = db.session.execute(sa.select(T.c.id).where(T.c.chain == chain, T.c.seq == 1)).scalar_one()
    # Before the checkpoint: the desk does not walk there (that is the point); `flask audit verify` does.
    tamper(sa.update(T).where(T.c.id == first).values(actor="user:99:mallory"))
    assert verify_since_checkpoint(chain).ok is True
    assert verify_chain(chain).broken.seq == 1
    # The checkpointed entry itself changed: the desk walks the whole chain again and names the first break.
    at_cp = db.session.execute(sa.select(T.c.id).where(T.c.chain == chain, T.c.seq == cp_seq)).scalar_one()
    tamper(sa.update(T).where(T.c.id == at_cp).values(actor="user:98:eve"))
    rep = verify_since_checkpoint(chain)
    assert (rep.ok, rep.from_seq, rep.broken.seq, rep.broken.problem) == (False, 0, 1, "hash_mismatch")
    # And a sign-off (always a full walk) is refused.
    resp = client.post(f"/rounds/{voted_round.id}/verify", data={"decision": "verified"}, follow_redirects=True)
    assert "不能核验通过" in resp.get_data(as_text=True)
