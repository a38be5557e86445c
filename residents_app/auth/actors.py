"""Actor strings of the log ("user:5:chen", "unit:69/owner:76", "system:scheduler") as people read them on a page."""

from __future__ import annotations

import re

from residents_app.extensions import db

SYSTEM_LABELS = {"system": "系统", "system:scheduler": "系统（定时任务）", "system:demo": "系统（演示数据）",
                 "system:test": "系统"}
_USER = re.compile(r"user:(\d+)(?::.*)?")
_UNIT = re.compile(r"unit:(\d+)/owner:(\d+)")


def _office_of(user) -> str:
    """The office a staff member signs for: the street office's name, the estate's committee."""
    from residents_app.registry.models import Estate, StreetOffice

    if user.role == "street" and user.street_office_id:
        office = db.session.get(StreetOffice, user.street_office_id)
        return office.name if office is not None else ""
    if user.role == "committee" and user.estate_id:
        estate = db.session.get(Estate, user.estate_id)
        return f"{estate.name}业委会" if estate is not None else ""
    return ""


def actor_label(actor: str | None) -> str:
    """The person or office behind an actor string: a staff member's name and role, an owner's unit."""
    from residents_app.auth.models import User
    from residents_app.registry.models import Unit

    actor = actor or ""
    if actor in SYSTEM_LABELS:
        return SYSTEM_LABELS[actor]
    if actor.startswith("system"):
        return "系统"
    m = _USER.fullmatch(actor)
    if m:
        user = db.session.get(User, int(m.group(1)))
        if user is None:
            return "工作人员"
        return f"{user.display_name}（{_office_of(user) or user.role_label}）"
    m = _UNIT.fullmatch(actor)
    if m:
        unit = db.session.get(Unit, int(m.group(1)))
        return f"{unit.label} 业主" if unit is not None else "业主"
    return "其他"
