"""A choice among options (the management mode, art. 278 item 4): pure, exact, no Flask, no SQLAlchemy.

Each option is held against the round's rule as if it were "agree": its voters agree, every other ballot
(another option, abstaining) is a participant who does not agree, and units without a ballot did not take
part. The option that meets the rule is decided; none meets it: undecided (vote again). Under every preset an
option needs more than half of the participants (or 2/3 of the total), so at most one option can meet it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from residents_app.core import thresholds as th

ABSTAIN = "abstain"
OTHER = "other"  # a participant who did not choose the option at hand
DEFAULT_MODES = (("property_company", "物业服务企业"), ("quasi_property", "准物业"), ("self_managed", "自治"),
                 ("trust_property", "信托制物业"))
UNDECIDED_LABEL = "未决定"


@dataclass
class OptionTally:
    key: str
    label: str
    tally: th.Tally

    @property
    def meets_rule(self) -> bool:
        return self.tally.passed


@dataclass
class ChoiceTally:
    preset: str
    counting_mode: str
    options: list[OptionTally]
    decided: str | None

    @property
    def decided_label(self) -> str:
        return next((o.label for o in self.options if o.key == self.decided), UNDECIDED_LABEL)

    def to_dict(self) -> dict:
        out = []
        for o in self.options:
            t = o.tally.to_dict()
            f = t["figures"]
            out.append({"key": o.key, "label": o.label, "count": f["agree_count"], "area": f["agree_area"],
                        "meets_rule": o.meets_rule, "can_still_meet": t["can_still_pass"],
                        "margin_count": t["margin_count"], "margin_area": t["margin_area"],
                        "conditions": t["conditions"]})
        return {"preset": self.preset, "counting_mode": self.counting_mode, "decided": self.decided,
                "decided_label": self.decided_label, "options": out}


def option_ballots(ballots: Mapping[int, str], key: str) -> dict[int, str]:
    """The ballots as the threshold engine sees them for one option."""
    return {u: th.AGREE if c == key else OTHER for u, c in ballots.items()}


def choice_tally(entries: Iterable[th.RollEntry], ballots: Mapping[int, str], options: Sequence[tuple[str, str]],
                 preset_key: str, counting_mode: str = "household",
                 scope_building_ids: Iterable[int] | None = None) -> ChoiceTally:
    """Every option (abstaining excluded) against the rule; `decided` is the one option that meets it, or None."""
    entries = list(entries)
    scope = list(scope_building_ids or ())
    results = [OptionTally(key, label, th.tally(entries, option_ballots(ballots, key), preset_key, counting_mode,
                                                scope))
               for key, label in options if key != ABSTAIN]
    met = [o.key for o in results if o.meets_rule]
    return ChoiceTally(preset_key, counting_mode, results, met[0] if len(met) == 1 else None)


def option_keys(labels: Sequence[str]) -> list[dict]:
    """Option dicts from the labels the committee typed: the usual modes keep their fixed keys, others get
    "option1", "option2"... by position; abstaining is always offered last."""
    known = {label: key for key, label in DEFAULT_MODES}
    out, used = [], set()
    for i, label in enumerate(labels, start=1):
        key = known.get(label) or f"option{i}"
        if key in used:
            key = f"option{i}"
        used.add(key)
        out.append({"key": key, "label": label})
    out.append({"key": ABSTAIN, "label": "弃权"})
    return out
