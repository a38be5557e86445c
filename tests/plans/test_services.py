"""Plans and money services with exact fen, on the database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.errors import Conflict, ValidationFailed
from residents_app.plans import services as plan_svc


def kinds(db, estate_id):
    return list(db.session.execute(sa.select(AuditEvent.kind).where(AuditEvent.chain == estate_id)
                                   .order_by(AuditEvent.seq)).scalars())


def test_published_version_is_frozen_and_new_version_supersedes(world, db):
    plan = world.plan()
    with pytest.raises(Conflict) as info:
        plan_svc.add_item(plan, name="x", category="basic", cost_fen=1, user=world.committee, now=world.now)
    assert info.value.message == "方案第 1 版已发布，不能再修改；请新建版本"
    draft = plan_svc.new_version(plan, user=world.committee, now=world.now)
    assert (draft.number, draft.supersedes_id, len(draft.items)) == (2, plan.id, 4)
    with pytest.raises(Conflict) as info:
        plan_svc.publish_plan(draft, user=world.committee, now=world.later(days=1))
    assert info.value.errors == {"plan": ["新版本必须写明与上一版相比的变更说明"]}
    plan_svc.update_plan(draft, user=world.committee, now=world.now, change_summary="取消停车位改造")
    plan_svc.remove_item(next(i for i in draft.items if i.name == "停车位改造"), user=world.committee, now=world.now)
    plan_svc.update_item(draft.items[0], name="雨污分流", category="required", cost_fen=1_200_000,
                         user=world.committee, now=world.now)
    diff = plan_svc.plan_diff(plan, draft)
    assert diff["removed"] == ["停车位改造"] and diff["added"] == []
    assert diff["changed"] == [{"name": "雨污分流", "changes": ["费用 1000000 → 1200000 分"],
                                "old_cost_fen": 1_000_000, "new_cost_fen": 1_200_000}]
    plan_svc.publish_plan(draft, user=world.committee, now=world.later(days=1))
    assert (plan.status, draft.status) == ("superseded", "published")
    assert plan_svc.current_plan(world.estate.id).id == draft.id


def test_frozen_guard_refuses_direct_changes(world, db):
    plan = world.plan()
    plan.items[0].cost_fen = 1
    with pytest.raises(Conflict) as info:
        db.session.flush()
    assert info.value.code == "plan_frozen"


def test_publish_refuses_empty_plan(world):
    plan = world.plan(items=[], publish=False)
    with pytest.raises(Conflict) as info:
        plan_svc.publish_plan(plan, user=world.committee, now=world.now)
    assert info.value.message == "方案不能发布：方案还没有任何改造项目"


def test_item_validation_messages(world, factory):
    plan = world.plan(items=[], publish=False)
    other = factory.estate(buildings={"9幢": [("101", "50.00")]})
    with pytest.raises(ValidationFailed) as info:
        plan_svc.add_item(plan, name=" ", category="gold", cost_fen=0, building_ids=[other.buildings[0].id],
                          user=world.committee, now=world.now)
    assert info.value.errors == {"name": ["项目名称不能为空"], "category": ["类别必须是 必选、基础、完善 或 提升"],
                                 "cost_fen": ["费用必须大于零，精确到分"], "building_ids": ["所选楼栋不属于本小区"]}


def test_attachment_type_and_size_checked(world):
    plan = world.plan(items=[], publish=False)
    att = plan_svc.add_attachment(plan, kind="rendering", filename="C:\\效果图.png",
                                  data=b"\x89PNG\r\n\x1a\n" + b"0" * 10, user=world.committee, now=world.now)
    assert (att.filename, att.content_type, att.size_bytes) == ("效果图.png", "image/png", 18)
    with pytest.raises(ValidationFailed) as info:
        plan_svc.add_attachment(plan, kind="drawing", filename="a.exe", data=b"MZ\x90", user=world.committee,
                                now=world.now)
    assert info.value.message == "文件「a.exe」不是 PDF、PNG、JPEG 或 WebP 格式"
    with pytest.raises(ValidationFailed) as info:
        plan_svc.add_attachment(plan, kind="drawing", filename="big.pdf", data=b"%PDF-" + b"0" * 20,
                                user=world.committee, now=world.now, max_bytes=24)
    assert info.value.message == "文件「big.pdf」有 25 字节，超过上限 24 字节"
