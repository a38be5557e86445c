"""Register summary (exact denominators, building scope), search, and audited edits."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.registry import services
from residents_app.registry.models import Building, Owner, Ownership


def db_events(estate_id):
    from residents_app.extensions import db

    return db.session.execute(
        sa.select(AuditEvent).where(AuditEvent.chain == estate_id).order_by(AuditEvent.seq)).scalars().all()


@pytest.fixture
def three_units(factory):
    return factory.estate(buildings={"1幢": [("101", "88.50"), ("102", "70.01")], "2幢": [("201", "0.01")]})


def test_summary_exact_and_scoped_to_buildings(db, three_units):
    s = services.register_summary(three_units.id)
    assert (s.unit_count, s.household_count, s.owner_count, s.title_area_m2) == (3, 3, 3, Decimal("158.52"))
    assert s.building_ids is None
    b1 = db.session.execute(sa.select(Building.id).where(Building.name == "1幢",
                                                         Building.estate_id == three_units.id)).scalar_one()
    one = services.register_summary(three_units.id, [b1])
    assert (one.unit_count, one.owner_count, one.title_area_m2, one.building_ids) == (2, 2, Decimal("158.51"), (b1,))
    assert [b.name for b in one.buildings] == ["1幢"]
    assert isinstance(one.title_area_m2, Decimal) and isinstance(one.unit_count, int)


def test_summary_of_empty_estate_and_unknown_building(db, factory):
    estate = factory.estate()
    s = services.register_summary(estate.id)
    assert (s.unit_count, s.owner_count, s.title_area_m2, s.buildings) == (0, 0, Decimal("0.00"), ())
    other = factory.estate(buildings={"9幢": [("901", "50")]})
    foreign = db.session.execute(sa.select(Building.id).where(Building.estate_id == other.id)).scalar_one()
    with pytest.raises(ValidationFailed) as exc:
        services.register_summary(estate.id, [foreign])
    assert exc.value.errors == {"building_ids": f"楼栋 [{foreign}] 不属于该小区"}


def test_search_by_label_number_name_phone(db, three_units):
    unit = three_units.buildings[0].units[0]
    owner = unit.owners[0]
    assert [u.label for u in services.search_units(three_units.id, "1幢-102").items] == ["1幢-102"]
    assert [u.label for u in services.search_units(three_units.id, "20").items] == ["2幢-201"]
    assert [u.label for u in services.search_units(three_units.id, owner.name).items] == ["1幢-101"]
    assert [u.label for u in services.search_units(three_units.id, owner.phone[-8:]).items] == ["1幢-101"]
    assert services.search_units(three_units.id, "%").total == 0  # wildcards are literal
    page = services.search_units(three_units.id, "", page=2, per_page=2)
    assert ([u.label for u in page.items], page.total, page.pages) == (["2幢-201"], 3, 2)


def test_update_unit_records_before_and_after(db, three_units, now):
    unit = three_units.buildings[0].units[0]
    services.update_unit(three_units.id, unit.id, actor="user:7:chen", now=now, title_area_m2="88.6",
                         kind="commercial", is_hardship=True)
    assert (unit.title_area_m2, unit.kind, unit.is_hardship) == (Decimal("88.60"), "commercial", True)
    ev = db_events(three_units.id)[-1]
    assert (ev.kind, ev.actor, ev.at, ev.subject_type, ev.subject_id) == (
        "register.change", "user:7:chen", now, "unit", str(unit.id))
    assert ev.data == {"action": "unit_updated", "unit": "1幢-101", "changes": {
        "title_area_m2": {"before": "88.50", "after": "88.60"},
        "kind": {"before": "residential", "after": "commercial"},
        "is_hardship": {"before": False, "after": True}}}
    n = len(db_events(three_units.id))
    services.update_unit(three_units.id, unit.id, actor="user:7:chen", now=now, title_area_m2="88.60")
    assert len(db_events(three_units.id)) == n  # no change, no entry


@pytest.mark.parametrize("area,message", [("88.555", "面积「88.555」超过两位小数"), ("0", "面积「0」必须大于 0"),
                                          ("x", "面积「x」不是数字")])
def test_update_unit_refuses_bad_area(db, three_units, now, area, message):
    unit = three_units.buildings[0].units[0]
    with pytest.raises(ValidationFailed) as exc:
        services.update_unit(three_units.id, unit.id, actor="a", now=now, title_area_m2=area)
    assert exc.value.errors == {"title_area_m2": message}


def test_unit_of_another_estate_is_not_found(db, three_units, factory, now):
    other = factory.estate(buildings={"1幢": [("101", "50")]})
    foreign = other.buildings[0].units[0]
    with pytest.raises(NotFound):
        services.update_unit(three_units.id, foreign.id, actor="a", now=now, title_area_m2="1")
    with pytest.raises(NotFound):
        services.add_owner(three_units.id, foreign.id, name="x", phone="13800000000", actor="a", now=now)


def test_add_and_remove_co_owner(db, three_units, now):
    unit = three_units.buildings[0].units[0]
    first = unit.owners[0]
    new = services.add_owner(three_units.id, unit.id, name="配偶", phone="138 0000 0099", id_last4="123x",
                             actor="user:1:a", now=now)
    assert (new.phone, new.id_last4) == ("13800000099", "123X")
    assert sorted(o.id for o in unit.owners) == sorted([first.id, new.id])
    assert services.register_summary(three_units.id).owner_count == 4
    # an existing person (same phone) becomes owner of a second unit: still one person
    other_unit = three_units.buildings[1].units[0]
    same = services.add_owner(three_units.id, other_unit.id, name="配偶", phone="13800000099", actor="u", now=now)
    assert same.id == new.id
    assert services.register_summary(three_units.id).owner_count == 4
    with pytest.raises(Conflict) as exc:
        services.add_owner(three_units.id, unit.id, name="配偶", phone="13800000099", actor="u", now=now)
    assert exc.value.message == "配偶 已是 1幢-101 的业主"
    with pytest.raises(ValidationFailed) as exc:
        services.add_owner(three_units.id, unit.id, name="别人", phone="13800000099", actor="u", now=now)
    assert exc.value.errors == {"phone": "手机号 13800000099 已登记为「配偶」，同一手机号只能对应一位业主"}

    services.remove_owner(three_units.id, unit.id, first.id, actor="user:1:a", now=now)
    assert [o.id for o in unit.owners] == [new.id]
    ev = db_events(three_units.id)[-1]
    assert ev.data["action"] == "owner_removed"
    assert ev.data["before"] == {"owners": sorted([first.id, new.id])}
    assert ev.data["after"] == {"owners": [new.id]}
    with pytest.raises(Conflict) as exc:
        services.remove_owner(three_units.id, unit.id, new.id, actor="u", now=now)
    assert exc.value.code == "last_owner"
    assert db.session.execute(sa.select(sa.func.count()).select_from(Ownership)
                              .where(Ownership.unit_id == unit.id)).scalar() == 1


def test_add_owner_validation_messages(db, three_units, now):
    unit = three_units.buildings[0].units[0]
    with pytest.raises(ValidationFailed) as exc:
        services.add_owner(three_units.id, unit.id, name="", phone="12345", id_last4="12", actor="u", now=now)
    assert exc.value.errors == {"name": "业主姓名不能为空",
                                "phone": "手机号「12345」格式不正确（应为 11 位大陆手机号）",
                                "id_last4": "身份证后四位「12」格式不正确（应为 4 位数字，最后一位可为 X）"}


def test_update_owner(db, three_units, now):
    owner = three_units.buildings[0].units[0].owners[0]
    other = three_units.buildings[0].units[1].owners[0]
    services.update_owner(three_units.id, owner.id, name="改名", phone="13811112222", id_last4=None,
                          actor="u", now=now)
    assert db.session.get(Owner, owner.id).name == "改名"
    with pytest.raises(ValidationFailed) as exc:
        services.update_owner(three_units.id, owner.id, name="改名", phone=other.phone, id_last4=None,
                              actor="u", now=now)
    assert exc.value.code == "phone_taken"


def test_create_street_office_and_estate(db, now):
    office = services.create_street_office("WX", "五马街道")
    estate = services.create_estate("NEW", "新小区", "WX", now=now)
    assert estate.street_office_id == office.id
    with pytest.raises(ValidationFailed) as exc:
        services.create_estate("NEW", "", "NOPE", now=now)
    assert exc.value.errors == {"code": "小区代码 NEW 已存在", "name": "小区名称不能为空，最多 100 个字",
                                "street": "找不到街道代码 NOPE"}
    with pytest.raises(ValidationFailed) as exc:
        services.create_street_office("WX", "重复")
    assert exc.value.errors == {"code": "街道代码 WX 已存在"}
