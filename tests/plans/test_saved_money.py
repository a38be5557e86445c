"""The plan pages read the money funding saved with the version in force (funding/owed.py, through
plans.services.MONEY_READERS: plans does not import funding), not the whole estate computed on every view.

The estate of tests/funding/test_owed_read.py (hardship, two funding sources, items of every category and funding
mode, costs above the cap), in two sizes. Each page gives the same bytes (HTML) or JSON from the saved rows as from
the live computation (the saved rows deleted), and runs the same number of statements whatever the number of units.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from residents_app.formatting import format_yuan
from residents_app.funding import owed
from residents_app.funding import services as funding_svc
from residents_app.plans import services as plan_svc
from tests.funding.test_owed_read import BUILDINGS, MoneyWorld
from tests.plan_world import resident_login  # noqa: F401
from tests.querycount import count_statements

# 3 buildings of 12 units (36 units instead of 7): the same areas again and again, remainders included.
LARGE = {name: [(f"{100 + k}", area) for k in range(1, 13) for area in [units[k % len(units)][1]]]
         for name, units in BUILDINGS.items()}


def _pages(world) -> dict[str, str]:
    plan = world.plan
    return {"detail": f"/plans/{plan.id}", "staff_json": f"/api/plans/{plan.id}",
            "estate_json": f"/api/plans/estates/{world.estate.id}", "resident": "/r/plan",
            "resident_json": f"/api/r/plans/{plan.id}"}


_CSRF = re.compile(r'name="csrf_token" value="[^"]*"')


def _get(staff, resident, db, name, url):
    db.session.expire_all()
    client = resident if name.startswith("resident") else staff
    with count_statements(db.engine) as counted:
        resp = client.get(url)
    assert resp.status_code == 200, (url, resp.get_data(as_text=True)[:300])
    body = resp.get_json() if resp.is_json else _CSRF.sub("", resp.get_data(as_text=True))
    return body, counted


def _clients(app, client, login_as, resident_login, world):  # noqa: F811
    login_as(client, world.committee)
    resident = app.test_client()
    resident_login(resident, world.units[0])
    return client, resident


def _boom(*args, **kwargs):
    """compute_plan's last step (so compute_plan, and the calculator publish registers, fail if called)."""
    raise AssertionError("the whole estate's money computed on a plan page")


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def test_plan_pages_read_the_saved_money_and_show_what_the_live_computation_shows(app, client, login_as, factory,
                                                                                  db, now, monkeypatch,
                                                                                  resident_login):  # noqa: F811
    world = MoneyWorld(factory, db, now)
    staff, resident = _clients(app, client, login_as, resident_login, world)
    pages = _pages(world)
    with monkeypatch.context() as m:
        m.setattr(funding_svc, "compute_plan", _boom)
        m.setattr(funding_svc, "compute_contributions", _boom)
        saved = {name: _get(staff, resident, db, name, url)[0] for name, url in pages.items()}
    # The figures are there: the staff page's units table, the totals and the shares in the JSON.
    computed = funding_svc.compute_plan(world.plan)
    assert f'id="resident-total">{format_yuan(computed.resident_total_fen)}<' in saved["detail"]
    assert all(f">{format_yuan(u.owed_fen)}<" in saved["detail"] for u in computed.units.values())
    assert f">{format_yuan(computed.subsidy_total_fen)}<" in saved["resident"]
    assert saved["resident_json"]["resident_total"] == _yuan(computed.resident_total_fen)
    assert saved["resident_json"]["subsidy_total"] == _yuan(computed.subsidy_total_fen)
    assert saved["staff_json"]["resident_total_fen"] == computed.resident_total_fen
    assert [i["resident_fen"] for i in saved["staff_json"]["items"]] == [i.resident_fen for i in computed.items]

    # The live path: no saved rows, every page computes the estate (as it did on every view before).
    db.session.execute(sa.delete(owed.UnitOwed).where(owed.UnitOwed.plan_version_id == world.plan.id))
    db.session.execute(sa.delete(owed.PlanOwed).where(owed.PlanOwed.plan_version_id == world.plan.id))
    db.session.commit()
    calls = []
    real = funding_svc.compute_plan

    def spy(plan, **kw):
        calls.append(plan.id)
        return real(plan, **kw)

    monkeypatch.setattr(funding_svc, "compute_plan", spy)
    for name, url in pages.items():
        calls.clear()
        body, _ = _get(staff, resident, db, name, url)
        assert body == saved[name], name
        assert calls, name  # this path did compute


def test_plan_page_statements_do_not_grow_with_the_units(app, client, login_as, factory, db, now, monkeypatch,
                                                         resident_login):  # noqa: F811
    counts = []
    for buildings in (BUILDINGS, LARGE):
        world = MoneyWorld(factory, db, now, buildings=buildings)  # publishing computes: before the patch
        staff, resident = _clients(app, client, login_as, resident_login, world)
        with monkeypatch.context() as m:
            m.setattr(funding_svc, "compute_contributions", _boom)
            counts.append({name: _get(staff, resident, db, name, url)[1] for name, url in _pages(world).items()})
    small, large = counts
    assert len(funding_svc.estate_units(world.estate.id)) == 36
    assert {k: c.total for k, c in large.items()} == {k: c.total for k, c in small.items()}, (
        {k: c.report() for k, c in small.items()}, {k: c.report() for k, c in large.items()})
    # 13 / 14 / 14 / 12 / 12 before, when each page computed the estate (its units, hardship, rule, sources)
    assert {k: c.total for k, c in small.items()} == {"detail": 11, "staff_json": 12, "estate_json": 12,
                                                      "resident": 9, "resident_json": 9}


def test_a_draft_is_still_computed_live(client, login_as, factory, db, now):
    world = MoneyWorld(factory, db, now)
    draft = plan_svc.new_version(world.plan, user=world.committee, now=now)
    db.session.commit()
    login_as(client, world.committee)
    body = client.get(f"/api/plans/{draft.id}").get_json()
    computed = funding_svc.compute_plan(draft)
    assert (body["status"], body["resident_total_fen"], body["subsidy_total_fen"]) == (
        "draft", computed.resident_total_fen, computed.subsidy_total_fen)
