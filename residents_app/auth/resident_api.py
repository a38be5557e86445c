"""The resident API's root (/api/r, resident session): who is signed in, and the home page's sections.

A mini-program opens a resident session either with the unit's QR link and the identity check
(/api/ballot/<token>/identity) or with a bound WeChat (/api/auth/wechat/login). Every resident route
under /api/r/... reads that session; each feature serves its own routes from its `resident_api.py`.

The home is built from sections that the features register (a registry, not upward imports):
``HOME_SECTIONS[name] = fn(resident, now) -> JSON-able value``; a section may return None to be left out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import Schema, fields

from residents_app.auth.resident import Resident, current_resident
from residents_app.db import utcnow
from residents_app.errors import DomainError

api_bp = ApiBlueprint("resident_api", __name__, url_prefix="/api/r",
                      description="住户（小程序）：本户信息与首页；须先以本户二维码确认身份或以已绑定的微信登录")

HomeSection = Callable[[Resident, datetime], Any]
HOME_SECTIONS: dict[str, HomeSection] = {}


def register_home_section(name: str, fn: HomeSection) -> None:
    HOME_SECTIONS[name] = fn


def resident_or_401() -> Resident:
    """The signed-in resident, or the one JSON error a mini-program answers by asking for the identity check."""
    resident = current_resident()
    if resident is None:
        raise DomainError("请先扫描本户二维码并确认业主身份，或用已绑定的微信登录", code="identity_required",
                          status=401)
    return resident


class MeUnitSchema(Schema):
    id = fields.Integer(metadata={"example": 12})
    label = fields.String(metadata={"example": "3号楼-501"})
    building = fields.String(metadata={"example": "3号楼"})
    area_m2 = fields.String(metadata={"description": "产权面积（平方米，两位小数）", "example": "86.40"})
    estate_id = fields.Integer(metadata={"example": 1})
    estate_name = fields.String(metadata={"example": "幸福里小区"})


class MeSchema(Schema):
    unit = fields.Nested(MeUnitSchema)
    owner_name = fields.String(metadata={"example": "张三"})


class HomeSchema(MeSchema):
    sections = fields.Dict(keys=fields.String(), metadata={
        "description": "各功能的首页栏目：open_rounds（进行中的表决）、notices（公示）、pledges（我的出资承诺）、"
                       "complaints（我的投诉）等；没有内容的栏目不出现",
        "example": {"open_rounds": [{"id": 3, "title": "加装电梯意见征询", "closes_at": "2026-09-10T10:00:00+08:00",
                                     "my_choice": None}]}})


def _me(resident: Resident) -> dict:
    unit = resident.unit
    return {"unit": {"id": unit.id, "label": unit.label, "building": unit.building.name,
                     "area_m2": f"{unit.title_area_m2:.2f}", "estate_id": unit.estate_id,
                     "estate_name": unit.building.estate.name},
            "owner_name": resident.owner.name}


@api_bp.route("/me")
@api_bp.response(200, MeSchema)
def me():
    """The unit and owner of this resident session."""
    return _me(resident_or_401())


@api_bp.route("/home")
@api_bp.response(200, HomeSchema)
def home():
    """My unit, open rounds, notices, my pledges, my complaints: one call for the mini-program's first page."""
    resident = resident_or_401()
    now = utcnow()
    sections = {}
    for name, fn in HOME_SECTIONS.items():
        value = fn(resident, now)
        if value is not None:
            sections[name] = value
    return {**_me(resident), "sections": sections}
