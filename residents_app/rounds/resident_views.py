"""Resident pages (phone, large text, one question per screen): QR entry, home, vote, receipt."""

from __future__ import annotations

from flask import g, redirect, render_template, request, url_for

from residents_app.audit import sealer
from residents_app.auth import identity
from residents_app.auth.resident import current_resident, resident_required, resolve_token, sign_in_resident
from residents_app.core import matters
from residents_app.core.thresholds import AGREE, COUNTING_MODE_LABELS, PRESETS
from residents_app.db import utcnow
from residents_app.errors import DomainError, NotFound, ValidationFailed
from residents_app.extensions import db, limiter
from residents_app.rounds import ballots, common
from residents_app.rounds import links as links_svc
from residents_app.rounds import services as svc
from residents_app.rounds.blueprints import bp
from residents_app.rounds.receipts import check_receipt as check_chain_receipt

IDENTITY_LIMIT = "10 per minute"
# Guessing tokens: only unknown or revoked links (404) count against the limit.
TOKEN_GUESS_LIMIT = "20 per minute"  # noqa: S105 - a rate, not a secret

# Other features' resident pages, linked from the unit's home.
RESIDENT_LINKS = [("/r/plan", "改造方案"), ("/r/statement", "我的出资明细"), ("/r/pledge", "出资承诺书"),
                  ("/r/publicity", "公示"), ("/r/objections", "异议与意见")]


@bp.before_request
def _fresh_resident():
    # current_resident() caches in g; an app context reused across requests (as in tests) must not
    # carry the previous request's answer.
    g.pop("resident_obj", None)


def rule_text(rnd) -> dict:
    """The rule as residents read it, with the matter it applies to (a survey has no rule)."""
    if rnd.is_survey:
        return {"label": "问卷调查（不是表决）", "description": "本次是满意度调查，只统计应答率、各项分布和平均分。",
                "counting": "按户计", "matter": ""}
    preset = PRESETS[rnd.rule_preset]
    return {"label": preset.label, "description": preset.description,
            "counting": COUNTING_MODE_LABELS[rnd.counting_mode],
            "matter": f"本事项属于{matters.item_line(rnd.item)}" if rnd.item else ""}


@bp.route("/v/<token>", methods=["GET", "POST"])
@limiter.limit(IDENTITY_LIMIT, methods=["POST"])
@limiter.limit(TOKEN_GUESS_LIMIT, methods=["GET"], deduct_when=lambda resp: resp.status_code == 404)
def entry(token: str):
    link = resolve_token(token)
    if link is None or not link.is_active:
        return render_template("resident/link_invalid.html"), 404
    resident = current_resident()
    if request.method == "GET":
        if resident is not None and resident.link_id == link.id:
            return redirect(url_for("rounds.home"))
        return render_template("resident/identity.html", unit=link.unit, token=token, errors={}, form={})
    form = {"name": request.form.get("name", ""), "phone_last4": request.form.get("phone_last4", "")}
    try:
        owner = links_svc.confirm_identity(link, form["name"], form["phone_last4"], utcnow(), identity.current_client())
    except ValidationFailed as exc:
        db.session.commit()  # the failure is kept (it counts towards this client's lockout)
        # A mismatch is said once, with the tries left, not repeated under each field.
        errors = {} if exc.code == "identity_mismatch" else exc.errors
        return render_template("resident/identity.html", unit=link.unit, token=token, errors=errors,
                               message=exc.message, form=form), 422
    except DomainError as exc:
        if exc.code != "identity_locked":
            raise
        return render_template("resident/identity.html", unit=link.unit, token=token, errors={},
                               message=exc.message, form=form), 429
    sign_in_resident(link, owner)
    db.session.commit()
    return redirect(url_for("rounds.home"))


@bp.route("/r/home")
@resident_required
def home():
    res = current_resident()
    now = utcnow()
    rounds = svc.open_rounds_for_unit(res.unit.id, now)
    current = {r.id: ballots.current_ballot_for(r.id, res.unit.id) for r in rounds}
    closed = [(r, svc.result_label(r, result)) for r, result in svc.closed_rounds_for_unit(res.unit.id)]
    return render_template("resident/home.html", res=res, rounds=rounds, current=current, links=RESIDENT_LINKS,
                           closed=closed)


def _resident_round(round_id: int):
    res = current_resident()
    rnd = common.get_round(round_id)
    if rnd.estate_id != res.unit.estate_id or ballots._roll_entry(rnd.id, res.unit.id) is None:
        raise NotFound("找不到该表决")
    return res, rnd


@bp.route("/r/rounds/<int:round_id>", methods=["GET", "POST"])
@resident_required
def vote(round_id: int):
    res, rnd = _resident_round(round_id)
    now = utcnow()
    current = ballots.current_ballot_for(rnd.id, res.unit.id)
    ctx = {"res": res, "rnd": rnd, "rule": rule_text(rnd), "current": current}
    if not rnd.accepts_ballots_at(now):
        from residents_app.rounds.models import RoundResult

        outcome = svc.result_label(rnd, db.session.get(RoundResult, rnd.id)) if rnd.status == "closed" else None
        return render_template("resident/vote_closed.html", **ctx, outcome=outcome,
                               not_yet=now < rnd.opens_at or rnd.status == "draft")
    if request.method == "GET":
        return render_template("resident/vote.html", **ctx, errors={})
    step = request.form.get("step", "choose")
    choice = request.form.get("choice", "")
    items = request.form.getlist("items")
    rating = request.form.get("rating") or None
    comment = request.form.get("comment", "")
    if choice not in rnd.option_labels:
        return render_template("resident/vote.html", **ctx, errors={"choice": "请先选择一项"}), 422
    if rating is not None:
        if not rating.isdigit() or not 1 <= int(rating) <= 5:
            return render_template("resident/vote.html", **ctx, errors={"rating": "请选择 1 到 5 分"}), 422
        rating = int(rating)
    if choice != AGREE:
        items = []  # only an owner who agrees is asked which items (the items step is skipped)
    chosen = {"choice": choice, "items": items, "rating": rating, "comment": comment}
    if step == "choose" and rnd.item_menu and choice == AGREE:
        return render_template("resident/vote_items.html", **ctx, chosen=chosen)
    if step in ("choose", "items"):
        return render_template("resident/vote_confirm.html", **ctx, chosen=chosen,
                               item_labels=[i["label"] for i in rnd.item_menu if i["key"] in items])
    if step != "confirm":
        raise ValidationFailed("页面已过期，请重新选择", errors={"step": "未知的步骤"})
    try:
        ballots.cast_ballot(rnd.id, res.unit.id, res.owner.id, choice, now, items=items, rating=rating,
                        comment=comment, defer_audit=True,
                        client=ballots.client_fingerprint(request.remote_addr, request.headers.get("User-Agent")))
    except DomainError as exc:
        db.session.rollback()
        if exc.code in ("vote_window_closed", "vote_not_open"):
            return render_template("resident/vote_closed.html", **ctx, not_yet=exc.code == "vote_not_open"), 409
        raise
    db.session.commit()
    sealer.after_commit()
    return redirect(url_for("rounds.vote_done", round_id=rnd.id))


@bp.route("/r/rounds/<int:round_id>/done")
@resident_required
def vote_done(round_id: int):
    res, rnd = _resident_round(round_id)
    current = ballots.current_ballot_for(rnd.id, res.unit.id)
    if current is None:
        return redirect(url_for("rounds.vote", round_id=rnd.id))
    return render_template("resident/vote_done.html", res=res, rnd=rnd, current=current)


@bp.route("/receipt")
def receipt():
    return _receipt_page(request.args.get("code", "").strip())


def _receipt_page(code: str):
    """One receipt page for both addresses: the vote as the voter reads it and the log's check of it."""
    if not code:
        return render_template("rounds/receipt.html", result=None, info=None, code="")
    try:
        result = check_chain_receipt(code, utcnow())
    except DomainError as exc:
        return render_template("rounds/receipt.html", result=None, info=None, code=code, error=exc.message), exc.status
    try:
        info = ballots.check_receipt(code)
    except (ValidationFailed, NotFound):
        info = None
    return render_template("rounds/receipt.html", result=result, info=info, code=code)


@bp.route("/audit/receipt", defaults={"code": None})
@bp.route("/audit/receipt/<code>")
def receipt_check(code: str | None):
    """Public: anyone holding a receipt code checks it (no login; shows no names or unit numbers)."""
    return _receipt_page((code or request.args.get("code") or "").strip())
