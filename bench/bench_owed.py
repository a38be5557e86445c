"""Owed amounts saved at publish vs computed live (issue 19 item 1), one estate of N units.

    python bench/bench_owed.py 2000                  # SQLite file
    python bench/bench_owed.py 2000 --db postgresql  # a scratch PostgreSQL database

"live" is what the readers did before they read the saved figures: the whole plan computed (compute_plan over every
unit) to show one unit or a list; "saved" reads unit_owed / plan_owed (funding/owed.py). Printed as ratios
saved / live measured in the same run (the machine is shared: absolute figures vary, ratios much less).
"""

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import create_schema, make_app, scratch_database  # noqa: E402
from residents_app.extensions import db  # noqa: E402
from tests.conftest import Factory  # noqa: E402

NOW = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
GOALS = {"one unit's statement page (/r/statement)": 0.2, "one unit's statement (service)": 0.2,
         "statements export (xlsx)": 0.9, "staff API: every unit's statement": 0.9, "start checklist": 0.9,
         "settlement preview (planned part)": 0.9, "funding_summary": 0.5, "all units' owed": 0.5,
         "one unit's owed (pledge, API)": 0.2}


def timed(fn, n):
    out = []
    result = None
    for _ in range(n):
        db.session.expire_all()
        t = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out) * 1000, result


def build(n_units: int):
    from residents_app.funding import services as fs
    from residents_app.funding import sources
    from residents_app.plans import services as ps

    f = Factory(db)
    per = n_units // 20
    estate = f.estate(buildings={f"{b}幢": [(f"{i:03d}", f"{60 + (i % 50)}.{i % 97:02d}") for i in range(per)]
                                 for b in range(1, 21)})
    c = f.user("committee", estate=estate)
    b1 = sorted(estate.buildings, key=lambda b: b.name)[0]
    units = fs.estate_units(estate.id)
    for i, u in enumerate(units[::50]):
        fs.set_hardship(estate, u, mode="exempt" if i % 2 else "partial", subsidy_fen=50_000, covered_by="街道",
                        user=c, now=NOW)
    plan = ps.create_plan(estate, title="方案", user=c, now=NOW, management_plan="物业")
    for name, cat, cost, bs in (("雨污分流", "required", 10_000_000, None), ("外墙保温", "basic", 30_000_000, None),
                                ("停车位", "improvement", 9_000_000, None), ("电梯", "upgrade", 5_000_000, [b1.id])):
        ps.add_item(plan, name=name, category=cat, cost_fen=cost, building_ids=bs, user=c, now=NOW)
    ps.publish_plan(plan, user=c, now=NOW)
    src = sources.add_source(estate, kind="unit_donation", amount_fen=1_234_567, provider="某公司",
                             item_names=["外墙保温"], decision_note="业委会决议", user=c, now=NOW)
    sources.attach_evidence(src, filename="协议.pdf", data=b"%PDF-1.4\n% r\n", user=c, now=NOW)
    db.session.commit()
    return estate, plan, units, c


def main(app, n_units: int, repeat: int) -> None:
    from residents_app.auth.resident import SESSION_KEY, hash_token, new_token
    from residents_app.funding import exports, owed, settlement
    from residents_app.funding import services as fs
    from residents_app.registry.models import UnitLink
    from residents_app.works import services as ws

    estate, plan, units, committee = build(n_units)
    committee_login = committee.username
    unit = units[len(units) // 2]
    link = UnitLink(unit_id=unit.id, token_hash=hash_token(new_token()))
    db.session.add(link)
    s = settlement.settlement_of(plan, create=True, now=NOW)
    db.session.commit()
    # a request's session starts empty: drop the thousands of objects the build left in this one
    ids, link_id, owner_id = (estate.id, plan.id, unit.id, s.id), link.id, unit.owners[0].id
    db.session.remove()
    from residents_app.funding.models import Settlement
    from residents_app.plans.models import PlanVersion
    from residents_app.registry.models import Estate, Unit

    estate, plan, unit, s = (db.session.get(m, i) for m, i in zip((Estate, PlanVersion, Unit, Settlement), ids,
                                                                   strict=True))
    resident = app.test_client()
    with resident.session_transaction() as sess:
        sess[SESSION_KEY] = {"unit_id": unit.id, "owner_id": owner_id, "link_id": link_id}
    staff = app.test_client()
    assert staff.post("/api/auth/login", json={"username": committee_login,
                                                "password": "correct-horse-1"}).status_code == 200

    def page(client, url):
        def get():
            r = client.get(url)
            assert r.status_code == 200, r.status_code
            return r.data
        return get

    cases = (
        ("one unit's statement page (/r/statement)", page(resident, "/r/statement"), False),
        ("one unit's statement (service)", lambda: fs.unit_statement(plan, unit)["owed_fen"], True),
        ("statements export (xlsx)", lambda: exports.statements_xlsx(plan)[1], True),
        ("staff API: every unit's statement", page(staff, f"/api/plans/{plan.id}/statements"), True),
        ("start checklist", lambda: [c.as_dict() for c in ws.start_checklist(plan, NOW)], True),
        ("settlement preview (planned part)",
         lambda: [r["planned_owed_fen"] for r in settlement.settlement_preview(s)["rows"]], True),
        ("funding_summary", lambda: fs.funding_summary(estate.id)["owed_fen"], True),
        ("all units' owed", lambda: owed.owed_by_unit(plan), True),
        ("one unit's owed (pledge, API)", lambda: owed.owed_of_unit(plan, unit.id), True),
    )
    real_stored, real_trusted = owed.stored_contributions, owed._trusted
    for label, fn, compare in cases:
        saved_ms, a = timed(fn, repeat)
        # before: every reader computes the whole plan (what an uncommitted change to the estate does)
        owed.stored_contributions, owed._trusted = (lambda *a, **k: None), (lambda plan: False)
        try:
            live_ms, b = timed(fn, repeat)
        finally:
            owed.stored_contributions, owed._trusted = real_stored, real_trusted
        if compare:
            assert a == b, label
        print(f"{n_units} units, {label}: saved {saved_ms:.1f} ms, live {live_ms:.1f} ms, "
              f"ratio {saved_ms / live_ms:.2f} (goal <= {GOALS[label]})", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("units", type=int, nargs="?", default=2000)
    p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--repeat", type=int, default=9)
    args = p.parse_args()
    with scratch_database(args.db) as url:
        app = make_app(url, TESTING=True, AUDIT_SEALER="inline")
        create_schema(app)
        with app.app_context():
            print(f"database: {args.db}")
            main(app, args.units, args.repeat)
            db.session.remove()
            db.engine.dispose()
