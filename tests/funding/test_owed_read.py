"""Readers of the saved amounts (funding/owed.py contributions_of): a unit's statement, the exports, the staff API,
the settlement's planned amounts, the start checklist and documents give, to the fen, what the live computation
gives; a unit's statement reads that unit's row, not every unit of the estate.

The estate: 7 units over 3 buildings with areas that leave remainders (ties broken by order), hardship (one exempt,
one partly subsidised), two funding sources (one estate-wide by area, one on named items), items in every category,
one 居民自费 and one 另行补助, one over a building only, costs above the cap so the excess is charged back.
"""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from residents_app.funding import owed
from residents_app.funding import services as funding_svc
from residents_app.plans import services as plan_svc
from tests.querycount import count_statements

BUILDINGS = {"1幢": [("101", "60.37"), ("102", "40.00"), ("201", "40.00")],
             "2幢": [("101", "100.11"), ("102", "33.33")],
             "3幢": [("101", "77.70"), ("102", "33.33")]}


class MoneyWorld:
    def __init__(self, factory, db, now, buildings=BUILDINGS):
        from residents_app.funding import sources

        self.db, self.now = db, now
        self.office = factory.street_office()
        self.estate = factory.estate(office=self.office, buildings=buildings)
        self.committee = factory.user("committee", estate=self.estate)
        self.b1, self.b2, self.b3 = sorted(self.estate.buildings, key=lambda b: b.name)[:3]
        self.units = funding_svc.estate_units(self.estate.id)
        c, n = self.committee, now
        funding_svc.set_hardship(self.estate, self.units[1], mode="exempt", covered_by="街道", user=c, now=n)
        funding_svc.set_hardship(self.estate, self.units[3], mode="partial", subsidy_fen=77_777, covered_by="慈善",
                                 user=c, now=n)
        plan = plan_svc.create_plan(self.estate, title="综合改造", user=c, now=n, management_plan="物业负责")
        # 40,000 fen/m² × 384.84 m² = 15,393,600 fen of cap; the subsidies below exceed it
        for name, cat, cost, bs, mode, fixed in (
                ("雨污分流", "required", 9_000_001, None, "subsidised", 0),
                ("外墙保温", "basic", 5_000_003, None, "subsidised", 0),
                ("停车位改造", "improvement", 2_345_679, None, "subsidised", 0),
                ("1幢加装电梯", "upgrade", 1_234_567, [self.b1.id], "subsidised", 0),
                ("防盗门", "basic", 300_001, [self.b2.id, self.b3.id], "self_paid", 0),
                ("3幢电梯", "upgrade", 900_000, [self.b3.id], "separate", 333_333)):
            plan_svc.add_item(plan, name=name, category=cat, cost_fen=cost, building_ids=bs, funding_mode=mode,
                              fixed_subsidy_fen=fixed, user=c, now=n)
        plan_svc.publish_plan(plan, user=c, now=n)
        self.plan = plan
        for amount, names in ((123_457, None), (99_999, ["外墙保温", "防盗门"])):
            src = sources.add_source(self.estate, kind="unit_donation", amount_fen=amount, provider="某某公司",
                                     item_names=names, decision_note="业委会决议接受", user=c, now=n)
            sources.attach_evidence(src, filename="协议.pdf", data=b"%PDF-1.4\n% receipt\n", user=c, now=n)
        db.session.commit()


@pytest.fixture
def money(factory, db, now):
    return MoneyWorld(factory, db, now)


def live(db, estate_id):
    """What an uncommitted change to the estate does: every reader computes live until the commit."""

    class Live:
        def __enter__(self):
            db.session.info.setdefault(owed._DIRTY, set()).add(estate_id)

        def __exit__(self, *exc):
            db.session.info.pop(owed._DIRTY, None)

    return Live()


def test_the_saved_figures_are_what_the_live_computation_gives(money, db):
    plan = money.plan
    computed = funding_svc.compute_plan(plan)
    assert computed.excess_fen > 0 and computed.offsets_used and computed.covered_total_fen > 0  # the world
    stored = owed.stored_contributions(plan)
    assert stored is not None
    assert stored == computed  # every field of every item and unit (dataclass equality), exact fen
    assert list(stored.units) == list(computed.units)  # the estate's order too
    for u in money.units:
        one = owed.stored_contributions(plan, [u.id])
        assert list(one.units) == [u.id]
        assert one.units[u.id] == computed.units[u.id]
        assert one.items == computed.items and one.cap_fen == computed.cap_fen
    # the figures as a resident reads them
    st = funding_svc.unit_statement(plan, money.units[3])
    assert (st["share_fen"], st["covered_fen"], st["offset_fen"], st["owed_fen"]) == (
        computed.units[money.units[3].id].share_fen, 77_777, computed.units[money.units[3].id].offset_fen,
        computed.units[money.units[3].id].owed_fen)
    assert sum(u.owed_fen for u in stored.units.values()) == computed.owed_total_fen


def test_statements_exports_settlement_and_start_read_the_same_as_live(money, db):
    from residents_app.funding import exports, settlement
    from residents_app.funding.sources import self_funding_state
    from residents_app.works import documents
    from residents_app.works import services as works_svc

    plan = money.plan
    s = settlement.settlement_of(plan, create=True, now=money.now)
    for item in plan.items[:3]:
        settlement.set_audited_cost(s, item.id, item.cost_fen - 12_345, user=money.committee, now=money.now)
    db.session.commit()

    def outputs():
        db.session.expire_all()
        wb = load_workbook(io.BytesIO(exports.statements_xlsx(plan)[0]))
        preview = settlement.settlement_preview(s)
        return {"statements": [_statement(funding_svc.unit_statement(plan, u)) for u in money.units],
                "xlsx": {ws.title: [[c.value for c in row] for row in ws.iter_rows()] for ws in wb.worksheets},
                "planned": [(r["unit"].id, r["planned_owed_fen"], r["final_owed_fen"]) for r in preview["rows"]],
                "self_funding": self_funding_state(plan)[:2],
                "checklist": [c.as_dict() for c in works_svc.start_checklist(plan, money.now)],
                "form_pdf": len(documents.application_form_pdf(plan, money.now)) > 0}

    stored = outputs()
    with live(db, money.estate.id):
        computed = outputs()
    assert stored == computed
    live_owed = [u.owed_fen for u in funding_svc.compute_plan(plan).units.values()]
    assert [r[1] for r in stored["planned"]] == live_owed
    assert [r[1] for r in stored["planned"]] != [r[2] for r in stored["planned"]]  # the audited costs differ
    assert live_owed[1] == 0  # the exempt unit


def test_the_staff_api_reads_the_saved_figures(money, db, client, login_as):
    login_as(client, money.committee)
    got = client.get(f"/api/plans/{money.plan.id}/statements").get_json()
    computed = funding_svc.compute_plan(money.plan)
    assert [(u["unit_id"], u["share_fen"], u["covered_fen"], u["offset_fen"], u["matched_fen"], u["owed_fen"],
             [(ln["item_id"], ln["share_fen"]) for ln in u["lines"]]) for u in got["units"]] == [
        (k, o.share_fen, o.covered_fen, o.offset_fen, o.matched_fen, o.owed_fen,
         [(ln.item_key, ln.share_fen) for ln in o.lines]) for k, o in computed.units.items()]


def _statement(st: dict) -> dict:
    return {**{k: v for k, v in st.items() if k not in ("lines", "offsets", "plan", "unit")},
            "lines": [(ln.item.id, ln.share_fen, ln.item_resident_fen, ln.pct, ln.excess_fen, ln.area_m2,
                       ln.scope_area_m2, ln.explanation) for ln in st["lines"]],
            "offsets": [(o["source"].id, o["fen"], o["explanation"]) for o in st["offsets"]]}


def test_under_the_match_rule_the_saved_figures_are_the_live_ones(money, db):
    from residents_app.core.money import Rule
    from residents_app.funding import subsidy_rules

    subsidy_rules.save_rule(money.office.id, Rule.zhuhai(), user=money.committee, now=money.now)
    db.session.commit()  # rewrites the version in force
    computed = funding_svc.compute_plan(money.plan)
    assert computed.rule_kind == "match" and any(u.matched_fen for u in computed.units.values())
    assert owed.stored_contributions(money.plan) == computed
    u = money.units[0]
    assert _statement(funding_svc.unit_statement(money.plan, u)) == _statement(
        funding_svc.unit_statement(money.plan, u, computed))


def test_until_the_commit_and_for_an_older_version_the_readers_compute_live(money, db):
    plan = money.plan
    funding_svc.clear_hardship(money.estate, money.units[1], user=money.committee, now=money.now)
    assert owed.stored_contributions(plan) is None  # changed in this transaction
    assert funding_svc.unit_statement(plan, money.units[1])["covered_fen"] == 0
    db.session.commit()
    assert owed.stored_contributions(plan) == funding_svc.compute_plan(plan)
    # renaming a building changes the order units are allocated in (ties of the remainder): rewritten too
    money.b1.name = "9幢"
    db.session.commit()
    assert owed.stored_contributions(plan) == funding_svc.compute_plan(plan)
    assert list(owed.stored_contributions(plan).units) == list(funding_svc.compute_plan(plan).units)
    nxt = plan_svc.new_version(plan, user=money.committee, now=money.now)
    plan_svc.update_plan(nxt, user=money.committee, now=money.now, change_summary="调整外墙保温")
    plan_svc.publish_plan(nxt, user=money.committee, now=money.now)
    db.session.commit()
    assert plan.status == "superseded"
    assert owed.stored_contributions(plan) is None  # only the version in force is kept up to date
    assert owed.stored_contributions(nxt) == funding_svc.compute_plan(nxt)


def _statement_queries(db, plan, unit, monkeypatch) -> int:
    def no_whole_estate(*a, **kw):
        raise AssertionError("a unit's statement computed the whole estate")

    db.session.expire_all()
    monkeypatch.setattr(funding_svc, "compute_plan", no_whole_estate)
    with count_statements(db.engine) as counted:
        funding_svc.unit_statement(plan, unit)
    monkeypatch.undo()
    return counted.total


def test_a_units_statement_does_not_load_every_unit(factory, db, now, monkeypatch):
    small = MoneyWorld(factory, db, now)
    # the same plan over 3 × 40 units: the same statements, one row read
    big = MoneyWorld(factory, db, now, buildings={
        name: [(f"{i:03d}", f"{50 + i % 7}.{i % 100:02d}") for i in range(40)] for name in ("1幢", "2幢", "3幢")})
    n_small = _statement_queries(db, small.plan, small.units[3], monkeypatch)
    n_big = _statement_queries(db, big.plan, big.units[3], monkeypatch)
    assert n_small == n_big
    assert n_big <= 8
