from __future__ import annotations

import os
from urllib.parse import urlsplit

import click
from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_smorest import Blueprint as ApiBlueprint

from residents_app.auth import identity
from residents_app.auth.schemas import LoginSchema, UserSchema
from residents_app.auth.scoping import estate_or_404, staff_required
from residents_app.auth.services import (
    AccountLocked,
    authenticate,
    change_password,
    create_user,
    deactivate_user,
    end_sessions,
    unlock_account,
)
from residents_app.db import utcnow
from residents_app.errors import DomainError, NotFound
from residents_app.extensions import db, limiter

bp = Blueprint("auth", __name__)
api_bp = ApiBlueprint("auth_api", __name__, url_prefix="/api/auth", description="登录")

LOGIN_LIMIT = "10 per minute"
CLI_ACTOR = "system:cli"


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return None
    return target


def home_for(user) -> str:
    """Where staff land: the committee on its estate's dashboard, the street office on its district view
    (what awaits its sign-off); the others on the estate list."""
    if user.role == "committee" and user.estate_id:
        return url_for("oversight.estate_dashboard", estate_id=user.estate_id)
    if user.role == "street" and user.street_office_id:
        return url_for("oversight.district")
    if user.role == "bureau":
        return url_for("oversight.city")
    return url_for("auth.dashboard")


@bp.route("/favicon.ico")
def favicon():
    # Browsers ask for it on the first visit of any page; a 404 there is a console error on every page.
    with open(os.path.join(current_app.static_folder, "favicon.ico"), "rb") as fh:
        data = fh.read()
    return Response(data, mimetype="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(LOGIN_LIMIT, methods=["POST"])
def login():
    if request.method == "POST":
        try:
            user = _authenticate(request.form.get("username", "").strip(), request.form.get("password", ""))
        except AccountLocked as exc:
            flash(exc.message, "error")
            return render_template("auth/login.html"), exc.status
        if user is None:
            flash("用户名或密码错误", "error")
            return render_template("auth/login.html"), 401
        login_user(user)
        return redirect(_safe_next(request.args.get("next")) or home_for(user))
    return render_template("auth/login.html")


def _authenticate(username: str, password: str):
    """authenticate(), with its record (a failure counted, or the count cleared) committed either way."""
    user = authenticate(username, password, utcnow(), request.remote_addr or "")
    db.session.commit()
    return user


def _logout() -> None:
    """End every session of the account, then this one: a copy of the cookie no longer works."""
    if current_user.is_authenticated:
        end_sessions(current_user)
        db.session.commit()
    logout_user()


@bp.route("/logout", methods=["POST"])
def logout():
    _logout()
    return redirect(url_for("auth.login"))


@bp.route("/")
def index():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return render_template("index.html")


@bp.route("/dashboard")
@login_required
def dashboard():
    from residents_app.auth.scoping import visible_estates_query

    estates = db.session.execute(visible_estates_query()).scalars().all()
    return render_template("auth/dashboard.html", estates=estates)


@bp.route("/r/expired")
def resident_expired():
    return render_template("resident/expired.html"), 401


@bp.route("/units/<int:unit_id>/link/unlock", methods=["POST"])
@staff_required
def link_unlock(unit_id: int):
    """The committee lifts the identity lock on a unit's link (every device locked out of it)."""
    from residents_app.registry.models import Unit

    unit = db.session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("找不到该房屋")
    estate = estate_or_404(unit.estate_id, edit=True)
    cleared = identity.unlock_link(unit, utcnow(), current_user)
    db.session.commit()
    flash(f"{unit.label} 的二维码已解除验证锁定（清除 {cleared} 次失败记录）", "success")
    return redirect(url_for("rounds.links_page", estate_id=estate.id))


@api_bp.route("/login", methods=["POST"])
@api_bp.arguments(LoginSchema)
@api_bp.response(200, UserSchema)
@limiter.limit(LOGIN_LIMIT)
def api_login(data):
    """Log in (session cookie) for the committee and street-office API."""
    user = _authenticate(data["username"], data["password"])
    if user is None:
        raise DomainError("用户名或密码错误", code="invalid_credentials", status=401)
    login_user(user)
    return user


@api_bp.route("/logout", methods=["POST"])
@api_bp.response(204)
def api_logout():
    _logout()


@api_bp.route("/me")
@api_bp.response(200, UserSchema)
@login_required
def api_me():
    return current_user


users_cli = click.Group("users", help="Accounts: create administrators, street-office staff, committee members, "
                                      "district housing bureaus.")


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "street", "committee", "bureau"]), required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", "display_name", default="")
@click.option("--street", "street_code", help="street office code (role street)")
@click.option("--estate", "estate_code", help="estate code (role committee)")
@click.option("--district", help="district name as the street offices are registered, e.g. 鹿城区 (role bureau)")
def users_create(username, role, password, display_name, street_code, estate_code, district):
    """Create an account."""
    try:
        user = create_user(username=username, password=password, role=role, display_name=display_name,
                           street_code=street_code, estate_code=estate_code, district=district)
    except DomainError as exc:
        db.session.rollback()
        for field, msg in exc.errors.items():
            click.echo(f"错误 {field}: {msg}", err=True)
        raise SystemExit(1) from exc
    db.session.commit()
    click.echo(f"已创建账户 {user.username}（{user.role_label}）")


def _user_or_exit(username: str):
    from residents_app.auth.models import User

    user = db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        click.echo(f"错误: 找不到账户 {username}", err=True)
        raise SystemExit(1)
    return user


@users_cli.command("unlock")
@click.argument("username")
def users_unlock(username):
    """Lift the lock after repeated failed sign-ins (recorded on the audit chain)."""
    try:
        cleared = unlock_account(username, utcnow(), CLI_ACTOR)
    except DomainError as exc:
        db.session.rollback()
        click.echo(f"错误: {exc.message}", err=True)
        raise SystemExit(1) from exc
    db.session.commit()
    click.echo(f"已解锁账户 {username}（清除 {cleared} 次失败记录）")


@users_cli.command("password")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def users_password(username, password):
    """Set a new password (ends every session of the account)."""
    user = _user_or_exit(username)
    try:
        change_password(user, password)
    except DomainError as exc:
        db.session.rollback()
        for field, msg in exc.errors.items():
            click.echo(f"错误 {field}: {msg}", err=True)
        raise SystemExit(1) from exc
    db.session.commit()
    click.echo(f"已为账户 {username} 设置新密码，其所有登录会话已失效")


@users_cli.command("deactivate")
@click.argument("username")
def users_deactivate(username):
    """Deactivate an account (ends every session of it)."""
    user = _user_or_exit(username)
    deactivate_user(user)
    db.session.commit()
    click.echo(f"已停用账户 {username}，其所有登录会话已失效")


from residents_app.auth import wechat_api, wechat_views  # noqa: E402,F401  (register the WeChat binding routes)
