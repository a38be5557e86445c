"""What the verification desk and the result report show about a round, gathered read-only.

Reads the rounds models (roll, ballots, stored result), the publicity of the result and the audit
chain. The tally itself comes from the threshold engine (core.thresholds), the same engine rounds uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import sqlalchemy as sa

from residents_app.audit.models import AuditEvent, AuditPending
from residents_app.core import thresholds as th
from residents_app.extensions import db
from residents_app.formatting import format_area, format_local_dt
from residents_app.oversight.report import ConditionRow, RoundReportData
from residents_app.rounds import outcomes
from residents_app.rounds import tally as tally_svc

LAST_HOUR = timedelta(hours=1)
BURST_WINDOW = timedelta(minutes=10)
BURST_MIN_BALLOTS = 3

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


def round_tally(rnd, now: datetime, live=None) -> dict:
    """The stored result once closed (what was published), else the live tally (Tally.to_dict() shape).
    `live`: the round's compute_tally when the caller has it (tally_svc.compute_tallies)."""
    from residents_app.rounds.models import RoundResult

    if rnd.status == "closed":
        result = db.session.get(RoundResult, rnd.id)
        if result is not None:
            return result.tally
    return outcomes.live_tally(rnd, live if live is not None else tally_svc.compute_tally(rnd.id, now))


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


def publicity_text(round_id: int) -> str:
    pub = round_publicity(round_id)
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


def round_report_data(rnd, now: datetime, *, roll_households: int | None = None, with_agreeing: bool = True,
                      signoff_events: list | None = None) -> RoundReportData:
    """What the report shows. The desk passes what it has read already (the roll's length, the sign-offs) and
    leaves out the agreeing units (it does not show them)."""
    from residents_app.registry.models import Estate

    estate = db.session.get(Estate, rnd.estate_id)
    tally = round_tally(rnd, now)
    figures = tally["figures"]
    rule_code, rule_item = rule_of(rnd)
    head = chain_head(estate.id)
    hidden = rnd.results_hidden
    return RoundReportData(
        estate_name=estate.name,
        estate_code=estate.code,
        street_office_name=estate.street_office.name,
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
        agreeing_units=[] if hidden or rnd.is_survey or rnd.is_choice or not with_agreeing else agreeing_labels(rnd),
        publicity=publicity_text(rnd.id),
        generated_at=now,
        audit_head=(f"链 {head.chain} 第 {head.seq} 条（{format_local_dt(head.at)}），SHA-256 {head.hash}"
                    if head else "日志为空"),
        ballot_counts=ballot_counts(rnd.id),
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


# ---- Flags for the verification desk ----------------------------------------------------------


@dataclass
class Flag:
    kind: str  # burst / paper_unconfirmed / proxy / late_change / owner_changed / backdated_publicity
    title: str
    detail: str
    unit_labels: list[str] = field(default_factory=list)


def _ballots(round_id: int):
    from residents_app.rounds.models import Ballot

    return db.session.execute(
        sa.select(Ballot).where(Ballot.round_id == round_id).order_by(Ballot.cast_at, Ballot.id)).scalars().all()


def ballot_client_keys(rnd, ballots) -> dict[int, str]:
    """ballot id -> a key for the device/address it came from, read from the ballot's audit entry.

    The rounds feature writes `ip_hash` / `ua_hash` (never the raw address) into an online ballot's
    `ballot.cast` entry (subject: the ballot); ballots whose entry has neither are left out. Entries still
    waiting for the sealer (audit_pending) count too: a flag must not wait for the chain.
    """
    by_id = {str(b.id): b.id for b in ballots}
    if not by_id:
        return {}
    keys = {}
    for model in (AuditEvent, AuditPending):
        rows = db.session.execute(
            sa.select(model.subject_id, model.data)
            .where(model.chain == rnd.estate_id, model.kind == "ballot.cast", model.subject_type == "ballot")
        ).all()
        for subject_id, data in rows:
            ballot_id = by_id.get(subject_id)
            if ballot_id is None or not isinstance(data, dict):
                continue
            key = data.get("ip_hash") or data.get("ua_hash")
            if key:
                keys[ballot_id] = str(key)
    return keys


def _owner_ids(round_id: int) -> dict[int, int]:
    """{owner id: the unit whose frozen roll entry names them} (in roll order: the last entry naming them wins)."""
    from residents_app.rounds.models import RollEntry

    rows = db.session.execute(
        sa.select(RollEntry.unit_id, RollEntry.owner_ids).where(RollEntry.round_id == round_id)
        .order_by(RollEntry.building_name, RollEntry.id)).all()
    return {oid: unit_id for unit_id, ids in rows for oid in (ids or [])}


def round_flags(rnd, label_of: dict[int, str] | None = None, ballots: list | None = None) -> list[Flag]:
    """The desk's flags. `label_of` ({unit id: roll label}, in roll order) and `ballots` (in cast order) when the
    caller has them already (oversight/desk.py); else read here."""
    if label_of is None:
        label_of = {e.unit_id: e.label for e in roll_entries(rnd.id)}
    if ballots is None:
        ballots = _ballots(rnd.id)
    flags: list[Flag] = []

    # 1. Many ballots from one device or address within a short time.
    keys = ballot_client_keys(rnd, ballots)
    by_key: dict[str, list] = {}
    for b in ballots:
        if b.channel == "online" and b.id in keys:
            by_key.setdefault(keys[b.id], []).append(b)
    for key, group in by_key.items():
        group.sort(key=lambda b: b.cast_at)
        start = 0
        worst: list = []
        for end in range(len(group)):
            while group[end].cast_at - group[start].cast_at > BURST_WINDOW:
                start += 1
            window = group[start:end + 1]
            if len({b.unit_id for b in window}) > len({b.unit_id for b in worst}):
                worst = window
        units = sorted({label_of.get(b.unit_id, str(b.unit_id)) for b in worst})
        if len(units) >= BURST_MIN_BALLOTS:
            flags.append(Flag("burst", "同一设备/网络短时间内多户投票",
                              f"{len(units)} 户在 {int(BURST_WINDOW.total_seconds() // 60)} 分钟内从同一来源"
                              f"（{key[:8]}…）投票：{format_local_dt(worst[0].cast_at)} 至 "
                              f"{format_local_dt(worst[-1].cast_at)}", units))

    # 2. Paper ballots not confirmed by a second person.
    unconfirmed = [b for b in ballots if b.channel == "paper" and b.status != "rejected"
                   and (b.confirmed_by_id is None or b.confirmed_by_id == b.entered_by_id)]
    if unconfirmed:
        flags.append(Flag("paper_unconfirmed", "纸质票未经第二人确认",
                          f"{len(unconfirmed)} 张纸质票尚无第二名业委会成员确认",
                          sorted({label_of.get(b.unit_id, str(b.unit_id)) for b in unconfirmed})))

    # 2b. Proxy ballots: each one is named (its written mandate is to be checked), with those a second member has
    # not confirmed (they do not count) and those in conflict with the owner's own ballot.
    proxies = [b for b in ballots if b.channel == "proxy" and b.status in ("counted", "pending", "conflict")]
    if proxies:
        parts = [f"{len(proxies)} 张委托代理票，请核对书面委托书"]
        unconfirmed = [b for b in proxies if b.status == "counted"
                       and (b.confirmed_by_id is None or b.confirmed_by_id == b.entered_by_id)]
        pending = [b for b in proxies if b.status == "pending"]
        conflict = [b for b in proxies if b.status == "conflict"]
        for group, text in ((unconfirmed, "张未经第二名业委会成员确认即已计入"),
                            (pending, "张尚无第二名业委会成员确认（不计入）"),
                            (conflict, "张与业主本人的投票冲突，待处理（不计入）")):
            if group:
                parts.append(f"{len(group)} {text}")
        flags.append(Flag("proxy", "委托代理投票", "；".join(parts),
                          sorted({label_of.get(b.unit_id, str(b.unit_id)) for b in proxies})))

    # 3. Changes in the last hour before the close.
    closes = rnd.closed_at or rnd.closes_at
    seen: set[int] = set()
    late = []
    for b in ballots:
        if b.unit_id in seen and closes - LAST_HOUR <= b.cast_at <= closes:
            late.append(b)
        seen.add(b.unit_id)
    if late:
        flags.append(Flag("late_change", "截止前一小时内改票",
                          f"{len(late)} 次改票发生在 {format_local_dt(closes - LAST_HOUR)} 至 "
                          f"{format_local_dt(closes)} 之间",
                          sorted({label_of.get(b.unit_id, str(b.unit_id)) for b in late})))

    # 4. Units whose owners changed after the roll froze.
    if rnd.opened_at is not None:
        events = db.session.execute(
            sa.select(AuditEvent).where(AuditEvent.chain == rnd.estate_id,
                                        AuditEvent.kind.in_(("register.change", "register.import")),
                                        AuditEvent.at > rnd.opened_at).order_by(AuditEvent.seq)).scalars().all()
        changed: dict[int, list[str]] = {}
        unit_of_label = {label: unit_id for unit_id, label in label_of.items()}
        owner_ids = _owner_ids(rnd.id) if any(ev.subject_type == "owner" for ev in events) else {}
        for ev in events:
            if ev.kind == "register.import":
                # The import lists "1幢-101 张三" per ownership added or removed.
                for key, what in (("ownerships_added", "导入名册新增业主"), ("ownerships_removed", "导入名册移除业主")):
                    for item in (ev.data or {}).get(key, []):
                        unit_id = unit_of_label.get(str(item).split(" ")[0])
                        if unit_id is not None:
                            changed.setdefault(unit_id, []).append(f"{format_local_dt(ev.at)} {what}")
                continue
            action = (ev.data or {}).get("action", "")
            if ev.subject_type == "unit" and action in ("owner_added", "owner_removed") \
                    and ev.subject_id.isdigit() and int(ev.subject_id) in label_of:
                changed.setdefault(int(ev.subject_id), []).append(f"{format_local_dt(ev.at)} {_ACTION[action]}")
            elif ev.subject_type == "owner" and ev.subject_id.isdigit() and int(ev.subject_id) in owner_ids:
                changed.setdefault(owner_ids[int(ev.subject_id)], []).append(
                    f"{format_local_dt(ev.at)} {_ACTION.get(action, '业主信息变更')}")
        if changed:
            flags.append(Flag("owner_changed", "名册冻结后业主发生变更",
                              "；".join(f"{label_of[u]}：{'、'.join(v)}" for u, v in sorted(
                                  changed.items(), key=lambda kv: label_of[kv[0]])),
                              sorted(label_of[u] for u in changed)))
    flags.extend(backdated_publicity_flags(rnd))
    return flags


def backdated_publicity_flags(rnd) -> list[Flag]:
    """5. Result publicity entered after the day it says it was posted (补录), or posted before the result existed."""
    from residents_app.core.calendar import beijing_date
    from residents_app.publicity.models import Publicity

    pubs = db.session.execute(
        sa.select(Publicity).where(Publicity.subject_type == "round_result", Publicity.subject_id == rnd.id)
        .order_by(Publicity.id)).scalars().all()
    result_day = beijing_date(rnd.closed_at) if rnd.closed_at else None
    lines = []
    for p in pubs:
        early = result_day is not None and p.posted_on < result_day
        if p.is_backdated or early:
            line = (f"公示「{p.title}」张贴日期 {p.posted_on.isoformat()}，{format_local_dt(p.created_at)} 录入"
                    f"，补录理由：{p.backdate_reason or '未填写'}")
            if early:
                line += f"；早于表决结果产生之日 {result_day.isoformat()}"
            lines.append(line)
    if not lines:
        return []
    return [Flag("backdated_publicity", "结果公示补录（张贴日期早于录入日期）", "；".join(lines))]


_ACTION = {"owner_added": "新增业主", "owner_removed": "移除业主", "owner_updated": "业主信息变更"}
