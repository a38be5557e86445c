"""Issue 14 item 4: every download of personal data or official figures is written to the estate's audit chain,
once, with who, what, when and how many rows; the street office's downloads too.

One estate (tests/plan_world.py: 1幢-101 with a co-owner, 1幢-102, 2幢-101), an open round, a published plan with
two pledges, three payments and a finalised settlement (1幢-101 refund, 1幢-102 top-up still open).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.db import utcnow
from tests.plan_world import PlanWorld

EXPORT = "export.downloaded"


class ExportWorld(PlanWorld):
    def __init__(self, factory, db, now):
        super().__init__(factory, db, now)
        from residents_app.funding import services as funding_svc
        from residents_app.funding import settlement as settlement_svc
        from residents_app.registry import services as registry_svc
        from residents_app.rounds import services as round_svc

        registry_svc.add_owner(self.estate.id, self.u101.id, name="共有人", phone="13812340102", actor="test",
                               now=now)
        self.round = round_svc.create_round(self.estate.id, round_svc.RoundInput(
            kind="willingness", title="是否同意改造", opens_at=now, closes_at=now + timedelta(days=14)),
            now, self.committee)
        assert round_svc.open_round(self.round.id, now, self.committee) is True
        self.plan_v = self.plan(pledge_closes_at=now + timedelta(days=10))
        for unit in (self.u101, self.u102):
            funding_svc.sign_pledge(self.plan_v, unit, unit.owners[0], now=now)
        for unit, fen in ((self.u101, 540_000), (self.u102, 300_000), (self.u201, 200_000)):
            funding_svc.record_payment(self.estate, unit_id=unit.id, amount_fen=fen, method="bank",
                                       paid_on=now.date(), user=self.committee, now=now)
        self.settlement = settlement_svc.settlement_of(self.plan_v, create=True, now=now)
        for item in self.plan_v.items:
            cost = 900_000 if item.name == "1幢加装电梯" else item.cost_fen
            settlement_svc.set_audited_cost(self.settlement, item.id, cost, user=self.committee, now=now)
        settlement_svc.finalise_settlement(self.settlement, user=self.committee, now=now)
        db.session.commit()


@pytest.fixture
def ew(factory, db, now):
    return ExportWorld(factory, db, now)


# (what is logged, method, url, subject_type, subject, rows); subject and url are resolved against the world.
ROUTES = [
    ("register_xlsx", "GET", "/estates/{estate}/export.xlsx", "estate", "estate", 4),
    ("register_units_api", "GET", "/api/estates/{estate}/units", "estate", "estate", 3),
    ("round_roll_csv", "GET", "/rounds/{round}/roll.csv", "round", "round", 3),
    ("round_roll_xlsx", "GET", "/rounds/{round}/roll.xlsx", "round", "round", 3),
    ("round_roll_ballots_xlsx", "GET", "/rounds/{round}/verify/export.xlsx", "round", "round", 3),
    ("round_report_pdf", "GET", "/rounds/{round}/report.pdf", "round", "round", None),
    ("unit_links_csv", "POST", "/estates/{estate}/links.csv", "estate", "estate", 3),
    ("plan_statements_xlsx", "GET", "/plans/{plan}/statements.xlsx", "plan_version", "plan", 3),
    ("plan_pledges_xlsx", "GET", "/plans/{plan}/pledges.xlsx", "plan_version", "plan", 2),
    ("ledger_xlsx", "GET", "/estates/{estate}/ledger.xlsx", "estate", "estate", 3),
    ("settlement_xlsx", "GET", "/plans/{plan}/settlement.xlsx", "settlement", "settlement", 3),
    ("settlement_dues_xlsx", "GET", "/plans/{plan}/settlement/dues.xlsx", "settlement", "settlement", 2),
    ("start_application_pdf", "GET", "/estates/{estate}/start/application.pdf", "plan_version", "plan", None),
]
# Logged before this change (the street office's verification desk): every other route failed on the old code.
ALREADY_LOGGED = {"round_roll_ballots_xlsx", "round_report_pdf"}
# Routes a street office may download (the committee's links are issued by the committee only).
STREET_ROUTES = [r for r in ROUTES if r[0] != "unit_links_csv"]


def _ids(ew) -> dict[str, int]:
    return {"estate": ew.estate.id, "round": ew.round.id, "plan": ew.plan_v.id, "settlement": ew.settlement.id}


def _exports(db, estate_id: int) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.execute(sa.select(AuditEvent).where(
        AuditEvent.chain == estate_id, AuditEvent.kind == EXPORT).order_by(AuditEvent.seq)).scalars())


def _download(client, method: str, url: str):
    return client.post(url, data={}) if method == "POST" else client.get(url)


@pytest.mark.parametrize(("what", "method", "url", "subject_type", "subject", "rows"), ROUTES,
                         ids=[r[0] for r in ROUTES])
def test_every_export_writes_one_log_entry(client, login_as, db, ew, what, method, url, subject_type, subject,
                                           rows):
    ids = _ids(ew)
    login_as(client, ew.committee)
    before = _exports(db, ew.estate.id)
    started = utcnow()
    resp = _download(client, method, url.format(**ids))
    finished = utcnow()
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    after = _exports(db, ew.estate.id)
    assert len(after) == len(before) + 1
    ev = after[-1]
    expected = {"what": what} if rows is None else {"what": what, "rows": rows}
    assert (ev.actor, ev.subject_type, ev.subject_id, ev.data) == (
        f"user:{ew.committee.id}:{ew.committee.username}", subject_type, str(ids[subject]), expected)
    assert started <= ev.at <= finished  # stamped with the time of the download (the request's clock)


@pytest.mark.parametrize(("what", "method", "url", "subject_type", "subject", "rows"), STREET_ROUTES,
                         ids=[r[0] for r in STREET_ROUTES])
def test_street_office_downloads_are_logged_with_its_user(client, login_as, db, ew, what, method, url,
                                                          subject_type, subject, rows):
    ids = _ids(ew)
    login_as(client, ew.street)
    before = len(_exports(db, ew.estate.id))
    assert _download(client, method, url.format(**ids)).status_code == 200
    after = _exports(db, ew.estate.id)
    assert len(after) == before + 1
    assert (after[-1].actor, after[-1].data["what"]) == (f"user:{ew.street.id}:{ew.street.username}", what)


def test_the_street_office_cannot_issue_links_and_nothing_is_logged(client, login_as, db, ew):
    login_as(client, ew.street)
    assert client.post(f"/estates/{ew.estate.id}/links.csv", data={}).status_code == 403
    assert _exports(db, ew.estate.id) == []


def test_a_refused_download_is_not_logged(client, login_as, db, ew, factory):
    other = factory.user("committee", estate=factory.estate(buildings={"1幢": [("101", "50.00")]}))
    db.session.commit()
    login_as(client, other)
    assert client.get(f"/estates/{ew.estate.id}/export.xlsx").status_code == 404
    assert client.get(f"/api/estates/{ew.estate.id}/units").status_code == 404
    assert _exports(db, ew.estate.id) == []


def test_units_api_logs_the_page_it_returned(client, login_as, db, ew):
    login_as(client, ew.committee)
    resp = client.get(f"/api/estates/{ew.estate.id}/units?per_page=2&page=2")
    assert resp.status_code == 200
    assert [u["number"] for u in resp.get_json()["items"]] == ["101"]
    assert [e.data for e in _exports(db, ew.estate.id)] == [{"what": "register_units_api", "rows": 1}]


def test_start_publicity_notice_pdf_is_logged(client, login_as, db, factory, now, monkeypatch):
    """The 公示书 exists only once the plan vote has passed (tests/works/gate_world.py), so it has its own world."""
    from residents_app.works import views
    from tests.works.gate_world import all_met

    world = PlanWorld(factory, db, now)
    plan = world.plan()
    at = all_met(world, plan)
    db.session.commit()
    monkeypatch.setattr(views, "utcnow", lambda: at)
    login_as(client, world.street)
    before = len(_exports(db, world.estate.id))
    resp = client.get(f"/estates/{world.estate.id}/start/publicity.pdf")
    assert (resp.status_code, resp.mimetype) == (200, "application/pdf")
    after = _exports(db, world.estate.id)
    assert len(after) == before + 1
    assert (after[-1].actor, after[-1].subject_type, after[-1].subject_id, after[-1].data, after[-1].at) == (
        f"user:{world.street.id}:{world.street.username}", "plan_version", str(plan.id),
        {"what": "start_publicity_pdf"}, at)


def test_export_entries_keep_the_chain_verifiable(client, login_as, db, ew):
    from residents_app.audit.verify import verify_chain

    login_as(client, ew.committee)
    for what, method, url, *_ in ROUTES[:4]:
        assert _download(client, method, url.format(**_ids(ew))).status_code == 200, what
    assert verify_chain(ew.estate.id).ok
