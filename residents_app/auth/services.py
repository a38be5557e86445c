"""Staff accounts: sign-in (with the account lock), creation, password changes, deactivation, unlocking."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm.util import identity_key
from werkzeug.security import check_password_hash, generate_password_hash

from residents_app.audit.services import record
from residents_app.auth.models import ROLES, LoginFailure, User
from residents_app.auth.passwords import password_problem
from residents_app.errors import DomainError, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.registry.models import Estate, StreetOffice

log = logging.getLogger(__name__)

# An account (the username typed, whoever types it and from wherever) with this many failed sign-ins within the
# window is locked: every attempt is refused, the right password included, until the window holds fewer (at most
# 15 minutes after the attempts stop), or an administrator unlocks it (`flask users unlock NAME`). Attempts
# refused by the lock are not counted, so waiting 15 minutes always lifts it.
ACCOUNT_MAX_FAILURES = 10
ACCOUNT_WINDOW = timedelta(minutes=15)
_MINUTES = int(ACCOUNT_WINDOW.total_seconds() // 60)
ACCOUNT_LOCKED_MESSAGE = (f"该账户 {_MINUTES} 分钟内密码错误已达 {ACCOUNT_MAX_FAILURES} 次，已被暂时锁定。"
                          f"请 {_MINUTES} 分钟后再试，或请系统管理员解锁")
SYSTEM_CHAIN = 0  # the audit chain of what belongs to no estate


class AccountLocked(DomainError):
    status = 429
    code = "account_locked"
    message = ACCOUNT_LOCKED_MESSAGE


@cache
def _dummy_hash() -> str:
    return generate_password_hash("no such account: the same work as a real check")


def _failures_filter(username: str, now: datetime):
    return (LoginFailure.username == username, LoginFailure.cleared_at.is_(None),
            LoginFailure.at > now - ACCOUNT_WINDOW)


def recent_failures(username: str, now: datetime) -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(LoginFailure)
                              .where(*_failures_filter(username[:60], now))).scalar_one()


def authenticate(username: str, password: str, now: datetime, remote_addr: str = "") -> User | None:
    """The account, or None for a wrong name or password (the failure is recorded: the caller commits).
    Raises AccountLocked while the account is locked, without looking at the password."""
    username = username[:60]
    if recent_failures(username, now) >= ACCOUNT_MAX_FAILURES:
        log.warning("login refused: account locked, username=%s", username)
        raise AccountLocked()
    user = db.session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        check_password_hash(_dummy_hash(), password)  # no faster answer for names that do not exist
    if user is None or not user.active or not user.check_password(password):
        db.session.add(LoginFailure(username=username, at=now, remote_addr=remote_addr[:64]))
        db.session.flush()
        log.warning("failed login for username=%s", username)
        return None
    _clear_failures(username, now)
    return user


def _clear_failures(username: str, now: datetime) -> int:
    return db.session.execute(
        sa.update(LoginFailure).where(LoginFailure.username == username, LoginFailure.cleared_at.is_(None))
        .values(cleared_at=now).execution_options(synchronize_session=False)).rowcount


def unlock_account(username: str, now: datetime, actor: str) -> int:
    """An administrator lifts the lock: the account's failures stop counting. Recorded on the system's audit
    chain. Returns how many failures were cleared."""
    user = db.session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"找不到账户 {username}")
    cleared = _clear_failures(username, now)
    record("auth.account_unlocked", chain=SYSTEM_CHAIN, actor=actor, now=now, subject_type="app_user",
           subject_id=user.id, data={"username": username, "failures_cleared": cleared})
    log.warning("account %s unlocked by %s (%s failures cleared)", username, actor, cleared)
    return cleared


def change_password(user: User, password: str) -> None:
    """A new password (the policy applies); every session of the account ends."""
    problem = password_problem(password, user.username)
    if problem:
        raise ValidationFailed("密码不符合要求", errors={"password": problem})
    user.set_password(password)
    db.session.flush()


def deactivate_user(user: User) -> None:
    """The account can no longer sign in, and every session of it ends."""
    user.deactivate()
    db.session.flush()


def end_sessions(user: User) -> None:
    """Logging out ends every session of the account (a copied session cookie included)."""
    user.end_sessions()
    db.session.flush()


def create_user(*, username: str, password: str, role: str, display_name: str = "",
                street_code: str | None = None, estate_code: str | None = None, district: str | None = None) -> User:
    errors: dict[str, str] = {}
    if role not in ROLES:
        errors["role"] = f"角色必须是 {', '.join(ROLES)} 之一"
    problem = password_problem(password, username)
    if problem:
        errors["password"] = problem
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
    if role == "bureau":
        # A district housing bureau oversees every street office of one district: the name must be one the
        # register already gives a street office (a typo would otherwise show an empty city view).
        name = (district or "").strip()
        if not name or db.session.execute(
                sa.select(StreetOffice.id).where(StreetOffice.district == name).limit(1)).first() is None:
            errors["district"] = "区住建局角色需要有效的区名（须与街道登记的所属区一致）"
        else:
            user.district = name
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


def load_session_user(session_id: str) -> User | None:
    """Flask-Login's user loader: the session holds "id:session_version" (User.get_id); a session made before
    the account's last logout, password change or deactivation no longer loads."""
    user_id, sep, version = (session_id or "").partition(":")
    if not sep or not user_id.isdigit() or not version.isdigit():
        return None
    user = _session_user(int(user_id))
    if user is None or not user.active or (user.session_version or 0) != int(version):
        return None
    return user


@cache
def _user_by_id():
    """Built once: every signed-in request runs it (a built statement costs half of session.get's path)."""
    return sa.select(User).where(User.id == sa.bindparam("p_user_id"))


def _session_user(user_id: int) -> User | None:
    """session.get(User, user_id), through a statement built once: the session's own copy when it holds one."""
    if identity_key(User, user_id) in db.session.identity_map:
        return db.session.get(User, user_id)  # refreshed if expired, None if deleted meanwhile
    return db.session.execute(_user_by_id(), {"p_user_id": user_id}).scalar_one_or_none()
