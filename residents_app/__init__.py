"""residents_app: residents decide the renovation of their old estate."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from flask import Flask, g, request

from residents_app import extensions as ext
from residents_app.config import check_rate_limit_storage, load_config, replica_binds
from residents_app.errors import error_response, register_error_handlers, wants_json

ROOT = Path(__file__).resolve().parent.parent

# Feature packages. Each may define in views.py: `bp` (pages), `api_bp` (flask-smorest JSON API)
# and in cli.py: `cli` (a click group registered under `flask`).
FEATURES = ("auth", "registry", "rounds", "publicity", "plans", "funding", "works", "works.construction",
            "works.acceptance", "audit", "oversight", "notify", "scheduler", "ops")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "
       "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder="static",
    )
    from residents_app.ints import IdConverter

    app.url_map.converters["int"] = IdConverter  # before any route: an id no id column holds matches nothing (404)
    app.config.update(load_config(Path(app.instance_path)))
    if config:
        app.config.update(config)
        if "SQLALCHEMY_DATABASE_URI" in config and "SQLALCHEMY_ENGINE_OPTIONS" not in config:
            from residents_app.config import engine_options, normalise_database_url

            url = normalise_database_url(config["SQLALCHEMY_DATABASE_URI"])
            app.config["SQLALCHEMY_DATABASE_URI"] = url
            app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(url)
    replica_binds(app.config)
    check_rate_limit_storage(app.config)
    app.json.ensure_ascii = False
    from residents_app import sessions

    sessions.install(app)  # server-side sessions in Redis when REDIS_URL is set (several app nodes)
    if app.config.get("PROXY_COUNT"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Behind nginx: the client's address (rate limits, identity lockouts) and scheme from its X-Forwarded-*.
        n = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import residents_app.models  # noqa: F401  (every model registered before mappers configure)

    ext.db.init_app(app)
    from residents_app import read_commit

    read_commit.install(app, ext.db)  # a GET reads in autocommit; one that only read ends without a ROLLBACK
    ext.migrate.init_app(app, ext.db, directory=str(ROOT / "migrations"), compare_type=True,
                     render_as_batch=True)
    ext.csrf.init_app(app)
    from residents_app import api_csrf

    api_csrf.install(app)  # the API is exempt from the forms' token: its own checks (Origin, JSON or token)
    ext.limiter.init_app(app)
    ext.login_manager.init_app(app)
    ext.api.init_app(app)
    _configure_login(app)
    from residents_app.auth import identity

    identity.init_app(app)

    for name in FEATURES:
        views = _optional_module(f"residents_app.{name}.views")
        if views is not None:
            if hasattr(views, "bp"):
                app.register_blueprint(views.bp)
            if hasattr(views, "api_bp"):
                ext.csrf.exempt(views.api_bp)  # checked by api_csrf instead (Origin; JSON or X-CSRFToken)
                ext.api.register_blueprint(views.api_bp)
            for attr in ("users_cli",):
                if hasattr(views, attr):
                    app.cli.add_command(getattr(views, attr))
        resident_api = _optional_module(f"residents_app.{name}.resident_api")
        if resident_api is not None:  # the resident API under /api/r/... (resident session)
            ext.csrf.exempt(resident_api.api_bp)
            ext.api.register_blueprint(resident_api.api_bp)
        cli = _optional_module(f"residents_app.{name}.cli")
        if cli is not None and hasattr(cli, "cli"):
            app.cli.add_command(cli.cli)

    from residents_app.demo import demo_cli

    app.cli.add_command(demo_cli)

    register_error_handlers(app)
    _register_template_helpers(app)

    @app.after_request
    def _security_headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        resp.headers.setdefault("Content-Security-Policy", CSP)
        if request.path.startswith(("/v/", "/r/")):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    return app


def _optional_module(dotted: str):
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        if exc.name == dotted:
            return None
        raise


def _configure_login(app: Flask) -> None:
    from residents_app.auth.services import load_session_user

    ext.login_manager.login_view = "auth.login"
    ext.login_manager.login_message = "请先登录"

    @app.before_request
    def _fresh_login_user():
        # The account (and its session version) is checked on every request: an app context reused across
        # requests (as in tests) must not carry the previous request's user.
        g.pop("_login_user", None)

    @ext.login_manager.user_loader
    def _load(user_id: str):
        return load_session_user(user_id)

    @ext.login_manager.unauthorized_handler
    def _unauthorized():
        from flask import redirect, url_for

        if wants_json():
            return error_response("unauthorized", 401, "请先登录")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _register_template_helpers(app: Flask) -> None:
    from residents_app import formatting

    app.jinja_env.filters["area"] = formatting.format_area
    app.jinja_env.filters["yuan"] = formatting.format_yuan
    app.jinja_env.filters["local_dt"] = formatting.format_local_dt
    app.jinja_env.filters["local_date"] = formatting.format_local_date
    app.jinja_env.filters["mask_phone"] = formatting.mask_phone
    from residents_app.auth.actors import actor_label

    app.jinja_env.filters["actor"] = actor_label

    @app.context_processor
    def _inject():
        from residents_app.auth.resident import current_resident

        return {"current_resident": current_resident}
