"""Rounds (征求 / 表决), frozen rolls, ballots (online, paper, proxy), stored results.

The lifecycle lives on `Round`: draft -> open -> closed. Every cast is kept in `Ballot`; the one
that counts for a unit is pointed to by `CurrentBallot` (one row per round and unit, upserted under
the row lock), which is also what the tally aggregates in SQL.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from residents_app.auth.models import IdentityFailure  # noqa: F401  (moved to auth: counted per client there)
from residents_app.core import choices, matters
from residents_app.db import Hundredths, UTCDateTime, utcnow
from residents_app.errors import Conflict
from residents_app.extensions import db

ROUND_KINDS = ("willingness", "plan_vote", "management_mode", "general", "satisfaction")
ROUND_KIND_LABELS = {
    "willingness": "改造意愿征求（改不改）",
    "plan_vote": "改造方案表决（怎么改）",
    "management_mode": "改造后管理模式表决",
    "general": "一般事项表决",
    "satisfaction": "改造满意度评价",
}
ROUND_STATUSES = ("draft", "open", "closed")
ROUND_STATUS_LABELS = {"draft": "草稿", "open": "投票中", "closed": "已结束"}
RESULT_VISIBILITY = ("live", "hidden")
CHANNELS = ("online", "paper", "proxy")
CHANNEL_LABELS = {"online": "线上", "paper": "纸质", "proxy": "委托代理"}
# Ballot.status: counted (the current one of its unit), superseded (a later one counts),
# pending (paper or proxy, waiting for a second member), conflict (paper vs online, or proxy vs the owner's own
# ballot, waiting for a decision), rejected (the losing side of a resolved conflict).
BALLOT_STATUSES = ("counted", "superseded", "pending", "conflict", "rejected")
BALLOT_STATUS_LABELS = {"counted": "已计入", "superseded": "已被后来的投票替代", "pending": "待第二人确认",
                        "conflict": "线上与纸质冲突，待处理", "rejected": "未计入"}
PROXY_CONFLICT_LABEL = "委托代理票与业主本人的投票冲突，待处理"

# Options per kind: (key, label). "agree" is what the double-2/3 rule counts.
DEFAULT_OPTIONS = {
    "willingness": [("agree", "同意改造"), ("disagree", "不同意改造"), ("abstain", "弃权")],
    "plan_vote": [("agree", "同意该方案"), ("disagree", "不同意该方案"), ("abstain", "弃权")],
    # A choice, not agree/disagree (the committee may edit the list: core.choices.option_keys).
    "management_mode": [*choices.DEFAULT_MODES, (choices.ABSTAIN, "弃权")],
    "general": [("agree", "同意"), ("disagree", "不同意"), ("abstain", "弃权")],
    "satisfaction": [("agree", "满意"), ("disagree", "不满意"), ("abstain", "说不清")],
}


class Round(db.Model):
    __tablename__ = "round"
    __table_args__ = (
        sa.CheckConstraint("status in ('draft', 'open', 'closed')", name="status_known"),
        sa.CheckConstraint("results_visibility in ('live', 'hidden')", name="visibility_known"),
        sa.CheckConstraint("closes_at > opens_at", name="window_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    rule_preset: Mapped[str] = mapped_column(sa.String(40), default="lucheng_double_two_thirds")
    counting_mode: Mapped[str] = mapped_column(sa.String(20), default="household")
    # A general question: the Civil Code art. 278 para. 1 item (1-9) the committee named; other kinds
    # take theirs from the kind (core.matters.matter_item).
    matter_item: Mapped[int | None] = mapped_column(sa.Integer)
    # Empty list = the whole estate.
    scope_building_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    # [{"key": "agree", "label": "同意改造"}, ...]
    options: Mapped[list] = mapped_column(sa.JSON, default=list)
    # Willingness only: [{"key": "roof", "label": "屋面防水", "category": "基础"}, ...]
    item_menu: Mapped[list] = mapped_column(sa.JSON, default=list)
    plan_version_id: Mapped[int | None] = mapped_column(sa.Integer, sa.ForeignKey("plan_version.id"))
    results_visibility: Mapped[str] = mapped_column(sa.String(10), default="live")
    status: Mapped[str] = mapped_column(sa.String(10), default="draft", index=True)
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    extensions: Mapped[list[RoundExtension]] = relationship(
        back_populates="round", order_by="RoundExtension.id", cascade="all, delete-orphan")

    @property
    def kind_label(self) -> str:
        return ROUND_KIND_LABELS.get(self.kind, self.kind)

    @property
    def status_label(self) -> str:
        return ROUND_STATUS_LABELS.get(self.status, self.status)

    @property
    def results_hidden(self) -> bool:
        """Results hidden until the close: nobody sees choices or agree figures yet, only turnout."""
        return self.results_visibility == "hidden" and self.status != "closed"

    @property
    def item(self) -> int | None:
        """The art. 278 item this round decides (None for a survey)."""
        return matters.matter_item(self.kind, self.matter_item)

    @property
    def is_survey(self) -> bool:
        return matters.is_survey(self.kind)

    @property
    def is_choice(self) -> bool:
        return matters.is_choice(self.kind)

    @property
    def option_labels(self) -> dict[str, str]:
        return {o["key"]: o["label"] for o in self.options or []}

    def accepts_ballots_at(self, now: datetime) -> bool:
        """The server's own clock decides, whether or not the opening/closing job has run."""
        return self.status == "open" and self.opens_at <= now < self.closes_at

    def why_not_open(self, now: datetime) -> list[str]:
        reasons = []
        if self.status != "draft":
            reasons.append(f"该表决当前状态为“{self.status_label}”，只有草稿可以开启")
        if now >= self.closes_at:
            reasons.append("截止时间已过，请先修改截止时间")
        if not self.options:
            reasons.append("尚未设置选项")
        return reasons

    def mark_open(self, now: datetime) -> None:
        reasons = self.why_not_open(now)
        if reasons:
            raise Conflict("；".join(reasons), code="round_cannot_open")
        self.status = "open"
        self.opened_at = now

    def mark_closed(self, now: datetime) -> None:
        if self.status != "open":
            raise Conflict(f"该表决当前状态为“{self.status_label}”，只有投票中的表决可以结束",
                           code="round_cannot_close")
        self.status = "closed"
        self.closed_at = now

    def ensure_editable(self) -> None:
        if self.status != "draft":
            raise Conflict("表决开启后，选项、规则和范围都不能再修改", code="round_not_editable")

    def extend_to(self, new_closes_at: datetime, reason: str, now: datetime, user_id: int | None) -> RoundExtension:
        if self.status == "closed":
            raise Conflict("表决已结束，不能再延长", code="round_closed")
        # The server's clock decides, whatever the stored status: once the deadline has passed the round is
        # over (the closing job may simply not have run yet), and reopening it would let votes in after the fact.
        if now >= self.closes_at:
            raise Conflict("截止时间已过，表决已经结束，不能再延长", code="deadline_passed")
        if new_closes_at <= self.closes_at:
            raise Conflict("截止时间只能延后，不能提前", code="close_only_later")
        if new_closes_at <= now:
            raise Conflict("新的截止时间必须晚于当前时间", code="close_in_past")
        if not reason.strip():
            raise Conflict("延长截止时间必须填写理由", code="reason_required")
        ext = RoundExtension(round_id=self.id, old_closes_at=self.closes_at, new_closes_at=new_closes_at,
                             reason=reason.strip(), at=now, user_id=user_id)
        self.extensions.append(ext)
        self.closes_at = new_closes_at
        return ext


class RoundExtension(db.Model):
    """A recorded move of the closing time (only later, always with a reason)."""

    __tablename__ = "round_extension"
    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("round.id"), index=True)
    old_closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    new_closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(sa.String(500))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    round: Mapped[Round] = relationship(back_populates="extensions")


class RollEntry(db.Model):
    """One unit of the frozen roll (表决名册), copied from the register when the round opens."""

    __tablename__ = "roll_entry"
    __table_args__ = (sa.UniqueConstraint("round_id", "unit_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("round.id"), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"))
    building_id: Mapped[int] = mapped_column(sa.ForeignKey("building.id"))
    building_name: Mapped[str] = mapped_column(sa.String(40))
    unit_number: Mapped[str] = mapped_column(sa.String(40))
    label: Mapped[str] = mapped_column(sa.String(90))
    area_m2: Mapped[Decimal] = mapped_column(Hundredths)
    owner_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    owner_names: Mapped[list] = mapped_column(sa.JSON, default=list)
    # Person-counted rounds (法释〔2009〕7号 art. 9): the person this unit counts under, frozen with the roll and
    # named by the smallest unit id among the units with the identical owner set (an ownerless unit: its own id).
    # None in household-counted rounds. The person's counters are RoundPerson (rounds/person_counters.py).
    person_unit_id: Mapped[int | None] = mapped_column(sa.Integer)


class RoundFile(db.Model):
    """An uploaded scan of a paper ballot or a proxy mandate (type sniffed, size limited)."""

    __tablename__ = "round_file"
    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("round.id"), index=True)
    purpose: Mapped[str] = mapped_column(sa.String(20))  # paper_scan / mandate
    mime: Mapped[str] = mapped_column(sa.String(40))
    size_bytes: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    data: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProxyMandate(db.Model):
    """A written mandate: an owner of a unit lets a named person vote for that unit in a round."""

    __tablename__ = "proxy_mandate"
    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("round.id"), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"))
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("owner.id"))
    proxy_name: Mapped[str] = mapped_column(sa.String(60))
    proxy_phone: Mapped[str] = mapped_column(sa.String(20), default="")
    evidence_file_id: Mapped[int] = mapped_column(sa.ForeignKey("round_file.id"))
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BallotLabels:
    """The Chinese labels of a ballot's channel and status (for Ballot and the desk's plain rows)."""

    __slots__ = ()

    @property
    def channel_label(self) -> str:
        return CHANNEL_LABELS.get(self.channel, self.channel)

    @property
    def status_label(self) -> str:
        if self.status == "conflict" and self.channel == "proxy":
            return PROXY_CONFLICT_LABEL
        return BALLOT_STATUS_LABELS.get(self.status, self.status)


class Ballot(BallotLabels, db.Model):
    """Every cast, kept forever. Which one counts is in CurrentBallot (and in `status`)."""

    __tablename__ = "ballot"
    # (round_id, id): a round's ballots newest first (the round page's latest ballots) without walking the
    # primary key through every other round's ballots.
    __table_args__ = (sa.Index("ix_ballot_round_unit", "round_id", "unit_id"),
                      sa.Index("ix_ballot_round_id_id", "round_id", "id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("round.id"))
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"))
    choice: Mapped[str] = mapped_column(sa.String(20))
    items: Mapped[list] = mapped_column(sa.JSON, default=list)  # willingness: ticked menu keys
    rating: Mapped[int | None] = mapped_column(sa.Integer)  # satisfaction: 1..5
    comment: Mapped[str] = mapped_column(sa.String(500), default="")
    channel: Mapped[str] = mapped_column(sa.String(10))
    status: Mapped[str] = mapped_column(sa.String(12))
    cast_by_owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("owner.id"))
    entered_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    confirmed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scan_file_id: Mapped[int | None] = mapped_column(sa.ForeignKey("round_file.id"))
    mandate_id: Mapped[int | None] = mapped_column(sa.ForeignKey("proxy_mandate.id"))
    proxy_name: Mapped[str] = mapped_column(sa.String(60), default="")
    resolution_reason: Mapped[str] = mapped_column(sa.String(500), default="")
    cast_at: Mapped[datetime] = mapped_column(UTCDateTime)
    receipt_code: Mapped[str | None] = mapped_column(sa.String(20), unique=True)



class CurrentBallot(db.Model):
    """The counted ballot of a unit in a round: exactly one row, upserted (last cast wins)."""

    __tablename__ = "current_ballot"
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("round.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"), primary_key=True)
    ballot_id: Mapped[int] = mapped_column(sa.ForeignKey("ballot.id"))
    choice: Mapped[str] = mapped_column(sa.String(20))
    channel: Mapped[str] = mapped_column(sa.String(10))
    cast_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The choice this row held before its last upsert (None after the first): set by the upsert itself
    # (`previous_choice = current_ballot.choice`), so the counters move one unit from it to `choice` in the same
    # statement or transaction, even when two casts of one unit race (the upsert sees the winner's row).
    previous_choice: Mapped[str | None] = mapped_column(sa.String(20))


class RoundCount(db.Model):
    """Stored counters of a round: per building and choice, the units and their area (hundredths).

    `choice = ''` is the frozen roll itself (written when the roll is frozen); every other row is the number of
    units whose counted ballot has that choice, moved in the cast's own transaction (rounds/counters.py).
    `flask rounds recount` rebuilds them from current_ballot and the roll and reports any difference.
    """

    __tablename__ = "round_count"
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("round.id"), primary_key=True)
    building_id: Mapped[int] = mapped_column(sa.ForeignKey("building.id"), primary_key=True)
    choice: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    # unit id mod counters.SLOTS: concurrent casts of one building and choice update different rows (one row
    # would make their commits wait for each other); readers sum over the slots.
    slot: Mapped[int] = mapped_column(sa.Integer, primary_key=True, default=0, autoincrement=False)
    units: Mapped[int] = mapped_column(sa.Integer, default=0)
    area_m2: Mapped[Decimal] = mapped_column(Hundredths, default=Decimal("0"))


class RoundPerson(db.Model):
    """A person of a person-counted round (rounds/person_counters.py): their units in the roll, how many of them
    have a counted ballot, how many agree. Written when the roll is frozen, moved in the cast's own transaction.
    The person has participated when voted > 0, agrees when agreeing = units, could still agree when
    voted = agreeing (no unit voted other than agree)."""

    __tablename__ = "round_person"
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("round.id"), primary_key=True)
    person_unit_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    units: Mapped[int] = mapped_column(sa.Integer)
    voted: Mapped[int] = mapped_column(sa.Integer, default=0)
    agreeing: Mapped[int] = mapped_column(sa.Integer, default=0)


class RoundPersonCount(db.Model):
    """The person totals of a person-counted round, summed over slots: persons (written at the freeze, slot 0),
    participated, agree, potential (would agree if every unit without a ballot agreed). A cast adds its person's
    transition to the slot of its unit (counters.slot_of), so concurrent casts update different rows."""

    __tablename__ = "round_person_count"
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("round.id"), primary_key=True)
    slot: Mapped[int] = mapped_column(sa.Integer, primary_key=True, default=0, autoincrement=False)
    persons: Mapped[int] = mapped_column(sa.Integer, default=0)
    participated: Mapped[int] = mapped_column(sa.Integer, default=0)
    agree: Mapped[int] = mapped_column(sa.Integer, default=0)
    potential: Mapped[int] = mapped_column(sa.Integer, default=0)


class RoundResult(db.Model):
    """The tally stored at close: what other features (publicity, plans, audit) read."""

    __tablename__ = "round_result"
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("round.id"), primary_key=True)
    passed: Mapped[bool] = mapped_column()
    tally: Mapped[dict] = mapped_column(sa.JSON)
    agreeing_unit_labels: Mapped[list] = mapped_column(sa.JSON, default=list)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The recount of closed rounds from the log registers itself with `flask audit verify` (audit imports no feature).
# So does the check of the stored counters against a recount from the ballots.
from residents_app.rounds import counters, recount  # noqa: E402,F401
