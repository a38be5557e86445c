"""Owed amounts saved at publish vs computed live (issue 19 item 1), one estate of N units on a SQLite file.

    python bench/bench_owed.py 2000
"""

import statistics
import sys
import time
from datetime import UTC, datetime

sys.path.insert(0, ".")

from residents_app import create_app  # noqa: E402
from residents_app.extensions import db  # noqa: E402
from tests.conftest import Factory  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
NOW = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)


def timed(fn, n=15):
    out = []
    result = None
    for _ in range(n):
        db.session.expire_all()
        t = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out) * 1000, result


def main() -> None:
    from residents_app.funding import owed
    from residents_app.funding import services as fs
    from residents_app.plans import services as ps

    f = Factory(db)
    per = N // 20
    estate = f.estate(buildings={f"{b}幢": [(f"{i:03d}", f"{60 + (i % 50)}.25") for i in range(per)]
                                 for b in range(1, 21)})
    c = f.user("committee", estate=estate)
    b1 = sorted(estate.buildings, key=lambda b: b.name)[0]
    plan = ps.create_plan(estate, title="方案", user=c, now=NOW, management_plan="物业")
    for name, cat, cost, bs in (("雨污分流", "required", 10_000_000, None), ("外墙保温", "basic", 30_000_000, None),
                                ("电梯", "upgrade", 5_000_000, [b1.id])):
        ps.add_item(plan, name=name, category=cat, cost_fen=cost, building_ids=bs, user=c, now=NOW)
    ps.publish_plan(plan, user=c, now=NOW)
    db.session.commit()
    unit_id = estate.buildings[0].units[0].id
    for label, fn in (("funding_summary", lambda: fs.funding_summary(estate.id)["owed_fen"]),
                      ("all units' owed", lambda: owed.owed_by_unit(plan)),
                      ("one unit's owed (pledge, API)", lambda: owed.owed_of_unit(plan, unit_id))):
        saved_ms, a = timed(fn)
        db.session.info[owed._DIRTY] = {estate.id}  # what an uncommitted change does: the live path
        live_ms, b = timed(fn)
        db.session.info.pop(owed._DIRTY)
        assert a == b
        print(f"{N} units, {label}: saved {saved_ms:.1f} ms, live {live_ms:.1f} ms")


if __name__ == "__main__":
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite:////tmp/bench_owed.db",
                      "AUDIT_SEALER": "inline"})
    with app.app_context():
        db.drop_all()
        db.create_all()
        main()
