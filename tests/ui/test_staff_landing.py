"""Staff pages over HTTP (issue 18): where each role lands after login, the favicon, labels instead of codes."""

from __future__ import annotations


def test_committee_lands_on_its_estate_dashboard(client, db, factory):
    estate = factory.estate(buildings={"1幢": [("101", "88.50")]})
    user = factory.user("committee", estate=estate)
    db.session.commit()
    resp = client.post("/login", data={"username": user.username, "password": "correct-horse-1"})
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"/estates/{estate.id}/dashboard"


def test_street_office_lands_on_its_district_view(client, db, factory):
    office = factory.street_office()
    user = factory.user("street", office=office)
    db.session.commit()
    resp = client.post("/login", data={"username": user.username, "password": "correct-horse-1"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/district"


def test_admin_still_lands_on_the_estate_list(client, db, factory):
    user = factory.user("admin")
    db.session.commit()
    resp = client.post("/login", data={"username": user.username, "password": "correct-horse-1"})
    assert resp.headers["Location"] == "/dashboard"


def test_favicon_is_served(client):
    resp = client.get("/favicon.ico")
    assert resp.status_code == 200 and resp.mimetype == "image/x-icon"
    assert resp.data[:4] == b"\x00\x00\x01\x00"


def test_rounds_list_shows_the_rule_label_not_its_key(client, db, factory, login_as):
    from residents_app.core.thresholds import PRESETS
    from residents_app.db import utcnow
    from residents_app.rounds import services as svc

    estate = factory.estate(buildings={"1幢": [("101", "88.50")]})
    user = factory.user("committee", estate=estate)
    t = utcnow()
    from datetime import timedelta

    svc.create_round(estate.id, svc.RoundInput(kind="willingness", title="是否同意改造", opens_at=t,
                                               closes_at=t + timedelta(days=14)), t, user)
    db.session.commit()
    login_as(client, user)
    html = client.get(f"/estates/{estate.id}/rounds").get_data(as_text=True)
    assert "lucheng_double_two_thirds" not in html
    assert f"<td>{PRESETS['lucheng_double_two_thirds'].label}</td>" in html


def test_funding_page_puts_the_payment_form_before_the_ledger(client, db, factory, login_as):
    estate = factory.estate(buildings={"1幢": [("101", "88.50")]})
    user = factory.user("committee", estate=estate)
    db.session.commit()
    login_as(client, user)
    html = client.get(f"/estates/{estate.id}/funding").get_data(as_text=True)
    assert html.index('id="add-payment"') < html.index("<th>序号</th>")
    assert '<details id="owing-fold" open>' in html


def test_plan_page_folds_the_unit_shares_per_building(client, db, login_as):
    import sqlalchemy as sa

    from residents_app.auth.models import User
    from residents_app.db import utcnow
    from residents_app.demo import load_demo
    from residents_app.plans.models import PlanVersion

    load_demo(utcnow())
    db.session.commit()
    plan = db.session.execute(sa.select(PlanVersion).order_by(PlanVersion.id.desc())).scalars().first()
    user = db.session.execute(sa.select(User).where(User.username == "committee")).scalar_one()
    client.post("/login", data={"username": user.username, "password": "demo-committee-2026"})
    html = client.get(f"/plans/{plan.id}").get_data(as_text=True)
    assert html.count('<details class="building-fold" id="shares-') == 4
    assert "<strong>1幢</strong>：30 户，应缴合计" in html
    assert '<table class="table" id="shares-total">' in html
