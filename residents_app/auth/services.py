from __future__ import annotations

import logging

import sqlalchemy as sa

from residents_app.auth.models import ROLES, User
from residents_app.errors import ValidationFailed
from residents_app.extensions import db
from residents_app.registry.models import Estate, StreetOffice

log = logging.getLogger(__name__)


def authenticate(username: str, password: str) -> User | None:
    user = db.session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or not user.active or not user.check_password(password):
        log.warning("failed login for username=%s", username)
        return None
    return user


def create_user(*, username: str, password: str, role: str, display_name: str = "",
                street_code: str | None = None, estate_code: str | None = None) -> User:
    errors: dict[str, str] = {}
    if role not in ROLES:
        errors["role"] = f"角色必须是 {', '.join(ROLES)} 之一"
    if len(password) < 8:
        errors["password"] = "密码至少 8 位"  # noqa: S105
    if db.session.execute(sa.select(User.id).where(User.username == username)).first():
        errors["username"] = "用户名已存在"
    user = User(username=username, role=role, display_name=display_name or username)
    if role == "street":
        office = db.session.execute(
            sa.select(StreetOffice).where(StreetOffice.code == (street_code or ""))).scalar_one_or_none()
        if office is None:
            errors["street"] = "街道角色需要有效的街道代码"
        else:
            user.street_office_id = office.id
    if role == "committee":
        estate = db.session.execute(
            sa.select(Estate).where(Estate.code == (estate_code or ""))).scalar_one_or_none()
        if estate is None:
            errors["estate"] = "业委会角色需要有效的小区代码"
        else:
            user.estate_id = estate.id
            user.street_office_id = estate.street_office_id
    if errors:
        raise ValidationFailed("账户信息有误", errors=errors)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user
