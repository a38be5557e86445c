"""The plan vote is on a published version (issue 13 item 6): a draft (or a superseded version) cannot be put
to the vote, and a published version is not replaced while residents are voting on it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from residents_app.errors import Conflict, ValidationFailed
from residents_app.plans import services as plan_svc
from residents_app.rounds import services as rounds


def plan_vote(world, plan, **kw):
    return rounds.create_round(world.estate.id, rounds.RoundInput(
        kind="plan_vote", title="方案表决", opens_at=world.now, closes_at=world.later(days=7),
        plan_version_id=plan.id, **kw), world.now, world.committee)


def test_a_draft_cannot_be_put_to_the_vote(world):
    draft = world.plan(publish=False)
    with pytest.raises(ValidationFailed) as err:
        plan_vote(world, draft)
    assert err.value.status == 422
    assert err.value.errors == {
        "plan_version_id": "方案第 1 版还是草稿，不能表决：请先发布该版本，居民表决的是已发布的方案"}
    plan_svc.publish_plan(draft, user=world.committee, now=world.now)
    rnd = plan_vote(world, draft)
    assert rounds.open_round(rnd.id, world.now, world.committee) is True


def test_a_draft_round_on_a_version_superseded_meanwhile_cannot_open(world):
    v1 = world.plan()
    rnd = plan_vote(world, v1)
    assert rnd.id in rounds.rounds_due_to_open(world.later(hours=2))
    v2 = plan_svc.new_version(v1, user=world.committee, now=world.later(hours=1))
    plan_svc.update_plan(v2, user=world.committee, now=world.later(hours=1), change_summary="取消停车位改造")
    plan_svc.publish_plan(v2, user=world.committee, now=world.later(hours=1))
    assert rnd.id not in rounds.rounds_due_to_open(world.later(hours=2))  # the scheduler leaves it a draft
    with pytest.raises(Conflict) as err:
        rounds.open_round(rnd.id, world.later(hours=2), world.committee)
    assert (err.value.status, err.value.code, err.value.message) == (
        409, "plan_not_published", "方案第 1 版已被新版本取代，不能再表决")
    with pytest.raises(ValidationFailed) as err:
        plan_vote(world, v1)
    assert err.value.errors == {"plan_version_id": "方案第 1 版已被新版本取代，不能再表决"}


def test_a_version_under_vote_is_not_superseded_until_the_vote_closes(world):
    v1 = world.plan()
    rnd = plan_vote(world, v1)
    rounds.open_round(rnd.id, world.now, world.committee)
    v2 = plan_svc.new_version(v1, user=world.committee, now=world.later(hours=1))
    plan_svc.update_plan(v2, user=world.committee, now=world.later(hours=1), change_summary="取消停车位改造")
    with pytest.raises(Conflict) as err:
        plan_svc.publish_plan(v2, user=world.committee, now=world.later(hours=1))
    assert err.value.code == "plan_not_publishable"
    assert err.value.errors == {"plan": ["第 1 版方案的表决「方案表决」正在进行，表决结束前不能发布新版本取代它"]}
    assert (v1.status, v2.status) == ("published", "draft")
    rounds.close_round(rnd.id, world.later(days=7), None)
    plan_svc.publish_plan(v2, user=world.committee, now=world.later(days=7))
    assert (v1.status, v2.status) == ("superseded", "published")


def test_the_published_version_under_vote_cannot_change(world, db):
    v1 = world.plan()
    rnd = plan_vote(world, v1)
    rounds.open_round(rnd.id, world.now, world.committee)
    with pytest.raises(Conflict) as err:
        plan_svc.update_plan(v1, user=world.committee, now=world.now, funding_plan="改为全部由政府出资")
    assert err.value.message == "方案第 1 版已发布，不能再修改；请新建版本"
    with pytest.raises(Conflict) as err:
        plan_svc.add_item(v1, name="加装充电桩", category="upgrade", cost_fen=100, user=world.committee, now=world.now)
    assert err.value.code == "plan_frozen"
    v1.items[0].cost_fen = 1
    with pytest.raises(Conflict) as err:
        db.session.flush()
    assert err.value.message == "方案第 1 版已发布，不能修改其项目或附件"
    db.session.rollback()
    v1.published_at = world.now + timedelta(minutes=1)  # would make the vote look opened before publication
    with pytest.raises(Conflict) as err:
        db.session.flush()
    assert err.value.message == "方案第 1 版已发布，不能再修改"


def test_plan_vote_form_on_a_draft_is_refused_with_the_reason(client, login_as, world):
    draft = world.plan(publish=False)
    login_as(client, world.committee)
    resp = client.post("/api/rounds", json={
        "estate_id": world.estate.id, "kind": "plan_vote", "title": "方案表决",
        "opens_at": "2026-09-01T10:00:00+08:00", "closes_at": "2026-09-08T10:00:00+08:00",
        "plan_version_id": draft.id})
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["errors"]["plan_version_id"] == (
        "方案第 1 版还是草稿，不能表决：请先发布该版本，居民表决的是已发布的方案")
