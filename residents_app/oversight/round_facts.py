"""What the verification desk and the result report show about a round, gathered read-only.

Reads the rounds models (roll, ballots, stored result), the publicity of the result and the audit
chain. The tally itself comes from the threshold engine (core.thresholds), the same engine rounds uses.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction

import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.core import thresholds as th
from residents_app.extensions import db
from residents_app.formatting import format_area, format_local_dt
from residents_app.oversight.flags import Flag, round_flags  # noqa: F401  (the desk's flags, read by tests here)
from residents_app.oversight.report import ConditionRow, RoundReportData
from residents_app.rounds import outcomes
from residents_app.rounds import tally as tally_svc

PRESET_RULE = {
    "lucheng_double_two_thirds": "lucheng",
    "civil_code_278_major": "civil_code_278",
    "civil_code_278_ordinary": "civil_code_278",
}


def rule_of(rnd) -> tuple[str, int | None]:
    """(rule code, art. 278 item): the item is the matter's (renovation and its plan: item 7; management mode:
    item 4; a general question: the item the committee named), whatever the rule."""
    return PRESET_RULE.get(rnd.rule_preset, "lucheng"), rnd.item


def roll_entries(round_id: int):
    from residents_app.rounds.models import RollEntry

    return db.session.execute(
        sa.select(RollEntry).where(RollEntry.round_id == round_id).order_by(RollEntry.building_name,
                                                                             RollEntry.id)
    ).scalars().all()


def round_tally(rnd, now: datetime, live=None, *, named: bool = True) -> dict:
    """The stored result once closed (what was published), else the live tally (Tally.to_dict() shape).
    `live`: the round's compute_tally when the caller has it (tally_svc.compute_tallies); named=False: the
    buildings' rows without their names (a page that does not show them)."""
    from residents_app.rounds.models import RoundResult

    if rnd.status == "closed":
        result = db.session.get(RoundResult, rnd.id)
        if result is not None:
            return result.tally
    return outcomes.live_tally(rnd, live if live is not None else tally_svc.compute_tally(rnd.id, now, named=named))


def _hundredths(value) -> int:
    return th.to_hundredths(Decimal(str(value)))


def condition_rows(tally: dict) -> list[ConditionRow]:
    """Exact display of each condition: figure, bound with its minimum, and the margin either way."""
    unit = "户" if tally.get("counting_mode", "household") == "household" else "人"
    rows = []
    for c in tally["conditions"]:
        area = c["measure"] == "area"
        num, den = (int(x) for x in c["bound"].split("/"))
        value = _hundredths(c["value"]) if area else int(c["value"])
        denominator = _hundredths(c["denominator"]) if area else int(c["denominator"])
        result = th.ConditionResult(c["key"], c["label"], c["measure"], value, denominator, Fraction(num, den),
                                    c["strict"], c["met"], 0)
        minimum = th.minimum_value(result) if denominator > 0 else None
        if area:
            actual = f"{format_area(Decimal(value).scaleb(-2))} m²"
            share = _percent(value, denominator)
        else:
            actual = f"{value} {unit}"
            share = _percent(value, denominator)
        if share:
            actual += f"（{share}）"
        if c["met"]:
            surplus = value - (minimum or 0)
            if surplus == 0:
                margin = "恰好达到"
            else:
                margin = f"超出 {format_area(Decimal(surplus).scaleb(-2))} m²" if area else f"超出 {surplus} {unit}"
        else:
            need = _hundredths(c["margin"]) if area else int(c["margin"])
            margin = f"还差 {format_area(Decimal(need).scaleb(-2))} m²" if area else f"还差 {need} {unit}"
        rows.append(ConditionRow(name=c["label"], actual=actual, bound=c["required"], margin=margin, met=c["met"]))
    return rows


def choice_rows(choice: dict) -> list[ConditionRow]:
    """A choice's conditions: the turnout ones once (the same for every option), then option by option what its
    voters hold ("「自治」选择面积 > 参与面积的 1/2")."""
    rows: list[ConditionRow] = []
    for i, o in enumerate(choice["options"]):
        conds = {"conditions": o["conditions"], "counting_mode": choice["counting_mode"]}
        for c, r in zip(o["conditions"], condition_rows(conds), strict=True):
            if c["key"].startswith("turnout"):
                if i == 0:
                    rows.append(r)
                continue
            rows.append(ConditionRow(name=f"「{o['label']}」{r.name.replace('同意', '选择')}", actual=r.actual,
                                     bound=r.bound, margin=r.margin, met=r.met))
    return rows


def _percent(value: int, denominator: int) -> str:
    """Share with two decimals, truncated (never rounded up across a line): exact integer arithmetic."""
    if denominator <= 0:
        return ""
    basis_points = value * 10000 // denominator
    return f"{basis_points // 100}.{basis_points % 100:02d}%"


def chain_head(chain: int) -> AuditEvent | None:
    return db.session.execute(
        sa.select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq.desc()).limit(1)
    ).scalar_one_or_none()


def scope_text(rnd) -> str:
    if not rnd.scope_building_ids:
        return "全小区"
    from residents_app.registry.models import Building

    names = db.session.execute(
        sa.select(Building.name).where(Building.id.in_(rnd.scope_building_ids)).order_by(Building.name)).scalars()
    return "、".join(names)


def round_publicity(round_id: int):
    from residents_app.publicity.models import Publicity

    return db.session.execute(
        sa.select(Publicity).where(Publicity.subject_type == "round_result", Publicity.subject_id == round_id)
        .order_by(Publicity.id.desc()).limit(1)).scalar_one_or_none()


def publicity_text(round_id: int, latest: list | None = None) -> str:
    """`latest`: [the round's latest result publicity] or [] when the caller has read it."""
    pub = round_publicity(round_id) if latest is None else (latest[0] if latest else None)
    if pub is None:
        return "尚未公示"
    from residents_app.publicity.services import period_text

    return f"{pub.posted_on:%Y-%m-%d} 张贴；{period_text(pub)}，至 {pub.last_day:%Y-%m-%d} 24:00 止；{pub.status_label}"


def agreeing_labels(rnd) -> list[str]:
    """Unit numbers only: the stored list once closed, else from the counted ballots."""
    from residents_app.rounds import services as rounds_services

    return rounds_services.agreeing_unit_labels(rnd.id)


def ballot_counts(round_id: int) -> dict[str, int]:
    from residents_app.rounds.models import CHANNEL_LABELS, CurrentBallot

    rows = db.session.execute(
        sa.select(CurrentBallot.channel, sa.func.count()).where(CurrentBallot.round_id == round_id)
        .group_by(CurrentBallot.channel)).all()
    counts = dict(rows)
    return {CHANNEL_LABELS[c]: counts[c] for c in ("online", "paper", "proxy") if counts.get(c)}


def round_report_data(rnd, now: datetime, *, roll_households: int | None = None, desk: bool = False,
                      signoff_events: list | None = None, publicity=None) -> RoundReportData:
    """What the report shows. The desk (desk=True) passes what it has read already (the roll's length, the
    sign-offs, the round's result publicity, newest first) and leaves out what it does not show: the agreeing
    units, the ballots per channel, the street office, the chain's head (it shows its own chain check) and the
    buildings' names (the live tally's rows per building are not on the page)."""
    from residents_app.registry.models import Estate

    estate = db.session.get(Estate, rnd.estate_id)
    tally = round_tally(rnd, now, named=not desk)  # the desk does not show the buildings' rows
    figures = tally["figures"]
    rule_code, rule_item = rule_of(rnd)
    head = None if desk else chain_head(estate.id)
    hidden = rnd.results_hidden
    return RoundReportData(
        estate_name=estate.name,
        estate_code=estate.code,
        street_office_name="" if desk else estate.street_office.name,
        round_title=rnd.title,
        round_kind=rnd.kind_label,
        scope=scope_text(rnd),
        opens_at=rnd.opened_at or rnd.opens_at,
        closes_at=rnd.closed_at or rnd.closes_at,
        roll_frozen_at=rnd.opened_at,
        roll_households=len(roll_entries(rnd.id)) if roll_households is None else roll_households,
        roll_area=format_area(Decimal(figures["total_area"])),
        rule_code=rule_code,
        rule_item=rule_item,
        conditions=([] if hidden else choice_rows(tally["choice"]) if "choice" in tally
                    else [] if "survey" in tally else condition_rows(tally)),
        passed=(False if hidden else bool(tally["choice"]["decided"]) if "choice" in tally
                else bool(tally.get("passed"))),
        survey=tally.get("survey"),
        choice=None if hidden else tally.get("choice"),
        status_label=rnd.status_label if rnd.status == "closed" else f"{rnd.status_label}（中间结果，非最终结果）",
        agreeing_units=[] if hidden or rnd.is_survey or rnd.is_choice or desk else agreeing_labels(rnd),
        publicity=publicity_text(rnd.id) if publicity is None else publicity_text(rnd.id, publicity[:1]),
        generated_at=now,
        audit_head=(f"链 {head.chain} 第 {head.seq} 条（{format_local_dt(head.at)}），SHA-256 {head.hash}"
                    if head else "" if desk else "日志为空"),
        ballot_counts={} if desk else ballot_counts(rnd.id),
        signoff=signoff_text(rnd, signoff_events),
        results_hidden=hidden,
        turnout=turnout_text(tally),
        item_tally=tally_svc.item_tally(rnd.id) if rnd.item_menu and not hidden else None,
        final=rnd.status == "closed",
    )


def turnout_text(tally: dict) -> str:
    """Who has voted, of whom: all a round with hidden results shows before its close."""
    f = tally["figures"]
    unit = "户" if tally.get("counting_mode", "household") == "household" else "人"
    voted_area, total_area = _hundredths(f["voted_area"]), _hundredths(f["total_area"])
    count_share = _percent(int(f["voted_count"]), int(f["total_count"]))
    area_share = _percent(voted_area, total_area)
    voted_m2, total_m2 = (format_area(Decimal(a).scaleb(-2)) for a in (voted_area, total_area))
    return (f"已投 {f['voted_count']} {unit} / 共 {f['total_count']} {unit}"
            + (f"（{count_share}）" if count_share else "")
            + f"；已投面积 {voted_m2} m² / {total_m2} m²" + (f"（{area_share}）" if area_share else ""))


def signoff_text(rnd, events: list | None = None) -> str:
    from residents_app.oversight.services import DECISIONS, signoffs

    if events is None:
        events = signoffs(rnd.id, rnd.estate_id)
    if not events:
        return ""
    last = events[-1]
    from residents_app.auth.actors import actor_label

    who = actor_label(last.actor)
    comment = f"：{last.data['comment']}" if last.data.get("comment") else ""
    return f"{DECISIONS[last.data['decision']]}（{format_local_dt(last.at)}，{who}，审计日志第 {last.seq} 条）{comment}"
