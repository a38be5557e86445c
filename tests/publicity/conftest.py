"""Fixtures for publicity: an estate with units (two hardship), a committee, a resident session,
and a fixed clock for the views."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from residents_app.publicity import services, views

# Tue 2026-09-29 10:00 Beijing
POSTED_NOW = datetime(2026, 9, 29, 2, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


@pytest.fixture
def estate(factory, db):
    e = factory.estate(buildings={"1幢": [("101", "90.00"), ("102", "80.00"), ("103", "70.00")],
                                  "2幢": [("201", "60.00"), ("1001", "50.00")]})
    units = {u.label: u for b in e.buildings for u in b.units}
    units["1幢-102"].is_hardship = True
    units["2幢-1001"].is_hardship = True
    # Committed (to the test's savepoint): an error response rolls the session back.
    db.session.commit()
    return e


@pytest.fixture
def units(estate):
    return {u.label: u for b in estate.buildings for u in b.units}


@pytest.fixture
def committee(factory, estate, db):
    user = factory.user("committee", estate=estate)
    db.session.commit()
    return user


@pytest.fixture
def admin(factory, db):
    user = factory.user("admin")
    db.session.commit()
    return user


@pytest.fixture
def clock(monkeypatch):
    """Set the time the views see: clock.set(datetime)."""

    class Clock:
        now = POSTED_NOW

        def set(self, value):
            self.now = value

    c = Clock()
    monkeypatch.setattr(views, "utcnow", lambda: c.now)
    return c


def post_hardship(estate, *, posted_on=date(2026, 9, 29), working_days=5, now=POSTED_NOW, actor="user:1:t",
                  backdate_reason=""):
    return services.post_publicity(estate, subject_type="hardship_list", subject_id=estate.id,
                                   title="困难群众名单公示", notice_text="经业委会审核，以下住户列入困难群众名单。",
                                   posted_on=posted_on, working_days=working_days, actor=actor, now=now,
                                   backdate_reason=backdate_reason)


@pytest.fixture
def sign_in_resident(db):
    """sign_in_resident(client, unit) -> owner: a resident session as after the QR link."""
    from residents_app.auth.resident import SESSION_KEY, hash_token, new_token
    from residents_app.registry.models import UnitLink

    def sign_in(client, unit):
        link = UnitLink(unit_id=unit.id, token_hash=hash_token(new_token()))
        db.session.add(link)
        db.session.flush()
        owner = unit.owners[0]
        db.session.commit()
        with client.session_transaction() as sess:
            sess[SESSION_KEY] = {"unit_id": unit.id, "owner_id": owner.id, "link_id": link.id}
        return owner

    return sign_in
