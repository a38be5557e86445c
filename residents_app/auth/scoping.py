"""Who may see what. A committee member sees one estate, a street office its estates, a district housing bureau
(role "bureau", 区住建局) the estates of every street office of its district, read-only.

Everything outside a user's scope answers 404 (not 403): its existence is not disclosed.
"""

from __future__ import annotations

from functools import wraps

import sqlalchemy as sa
from flask_login import current_user

from residents_app.errors import DomainError, NotFound
from residents_app.extensions import db
from residents_app.registry.models import Estate, StreetOffice


def bureau_offices_query(user) -> sa.Select:
    """The ids of the street offices a bureau account oversees: those whose district is the account's district
    (never any when the account has no district)."""
    district = (user.district or "").strip()
    q = sa.select(StreetOffice.id)
    return q.where(StreetOffice.district == district) if district else q.where(sa.false())


def visible_estates_query() -> sa.Select:
    q = sa.select(Estate).order_by(Estate.code)
    user = current_user
    if not user.is_authenticated:
        return q.where(sa.false())
    if user.role == "admin":
        return q
    if user.role == "street":
        return q.where(Estate.street_office_id == user.street_office_id)
    if user.role == "bureau":
        return q.where(Estate.street_office_id.in_(bureau_offices_query(user)))
    return q.where(Estate.id == user.estate_id)


def can_see_estate(user, estate: Estate) -> bool:
    if not user.is_authenticated:
        return False
    if user.role == "admin":
        return True
    if user.role == "street":
        return estate.street_office_id == user.street_office_id
    if user.role == "bureau":
        district = (user.district or "").strip()
        return bool(district) and estate.street_office is not None and estate.street_office.district == district
    return estate.id == user.estate_id


def can_edit_estate(user, estate: Estate) -> bool:
    """Only the estate's own committee (and the administrator) change its register and rounds."""
    if not user.is_authenticated:
        return False
    return user.role == "admin" or (user.role == "committee" and estate.id == user.estate_id)


def estate_or_404(estate_id: int, *, edit: bool = False) -> Estate:
    estate = db.session.get(Estate, estate_id)
    if estate is None or not can_see_estate(current_user, estate):
        raise NotFound("找不到该小区")
    if edit and not can_edit_estate(current_user, estate):
        raise DomainError("只有本小区业委会可以进行此操作", code="forbidden", status=403)
    return estate


def estate_by_code_or_404(code: str, *, edit: bool = False) -> Estate:
    estate = db.session.execute(sa.select(Estate).where(Estate.code == code)).scalar_one_or_none()
    if estate is None:
        raise NotFound("找不到该小区")
    return estate_or_404(estate.id, edit=edit)


def roles_required(*roles: str):
    """Login plus role check; anonymous users get 401 (API) or the login page."""

    def deco(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            from residents_app.extensions import login_manager

            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                raise NotFound()
            return fn(*args, **kwargs)

        return wrapper

    return deco


staff_required = roles_required("admin", "street", "committee")
# Read-only pages a district housing bureau also sees (its estates' dashboards; the city view).
oversight_readers = roles_required("admin", "street", "committee", "bureau")
