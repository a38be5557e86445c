"""The log's actor strings as people read them (issue 18 item 10)."""

from __future__ import annotations

from residents_app.auth.actors import actor_label


def test_actor_strings_become_names_units_and_system(db, factory):
    estate = factory.estate(buildings={"1幢": [("101", "88.50")]})
    user = factory.user("committee", estate=estate)
    unit = estate.buildings[0].units[0]
    owner = unit.owners[0]
    db.session.flush()
    assert actor_label(f"user:{user.id}:{user.username}") == f"{user.display_name}（{estate.name}业委会）"
    assert actor_label(f"unit:{unit.id}/owner:{owner.id}") == "1幢-101 业主"
    assert actor_label("system:demo") == "系统（演示数据）"
    assert actor_label("system:scheduler") == "系统（定时任务）"
    assert actor_label("user:999999:ghost") == "工作人员"
    assert actor_label("") == "其他"
