"""Fixtures: the plan world (an estate of two buildings, its committee and street office) and an acceptance."""

from __future__ import annotations

from datetime import date

import pytest

from tests.plan_world import resident_login, world  # noqa: F401

PARTIES = [("builder", "幸福街道城建中心", "王建"), ("street", "幸福街道办事处", "李街"),
           ("community", "幸福社区居委会", "张社"), ("owners", "幸福小区业委会", "赵业"),
           ("designer", "市建筑设计院", "钱设"), ("contractor", "市政建设公司", "孙施"),
           ("supervisor", "诚信监理公司", "周监"), ("utility", "市供水公司", "吴水")]


class AcceptanceWorld:
    def __init__(self, w, factory, db):
        self.w = w
        self.db = db
        self.second = factory.user("committee", estate=w.estate)  # the second member who confirms scans
        self.parties = {role: factory.user("street", office=w.office) for role in ("builder", "street")}

    def open(self, *, online=("builder", "street"), user=None):
        from residents_app.works.acceptance import services

        rows = [services.ParticipantInput(role=r, organisation=o, name=n,
                                          user_id=self.parties[r].id if r in online else None)
                for r, o, n in PARTIES]
        acc = services.open_acceptance(self.w.estate, title="竣工共同验收", held_on=date(2026, 9, 1),
                                       place="小区会议室", participants=rows, user=user or self.w.committee,
                                       now=self.w.now)
        self.db.session.commit()
        return acc


@pytest.fixture
def aw(world, factory, db):  # noqa: F811  (the imported fixture)
    return AcceptanceWorld(world, factory, db)
