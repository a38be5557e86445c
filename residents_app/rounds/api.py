"""JSON API (flask-smorest): ballot by token for the mini-program, committee endpoints.

Unknown fields are refused (schemas use RAISE); every error has the one shape
{code, status, message, errors}.
"""

from __future__ import annotations

from flask import g, request
from flask_limiter.util import get_remote_address
from flask_login import current_user
from limits import parse as parse_limit

from residents_app.audit import sealer
from residents_app.auth import identity
from residents_app.auth.resident import (
    current_resident,
    hash_token,
    resolve_token,
    session_ids,
    sign_in_resident,
    sign_out_resident,
    token_matches,
)
from residents_app.auth.scoping import estate_or_404, staff_required
from residents_app.db import utcnow
from residents_app.errors import DomainError, NotFound
from residents_app.extensions import db, limiter
from residents_app.rounds import ballots, castpath, common, outcomes
from residents_app.rounds import links as links_svc
from residents_app.rounds import schemas as sc
from residents_app.rounds import services as svc
from residents_app.rounds import tally as tally_svc
from residents_app.rounds.blueprints import api_bp
from residents_app.rounds.receipts import check_receipt as check_chain_receipt
from residents_app.rounds.resident_views import IDENTITY_LIMIT, TOKEN_GUESS_LIMIT, rule_text


@api_bp.before_request
def _fresh_resident():
    g.pop("resident_obj", None)  # see resident_views._fresh_resident


def _link_or_404(token: str):
    link = resolve_token(token)
    if link is None or not link.is_active:
        raise NotFound("二维码链接无效或已被收回", code="link_invalid")
    return link


_TOKEN_MISSES = parse_limit(TOKEN_GUESS_LIMIT)


def _link_or_404_counted(token: str):
    """_link_or_404 for the cast, which is exempt from the limiter's per-request check (it runs for every
    ballot): only a miss (an unknown or revoked token) counts, against the same budget per address as the
    ballot page's."""
    try:
        return _link_or_404(token)
    except NotFound:
        if limiter.enabled and not limiter.limiter.hit(_TOKEN_MISSES, "token-miss", get_remote_address()):
            raise DomainError("操作过于频繁，请稍后再试", code="rate_limited", status=429) from None
        raise


def _round_json(rnd, unit_id=None) -> dict:
    out = sc.RoundSchema().dump(rnd)
    out["rule"] = rule_text(rnd)
    if unit_id is not None:
        cur = ballots.current_ballot_for(rnd.id, unit_id)
        out["my_ballot"] = None if cur is None else {"choice": cur.choice, "cast_at": cur.cast_at.isoformat(),
                                                     "receipt_code": cur.receipt_code}
    return out


@api_bp.route("/ballot/<token>")
@limiter.limit(TOKEN_GUESS_LIMIT, deduct_when=lambda resp: resp.status_code == 404)
@api_bp.alt_response(200, schema=sc.BallotInfoSchema, success=True)
def ballot_info(token: str):
    """The unit behind a QR link and its open rounds (details only after identity confirmation)."""
    link = _link_or_404(token)
    res = current_resident()
    identified = res is not None and res.link_id == link.id
    body = {"unit": {"label": link.unit.label}, "identified": identified, "rounds": []}
    if identified:
        body["unit"]["area_m2"] = f"{link.unit.title_area_m2:.2f}"
        body["rounds"] = [_round_json(r, link.unit_id) for r in svc.open_rounds_for_unit(link.unit_id, utcnow())]
    return body


@api_bp.route("/ballot/<token>/identity", methods=["POST"])
@api_bp.arguments(sc.IdentitySchema)
@limiter.limit(IDENTITY_LIMIT)
@api_bp.alt_response(200, schema=sc.IdentityConfirmedSchema, success=True)
def ballot_identity(data, token: str):
    """Confirm the owner (registered name + last 4 digits of the phone); sets the resident session."""
    link = _link_or_404(token)
    try:
        owner = links_svc.confirm_identity(link, data["name"], data["phone_last4"], utcnow(), identity.current_client())
    except DomainError:
        db.session.commit()  # keep the failure record for this client's lockout
        raise
    sign_in_resident(link, owner)
    db.session.commit()
    return {"unit": link.unit.label, "owner_name": owner.name}


@api_bp.route("/ballot/<token>/cast", methods=["POST"])
@limiter.exempt
@api_bp.arguments(sc.CastSchema())  # an instance: not rebuilt per request
# Documented as CastResultSchema, serialised here (plain values: no schema dump on the hot path).
@api_bp.alt_response(201, schema=sc.CastResultSchema, success=True)
def ballot_cast(data, token: str):
    """Cast (or change) the unit's ballot; returns the receipt code."""
    now = utcnow()
    ids = session_ids()
    client = ballots.client_fingerprint(request.remote_addr, request.headers.get("User-Agent"))
    # PostgreSQL, a round already seen open: one statement that checks and writes (castpath.PG_CAST_ONE).
    written = None if ids is None else ballots.cast_known_round(
        ids.unit_id, ids.owner_id, ids.link_id, hash_token(token), data["round_id"], data["choice"], now,
        items=data["items"], rating=data["rating"], comment=data["comment"], client=client)
    if written is None:
        written = _cast_checked(data, token, ids, now, client)
    db.session.commit()
    sealer.after_commit()
    # The fields of CastResultSchema (tests/rounds/test_cast_path.py checks the two agree).
    return {"ballot_id": written.ballot_id, "round_id": data["round_id"], "choice": data["choice"],
            "channel": "online", "cast_at": now.isoformat(), "receipt_code": written.receipt_code}, 201


def _cast_checked(data, token: str, ids, now, client):
    """One read (the session's link, active and this token's; its ownership; the round; the unit's row of the
    frozen roll: castpath.READ_SQL), the checks in order, then the writes."""
    row = None if ids is None else castpath.read_for_cast(ids.link_id, ids.unit_id, ids.owner_id, data["round_id"])
    if row is None or row.link_revoked or not row.owns_unit:
        if ids is not None:
            sign_out_resident()  # a revoked link or an owner removed from the unit ends the session
        _link_or_404_counted(token)
        raise DomainError("请先确认业主身份", code="identity_required", status=401)
    if not token_matches(token, row.token_hash):
        _link_or_404_counted(token)  # an unknown or revoked token: 404
        raise DomainError("请先确认业主身份", code="identity_required", status=401)
    items = ballots.check_cast(row.round, row.on_roll, now, data["choice"], data["items"], data["rating"])
    castpath.remember_round(row.round)
    return ballots.cast_online(row.round, ids.unit_id, ids.owner_id, data["choice"], now, items=items,
                           rating=data["rating"], comment=data["comment"], client=client, defer_audit=True)


@api_bp.route("/ballot/receipt/<code>")
@api_bp.response(200, sc.ReceiptSchema)
def receipt_check(code: str):
    """Check that a ballot is counted as cast."""
    return ballots.check_receipt(code)


# ---- committee -------------------------------------------------------------------------------

@api_bp.route("/rounds")
@api_bp.arguments(sc.RoundQuerySchema, location="query")
@api_bp.response(200, sc.RoundSchema(many=True))
@staff_required
def api_rounds(args):
    estate = estate_or_404(args["estate_id"])
    return svc.rounds_of_estate(estate.id)


@api_bp.route("/rounds", methods=["POST"])
@api_bp.arguments(sc.RoundCreateSchema)
@api_bp.response(201, sc.RoundSchema)
@staff_required
def api_round_create(data):
    estate = estate_or_404(data.pop("estate_id"), edit=True)
    rnd = svc.create_round(estate.id, svc.RoundInput(**data), utcnow(), current_user)
    db.session.commit()
    return rnd


def _api_round(round_id: int, edit: bool = False):
    rnd = common.get_round(round_id)
    estate_or_404(rnd.estate_id, edit=edit)
    return rnd


@api_bp.route("/rounds/<int:round_id>")
@api_bp.response(200, sc.RoundSchema)
@staff_required
def api_round(round_id: int):
    return _api_round(round_id)


@api_bp.route("/rounds/<int:round_id>/open", methods=["POST"])
@api_bp.response(200, sc.RoundSchema)
@staff_required
def api_round_open(round_id: int):
    rnd = _api_round(round_id, edit=True)
    now = utcnow()
    if now < rnd.opens_at:
        raise DomainError("还没到开始时间", code="round_not_due", status=409)
    if not svc.open_round(rnd.id, now, current_user):
        raise DomainError("该表决已经开启过", code="round_already_open", status=409)
    db.session.commit()
    return rnd


@api_bp.route("/rounds/<int:round_id>/extend", methods=["POST"])
@api_bp.arguments(sc.ExtendSchema)
@api_bp.response(200, sc.RoundSchema)
@staff_required
def api_round_extend(data, round_id: int):
    rnd = _api_round(round_id, edit=True)
    svc.extend_round(rnd.id, data["closes_at"], data["reason"], utcnow(), current_user)
    db.session.commit()
    return rnd


@api_bp.route("/rounds/<int:round_id>/roll")
@api_bp.response(200, sc.RollEntrySchema(many=True))
@staff_required
def api_round_roll(round_id: int):
    rnd = _api_round(round_id)
    return tally_svc.roll_entries(rnd.id)


@api_bp.route("/rounds/<int:round_id>/tally")
@api_bp.alt_response(200, schema=sc.RoundTallySchema, success=True)
@staff_required
def api_round_tally(round_id: int):
    """Live tally: each condition with figure, bound, met, margin; per building; non-voters."""
    rnd = _api_round(round_id)
    live = tally_svc.compute_tally(rnd.id, utcnow())
    t = outcomes.live_tally(rnd, live)
    if rnd.status == "closed" and (rnd.is_choice or rnd.is_survey):
        t = dict(svc.round_outcome(rnd.id)["tally"])
        if rnd.is_choice:
            t["decided_label"] = t["choice"]["decided_label"]  # the decided option, or 未决定
    if rnd.results_visibility == "hidden" and rnd.status != "closed":
        t = {"hidden": True, "figures": {k: v for k, v in t["figures"].items() if not k.startswith("agree")},
             "buildings": [{k: v for k, v in b.items() if not k.startswith("agree")}
                           for b in t.get("buildings", [])]}
    elif rnd.item_menu:
        t["item_tally"] = tally_svc.item_tally(rnd.id)  # 改什么: what the agreeing units chose
    t["status"] = rnd.status
    t["non_voters"] = tally_svc.non_voters_by_building(rnd.id)
    return t


@api_bp.route("/rounds/estates/<int:estate_id>/links", methods=["POST"])
@api_bp.arguments(sc.LinkIssueSchema)
@api_bp.alt_response(201, schema=sc.IssuedLinksSchema, success=True)
@staff_required
def api_links_issue(data, estate_id: int):
    """Issue links (tokens are returned once, only their hashes are stored)."""
    from residents_app.rounds.committee_views import public_base_url

    estate = estate_or_404(estate_id, edit=True)
    if data["building_id"] is not None:
        from residents_app.registry.models import Building

        b = db.session.get(Building, data["building_id"])
        if b is None or b.estate_id != estate.id:
            raise NotFound("找不到该楼栋")
    issued = links_svc.issue_links(estate.id, utcnow(), current_user, building_id=data["building_id"],
                             reissue=data["reissue"])
    db.session.commit()
    base = public_base_url()
    return {"links": [{"unit_id": u.id, "label": u.label, "url": f"{base}/v/{t}"} for u, t in issued]}, 201


@api_bp.route("/audit/receipt/<code>")
@api_bp.alt_response(200, schema=sc.ChainReceiptCheckSchema, success=True)
def chain_receipt(code: str):
    """Check a receipt code (public): counted as cast only once the round is closed."""
    r = check_chain_receipt(code, utcnow())
    return {"state": r.state, "headline": r.headline, "round_title": r.round_title, "estate_name": r.estate_name,
            "choice_label": r.choice_label, "cast_at": r.cast_at.isoformat(), "round_closed": r.round_closed,
            "chain": r.chain, "seq": r.seq, "entry_hash": r.entry_hash, "detail": r.detail}
