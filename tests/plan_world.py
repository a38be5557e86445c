"""Fixtures of the plans, funding and works tests: an estate of two buildings, its committee and street office."""

from __future__ import annotations

from datetime import timedelta

import pytest


class PlanWorld:
    def __init__(self, factory, db, now):
        self.db = db
        self.now = now
        self.office = factory.street_office()
        # 1幢: 60 + 40 m², 2幢: 100 m²; cap at 400 yuan/m² = 200 m² × 40,000 fen = 8,000,000 fen
        self.estate = factory.estate(office=self.office, buildings={
            "1幢": [("101", "60.00"), ("102", "40.00")],
            "2幢": [("101", "100.00")],
        })
        self.committee = factory.user("committee", estate=self.estate)
        self.street = factory.user("street", office=self.office)
        self.b1, self.b2 = sorted(self.estate.buildings, key=lambda b: b.name)
        self.u101, self.u102 = sorted(self.b1.units, key=lambda u: u.number)
        (self.u201,) = self.b2.units
        self.units = [self.u101, self.u102, self.u201]
        # committed (to the test's savepoint): an error page rolls back the request's work only
        db.session.commit()

    def owner(self, unit):
        return unit.owners[0]

    def plan(self, *, items=None, publish=True, management_plan="物业公司负责日常维护，维修资金按年归集。",
             pledge_closes_at=None):
        from residents_app.plans import services

        plan = services.create_plan(self.estate, title="幸福小区综合改造方案", user=self.committee,
                                    now=self.now, management_plan=management_plan)
        for name, category, cost, buildings in (self.default_items() if items is None else items):
            services.add_item(plan, name=name, category=category, cost_fen=cost,
                              building_ids=[b.id for b in buildings] if buildings else None,
                              user=self.committee, now=self.now)
        if pledge_closes_at is not None:
            services.update_plan(plan, user=self.committee, now=self.now,
                                 pledge_window=(self.now, pledge_closes_at))
        if publish:
            services.publish_plan(plan, user=self.committee, now=self.now)
        self.db.session.commit()
        return plan

    def default_items(self):
        return [
            ("雨污分流", "required", 1_000_000, None),
            ("外墙保温", "basic", 1_000_000, None),
            ("停车位改造", "improvement", 1_000_000, None),
            ("1幢加装电梯", "upgrade", 1_000_000, [self.b1]),
        ]

    def approve_start(self, plan, *, status="approved"):
        """The start application of `plan`, submitted and (by default) approved by the street office at self.now:
        the project begins and the money is fixed from then on (committed)."""
        from residents_app.works.models import StartApplication

        app = StartApplication(estate_id=self.estate.id, plan_version_id=plan.id, status=status,
                               submitted_at=self.now, submitted_by_id=self.committee.id, checklist=[],
                               decided_at=self.now if status == "approved" else None,
                               decided_by_id=self.street.id if status == "approved" else None, comment="")
        self.db.session.add(app)
        self.db.session.commit()
        return app

    def later(self, **kw):
        return self.now + timedelta(**kw)


@pytest.fixture
def world(factory, db, now):
    return PlanWorld(factory, db, now)


@pytest.fixture
def resident_login(db):
    """Sign a test client in as the owner of a unit (the session a QR link + identity check gives)."""
    from residents_app.auth.resident import SESSION_KEY, hash_token, new_token
    from residents_app.registry.models import UnitLink

    def login(client, unit):
        link = UnitLink(unit_id=unit.id, token_hash=hash_token(new_token()))
        db.session.add(link)
        # commit (to the test's savepoint): an error response's rollback must not take the link with it
        db.session.commit()
        with client.session_transaction() as sess:
            sess[SESSION_KEY] = {"unit_id": unit.id, "owner_id": unit.owners[0].id, "link_id": link.id}
        return link

    return login
