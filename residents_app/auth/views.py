from __future__ import annotations

from urllib.parse import urlsplit

import click
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_smorest import Blueprint as ApiBlueprint

from residents_app.auth.schemas import LoginSchema, UserSchema
from residents_app.auth.services import authenticate, create_user
from residents_app.errors import DomainError
from residents_app.extensions import db, limiter

bp = Blueprint("auth", __name__)
api_bp = ApiBlueprint("auth_api", __name__, url_prefix="/api/auth", description="登录")

LOGIN_LIMIT = "10 per minute"


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return None
    return target


def home_for(user) -> str:
    return url_for("auth.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(LOGIN_LIMIT, methods=["POST"])
def login():
    if request.method == "POST":
        user = authenticate(request.form.get("username", "").strip(), request.form.get("password", ""))
        if user is None:
            flash("用户名或密码错误", "error")
            return render_template("auth/login.html"), 401
        login_user(user)
        return redirect(_safe_next(request.args.get("next")) or home_for(user))
    return render_template("auth/login.html")


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
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


@api_bp.route("/login", methods=["POST"])
@api_bp.arguments(LoginSchema)
@api_bp.response(200, UserSchema)
@limiter.limit(LOGIN_LIMIT)
def api_login(data):
    """Log in (session cookie) for the committee and street-office API."""
    user = authenticate(data["username"], data["password"])
    if user is None:
        raise DomainError("用户名或密码错误", code="invalid_credentials", status=401)
    login_user(user)
    return user


@api_bp.route("/logout", methods=["POST"])
@api_bp.response(204)
def api_logout():
    logout_user()


@api_bp.route("/me")
@api_bp.response(200, UserSchema)
@login_required
def api_me():
    return current_user


users_cli = click.Group("users", help="Accounts: create administrators, street-office staff, committee members.")


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "street", "committee"]), required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", "display_name", default="")
@click.option("--street", "street_code", help="street office code (role street)")
@click.option("--estate", "estate_code", help="estate code (role committee)")
def users_create(username, role, password, display_name, street_code, estate_code):
    """Create an account."""
    try:
        user = create_user(username=username, password=password, role=role, display_name=display_name,
                           street_code=street_code, estate_code=estate_code)
    except DomainError as exc:
        db.session.rollback()
        for field, msg in exc.errors.items():
            click.echo(f"错误 {field}: {msg}", err=True)
        raise SystemExit(1) from exc
    db.session.commit()
    click.echo(f"已创建账户 {user.username}（{user.role_label}）")


from residents_app.auth import wechat_api, wechat_views  # noqa: E402,F401  (register the WeChat binding routes)
