"""Fixtures of the resident API tests (part B: money, construction, evaluation): the plan world (tests/plan_world.py),
its project (an approved start), a resident signed in on a test client, and a fixed clock for the API modules."""

from __future__ import annotations

import pytest

from tests.plan_world import resident_login, world  # noqa: F401

API_MODULES = ("residents_app.auth.resident_api", "residents_app.funding.resident_api",
               "residents_app.works.construction.resident_api", "residents_app.works.acceptance.resident_api")


@pytest.fixture
def clock(monkeypatch, now):
    """The API modules' utcnow, set by the test: clock.now = ... moves it (starts at the suite's fixed NOW)."""
    import importlib

    class Clock:
        pass

    c = Clock()
    c.now = now
    for name in API_MODULES:
        monkeypatch.setattr(importlib.import_module(name), "utcnow", lambda: c.now)
    return c


@pytest.fixture
def project(world, db):  # noqa: F811
    """The estate's project: its start application approved by the street office at world.now."""
    plan = world.plan()
    app = world.approve_start(plan)
    world.plan_version = plan
    return app


@pytest.fixture
def other(factory, db):
    """A second estate (another street office) with one unit: its resident must never see the first estate's data."""
    estate = factory.estate(buildings={"9幢": [("901", "50.00")]})
    db.session.commit()
    return estate
