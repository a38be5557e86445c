"""The verification desk's flags: what the street office should look at before it signs off.

Each flag is selected in SQL, restricted to the round (issue 19): the desk reads only the ballots that raise a
flag, never the whole roll or every ballot of the round, and only this round's ballot entries of the chain.
The device keys behind several units' ballots and the ballots raising the other ballot flags (paper and proxy
ballots, late changes) come in one statement, the keys' ballots in a second one only when there is such a key; the
desk passes the register's changes and the result publicity it has read already, so that a round without a burst
costs that one statement whatever its size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from residents_app.audit.models import AuditEvent, AuditPending
from residents_app.extensions import db
from residents_app.formatting import format_local_dt
from residents_app.rounds.models import Ballot, RollEntry

LAST_HOUR = timedelta(hours=1)
BURST_WINDOW = timedelta(minutes=10)
BURST_MIN_BALLOTS = 3
PROXY_STATUSES = ("counted", "pending", "conflict")


@dataclass
class Flag:
    kind: str  # burst / paper_unconfirmed / proxy / late_change / owner_changed / backdated_publicity
    title: str
    detail: str
    unit_labels: list[str] = field(default_factory=list)


_ROUND = sa.bindparam("p_round_id", type_=sa.Integer)
_ESTATE = sa.bindparam("p_estate_id", type_=sa.Integer)
_STATEMENTS: dict[str, sa.Select] = {}


def _statement(name: str) -> sa.Select:
    """Built once (building a statement costs more than running it), the round and the estate bound per call."""
    if not _STATEMENTS:
        _STATEMENTS.update(keys_and_ballots=_keys_and_ballots_statement(), burst=_burst_statement(),
                           register=_register_statement())
    return _STATEMENTS[name]


def _params(rnd, **more) -> dict:
    return {"p_round_id": rnd.id, "p_estate_id": rnd.estate_id, **more}


def _label(unit_id):
    """The unit's roll label (a correlated lookup: the roll's unique (round, unit) index)."""
    return (sa.select(RollEntry.label).where(RollEntry.round_id == _ROUND, RollEntry.unit_id == unit_id)
            .scalar_subquery())


def round_flags(rnd, publicity: list | None = None, register_changes: list | None = None) -> list[Flag]:
    """`publicity` (the round's result publicity, result_publicity) and `register_changes` (the register's
    entries after the roll froze, REGISTER_KINDS, in seq order) when the caller has read them."""
    closes = rnd.closed_at or rnd.closes_at
    rows = db.session.execute(_statement("keys_and_ballots"),
                              _params(rnd, p_from=closes - LAST_HOUR, p_closes=closes)).all()
    flags = _burst_flags(rnd, [r[5] for r in rows if r[0] == _KEY])
    flags.extend(_ballot_flags([r for r in rows if r[0] == _FLAGGED], closes))
    flags.extend(_owner_changed_flags(rnd, register_changes))
    flags.extend(backdated_publicity_flags(rnd, publicity))
    return flags


_PUBLICITY: list[sa.Select] = []


def result_publicity(rnd) -> list:
    """The round's result publicity, newest first (the statement built once, the round bound per call)."""
    if not _PUBLICITY:
        from residents_app.publicity.models import Publicity

        _PUBLICITY.append(sa.select(Publicity).where(Publicity.subject_type == "round_result",
                                                     Publicity.subject_id == _ROUND).order_by(Publicity.id.desc()))
    return list(db.session.execute(_PUBLICITY[0], {"p_round_id": rnd.id}).scalars())


# The device keys behind several units' ballots (flag 1) and the ballots raising flags 2 and 3, in one statement:
# each row says which it is.
_KEY, _FLAGGED = 0, 1


def _keys_and_ballots_statement() -> sa.Select:
    """Rows of (which, ballot id, cast at, unit id, roll label, key, channel, status, unconfirmed, late): the hot
    keys (_hot_keys_select, which = _KEY, only the key set) in key order, then the flagged ballots
    (_ballots_select, which = _FLAGGED) in (cast at, id) order."""
    keys = _hot_keys_select().subquery()
    none = sa.null()
    # The ballots first: a union's columns take their types from its first select (cast at as a time).
    both = sa.union_all(
        _ballots_select(),
        sa.select(sa.literal(_KEY), none, none, none, none, keys.c.key, none, none, none, none)).subquery()
    return sa.select(*both.c).order_by(both.c.which, both.c.key, both.c.cast_at, both.c.id)


# ---- 1. Many ballots from one device or address within a short time ------------------------------------------

def _key(model):
    """The device/address key of a `ballot.cast` entry: `ip_hash`, else `ua_hash` (the rounds feature writes
    hashes, never the raw address)."""
    return sa.func.coalesce(sa.func.nullif(model.data["ip_hash"].as_string(), ""),
                            sa.func.nullif(model.data["ua_hash"].as_string(), ""))


def _entries(model):
    return (model.chain == _ESTATE, model.kind == "ballot.cast", model.subject_type == "ballot")


def _hot_keys_select() -> sa.Select:
    """The keys under which the round's ballot entries name at least BURST_MIN_BALLOTS units: read from the
    chain's entries of this round alone (their round and unit), without touching the ballots. Entries still
    waiting for the sealer (audit_pending) count too: a flag must not wait for the chain."""
    # A text search for the keys' names first: parsing every entry's JSON costs more than the search, and most
    # entries have neither key (ballots entered by the committee, casts without a client fingerprint).
    parts = [sa.select(_key(m).label("key"), m.data["unit_id"].as_integer().label("unit_id"))
             .where(*_entries(m), sa.cast(m.data, sa.Text).contains('_hash"', autoescape=True),
                    m.data["round_id"].as_integer() == _ROUND) for m in (AuditEvent, AuditPending)]
    keyed = sa.union_all(*parts).subquery()
    return (sa.select(keyed.c.key).where(keyed.c.key.is_not(None)).group_by(keyed.c.key)
            .having(sa.func.count(sa.distinct(keyed.c.unit_id)) >= BURST_MIN_BALLOTS))


def _burst_statement() -> sa.Select:
    """The round's online ballots behind the given keys, with their cast time and roll label."""
    keys = sa.bindparam("p_keys", expanding=True)
    parts = [sa.select(Ballot.id, Ballot.unit_id, Ballot.cast_at, _key(m).label("key"), sa.literal(n).label("src"))
             .join(m, sa.and_(m.subject_id == sa.cast(Ballot.id, sa.String), *_entries(m)))
             .where(Ballot.round_id == _ROUND, Ballot.channel == "online", _key(m).in_(keys))
             for n, m in enumerate((AuditEvent, AuditPending))]
    keyed = sa.union_all(*parts).subquery()
    return (sa.select(keyed.c.id, keyed.c.unit_id, keyed.c.cast_at, keyed.c.key, _label(keyed.c.unit_id))
            .order_by(keyed.c.cast_at, keyed.c.id, keyed.c.src))


def _burst_flags(rnd, hot: list[str]) -> list[Flag]:
    """hot: the keys behind several units' ballots (_hot_keys_select); their ballots are read only then."""
    if not hot:  # the usual case: no device or address behind several units' ballots
        return []
    rows = db.session.execute(_statement("burst"), _params(rnd, p_keys=hot)).all()
    keys: dict[int, tuple] = {}
    for row in rows:  # a ballot's pending entry (read last) wins over a sealed one
        keys[row[0]] = row
    by_key: dict[str, list] = {}
    for row in keys.values():
        by_key.setdefault(row[3], []).append(row)
    flags = []
    for key, group in by_key.items():
        start = 0
        worst: list = []
        for end in range(len(group)):
            while group[end][2] - group[start][2] > BURST_WINDOW:
                start += 1
            window = group[start:end + 1]
            if len({r[1] for r in window}) > len({r[1] for r in worst}):
                worst = window
        units = sorted({r[4] or str(r[1]) for r in worst})
        if len(units) >= BURST_MIN_BALLOTS:
            flags.append(Flag("burst", "同一设备/网络短时间内多户投票",
                              f"{len(units)} 户在 {int(BURST_WINDOW.total_seconds() // 60)} 分钟内从同一来源"
                              f"（{key[:8]}…）投票：{format_local_dt(worst[0][2])} 至 "
                              f"{format_local_dt(worst[-1][2])}", units))
    return flags


# ---- 2. Paper and proxy ballots without a second person; 3. changes in the last hour ----------------------------

def _ballots_select() -> sa.Select:
    """The round's ballots that raise a flag: paper ballots without a second person, proxy ballots, and changes
    (a unit's ballot after an earlier one) cast in the last hour before the close (p_from to p_closes)."""
    when = Ballot.__table__.c.cast_at.type
    closes_from, closes = sa.bindparam("p_from", type_=when), sa.bindparam("p_closes", type_=when)
    earlier = aliased(Ballot)
    changed = sa.exists().where(earlier.round_id == Ballot.round_id, earlier.unit_id == Ballot.unit_id,
                                sa.or_(earlier.cast_at < Ballot.cast_at,
                                       sa.and_(earlier.cast_at == Ballot.cast_at, earlier.id < Ballot.id)))
    late = sa.and_(Ballot.cast_at >= closes_from, Ballot.cast_at <= closes, changed)
    unconfirmed = sa.or_(Ballot.confirmed_by_id.is_(None), Ballot.confirmed_by_id == Ballot.entered_by_id)
    return (sa.select(sa.literal(_FLAGGED).label("which"), Ballot.id, Ballot.cast_at, Ballot.unit_id,
                      _label(Ballot.unit_id).label("label"), sa.null().label("key"), Ballot.channel, Ballot.status,
                      sa.case((unconfirmed, 1), else_=0).label("unconfirmed"),
                      sa.case((late, 1), else_=0).label("late"))
            .where(Ballot.round_id == _ROUND,
                   sa.or_(sa.and_(Ballot.channel == "paper", Ballot.status != "rejected", unconfirmed),
                          sa.and_(Ballot.channel == "proxy", Ballot.status.in_(PROXY_STATUSES)), late)))


def _ballot_flags(rows: list, closes) -> list[Flag]:
    """rows: _keys_and_ballots_statement's ballot rows (unit id 3, label 4, channel 6, status 7, unconfirmed 8,
    late 9)."""
    def labels(group):
        return sorted({r[4] or str(r[3]) for r in group})

    flags = []
    paper = [r for r in rows if r[6] == "paper" and r[7] != "rejected" and r[8]]
    if paper:
        flags.append(Flag("paper_unconfirmed", "纸质票未经第二人确认",
                          f"{len(paper)} 张纸质票尚无第二名业委会成员确认", labels(paper)))
    # Proxy ballots: each one is named (its written mandate is to be checked), with those a second member has not
    # confirmed (they do not count) and those in conflict with the owner's own ballot.
    proxies = [r for r in rows if r[6] == "proxy" and r[7] in PROXY_STATUSES]
    if proxies:
        parts = [f"{len(proxies)} 张委托代理票，请核对书面委托书"]
        for group, text in (([r for r in proxies if r[7] == "counted" and r[8]], "张未经第二名业委会成员确认即已计入"),
                            ([r for r in proxies if r[7] == "pending"], "张尚无第二名业委会成员确认（不计入）"),
                            ([r for r in proxies if r[7] == "conflict"], "张与业主本人的投票冲突，待处理（不计入）")):
            if group:
                parts.append(f"{len(group)} {text}")
        flags.append(Flag("proxy", "委托代理投票", "；".join(parts), labels(proxies)))
    late_rows = [r for r in rows if r[9]]
    if late_rows:
        flags.append(Flag("late_change", "截止前一小时内改票",
                          f"{len(late_rows)} 次改票发生在 {format_local_dt(closes - LAST_HOUR)} 至 "
                          f"{format_local_dt(closes)} 之间", labels(late_rows)))
    return flags


# ---- 4. Units whose owners changed after the roll froze --------------------------------------------------------

_ACTION = {"owner_added": "新增业主", "owner_removed": "移除业主", "owner_updated": "业主信息变更"}


REGISTER_KINDS = ("register.change", "register.import")


def _register_statement() -> sa.Select:
    """The register's changes on the round's chain after the roll froze (p_opened)."""
    return (sa.select(AuditEvent.kind, AuditEvent.at, AuditEvent.subject_type, AuditEvent.subject_id, AuditEvent.data)
            .where(AuditEvent.chain == _ESTATE, AuditEvent.kind.in_(REGISTER_KINDS),
                   AuditEvent.at > sa.bindparam("p_opened", type_=AuditEvent.__table__.c.at.type))
            .order_by(AuditEvent.seq))


def _owner_changed_flags(rnd, events: list | None = None) -> list[Flag]:
    if rnd.opened_at is None:
        return []
    if events is None:
        events = db.session.execute(_statement("register"), _params(rnd, p_opened=rnd.opened_at)).all()
    if not events:
        return []
    # The roll (in its order: the last entry naming a label or an owner wins), read only when the register changed.
    roll = db.session.execute(
        sa.select(RollEntry.unit_id, RollEntry.label, RollEntry.owner_ids).where(RollEntry.round_id == rnd.id)
        .order_by(RollEntry.building_name, RollEntry.id)).all()
    label_of = {unit_id: label for unit_id, label, _ in roll}
    unit_of_label = {label: unit_id for unit_id, label, _ in roll}
    owner_ids = {oid: unit_id for unit_id, _, ids in roll for oid in (ids or [])}
    changed: dict[int, list[str]] = {}
    for ev in events:
        kind, at, subject_type, subject_id, data = ev.kind, ev.at, ev.subject_type, ev.subject_id, ev.data
        if kind == "register.import":
            # The import lists "1幢-101 张三" per ownership added or removed.
            for key, what in (("ownerships_added", "导入名册新增业主"), ("ownerships_removed", "导入名册移除业主")):
                for item in (data or {}).get(key, []):
                    unit_id = unit_of_label.get(str(item).split(" ")[0])
                    if unit_id is not None:
                        changed.setdefault(unit_id, []).append(f"{format_local_dt(at)} {what}")
            continue
        action = (data or {}).get("action", "")
        if subject_type == "unit" and action in ("owner_added", "owner_removed") \
                and subject_id.isdigit() and int(subject_id) in label_of:
            changed.setdefault(int(subject_id), []).append(f"{format_local_dt(at)} {_ACTION[action]}")
        elif subject_type == "owner" and subject_id.isdigit() and int(subject_id) in owner_ids:
            changed.setdefault(owner_ids[int(subject_id)], []).append(
                f"{format_local_dt(at)} {_ACTION.get(action, '业主信息变更')}")
    if not changed:
        return []
    return [Flag("owner_changed", "名册冻结后业主发生变更",
                 "；".join(f"{label_of[u]}：{'、'.join(v)}" for u, v in sorted(
                     changed.items(), key=lambda kv: label_of[kv[0]])),
                 sorted(label_of[u] for u in changed))]


# ---- 5. Result publicity entered after the day it says it was posted -------------------------------------------

def backdated_publicity_flags(rnd, publicity: list | None = None) -> list[Flag]:
    """Result publicity entered after the day it says it was posted (补录), or posted before the result existed."""
    from residents_app.core.calendar import beijing_date

    pubs = sorted(result_publicity(rnd) if publicity is None else publicity, key=lambda p: p.id)
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
