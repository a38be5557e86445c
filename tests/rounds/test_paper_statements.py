"""The committee's paths (paper and proxy confirmations, a conflict won) move the person counters only in
person-counted rounds: a household-counted round's roll has no person key, so the person statement changed nothing
there and is no longer run (issue 19). One paper confirmation's statements, named by verb and table: 16 on SQLite
and 17 on PostgreSQL before, 14 and 16 now for a household-counted round; a person-counted round keeps them."""

from __future__ import annotations

import re

from residents_app.rounds import ballots as ballots_svc
from residents_app.rounds import counters
from tests.querycount import count_statements
from tests.rounds.test_counters import PDF, _paper, _proxy, recount
from tests.rounds.test_person_counters import assert_stored_is_live, persons, totals  # noqa: F401


def kinds(statements: list[str]) -> list[str]:
    """`SELECT ballot`, `INSERT round_count`, `SELECT pg_advisory_xact_lock`; a WITH statement by what it writes
    (`WITH UPDATE round_person INSERT round_person_count`)."""
    out = []
    for s in statements:
        text = " ".join(s.split())
        verb = text.split(None, 1)[0].upper()
        if verb == "WITH":
            writes = re.findall(r"\b(UPDATE|INSERT INTO)\s+(?!SET\b)(\w+)", text)
            out.append(" ".join(["WITH", *(f"{v.split()[0]} {t}" for v, t in writes)]))
            continue
        m = re.search(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", text) or re.match(r"SELECT (\w+)\(", text)
        out.append(f"{verb} {m.group(1)}")
    return out


def _confirm(db, rnd, unit, choice, when, user, user2) -> list[str]:
    scan = ballots_svc.store_file(rnd.id, "paper_scan", PDF, "application/pdf", when, user)
    b = ballots_svc.enter_paper_ballot(rnd.id, unit.id, choice, scan, when, user)
    db.session.commit()
    db.session.expire_all()
    with count_statements(db.engine) as counted:
        assert ballots_svc.confirm_paper_ballot(b.id, when, user2).status == "counted"
        db.session.flush()
    return kinds(counted.statements)


def _expected(dialect: str, person: list[str]) -> list[str]:
    lock = ["SELECT pg_advisory_xact_lock"] if dialect == "postgresql" else []
    return ["SELECT ballot", "SELECT round", "SELECT app_user", "UPDATE ballot", "SELECT ballot", "UPDATE ballot",
            *lock, "SELECT audit_event", "SELECT audit_pending", "INSERT current_ballot", "INSERT round_count",
            *person, "UPDATE ballot", *lock, "SELECT audit_event", "SELECT audit_pending", "INSERT audit_event"]


def test_a_household_paper_confirmation_runs_no_person_statement(db, make_round, units, committee, committee2,
                                                                 now):
    rnd = make_round(kind="general", matter_item=7)
    db.session.commit()
    seen = _confirm(db, rnd, units["1幢-101"], "agree", now, committee, committee2)
    dialect = db.session.get_bind().dialect.name
    assert seen == _expected(dialect, [])
    assert len(seen) == {"sqlite": 14, "postgresql": 16}[dialect]


def test_a_person_paper_confirmation_still_moves_the_persons(db, make_round, persons, committee,  # noqa: F811
                                                             committee2, now):
    rnd = make_round(kind="general", matter_item=7, counting_mode="person")
    db.session.commit()
    seen = _confirm(db, rnd, persons["1幢-101"], "agree", now, committee, committee2)
    dialect = db.session.get_bind().dialect.name
    person = (["WITH UPDATE round_person INSERT round_person_count"] if dialect == "postgresql"
              else ["INSERT round_person_count", "UPDATE round_person"])
    assert seen == _expected(dialect, person)
    assert len(seen) == {"sqlite": 16, "postgresql": 17}[dialect]
    assert totals(rnd) == (4, 1, 0, 4)  # A (1幢-101 and 2幢-201): one of two units voted, agrees


def test_household_paper_proxy_and_conflict_paths_leave_no_mismatch(app, db, make_round, units, committee,
                                                                    committee2, now):
    rnd = make_round(kind="general", matter_item=7)
    u = units
    ballots_svc.cast_ballot(rnd.id, u["1幢-101"].id, u["1幢-101"].ownerships[0].owner_id, "agree", now)
    _paper(rnd, u["1幢-102"], "disagree", now, committee, committee2)
    _proxy(rnd, u["2幢-201"], "agree", now, committee, committee2)
    conflict = _paper(rnd, u["1幢-101"], "disagree", now, committee, committee2)  # against the online ballot
    assert conflict.status == "conflict"
    ballots_svc.resolve_conflict(conflict.id, "paper", "业主到场确认", now, committee)
    proxy = _proxy(rnd, u["1幢-102"], "abstain", now, committee, committee2)  # against its paper ballot
    assert proxy.status == "conflict"
    ballots_svc.resolve_conflict(proxy.id, "proxy", "业主书面委托在后", now, committee)
    db.session.commit()
    b1, b2 = u["1幢-101"].building_id, u["2幢-201"].building_id
    stored = {k: v for k, v in counters.stored_counts(rnd.id).items() if v != (0, 0)}  # 101's agree, moved away
    assert stored == {(b1, ""): (3, 30000), (b2, ""): (2, 10000), (b1, "disagree"): (1, 10000),
                      (b1, "abstain"): (1, 10000), (b2, "agree"): (1, 6000)}
    assert counters.check_counters(round_ids=[rnd.id]) == []
    ok = recount(app)
    assert (ok.exit_code, ok.output) == (0, "OK    计数器与选票一致\n")
    verify = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert verify.exit_code == 0, verify.output
    assert verify.output.splitlines()[1:] == ["OK    数据核对：各表与日志一致（已结束的表决按日志重新计票，结果相符）",
                                              "校验通过：1 条链全部完好"]
