"""Which rule a matter takes (DOMAIN.md, "Which rule a matter takes"): pure, no Flask, no SQLAlchemy.

A round's kind fixes the matter it decides, and with it the Civil Code art. 278 para. 1 item:

- willingness and plan vote: renovation = item 7 (改建、重建建筑物及其附属设施); the Lucheng double 2/3 rule
  (the renovation policy's own rule) or the art. 278 major rule;
- management mode: item 4 (选聘和解聘物业服务企业或者其他管理人), the ordinary rule;
- a general question: the committee names the item (1-9) and that item's rule applies;
- satisfaction / evaluation: a survey, not a decision: no rule at all.

"The committee cannot pick a weaker one": for the ordinary items a stronger rule is allowed (the major rule and
the Lucheng rule both imply the ordinary one: Lucheng's agree >= 2/3 of the total gives turnout >= 2/3 and
agree >= 2/3 > 1/2 of the voters); the major items 6 and 8 take the major rule only (Lucheng can pass with
2/3 of the voters, below 3/4); item 7 takes Lucheng or major (neither implies the other, both are what the
renovation policies and the Civil Code ask for).
"""

from __future__ import annotations

from residents_app.core.thresholds import PRESETS

LUCHENG = "lucheng_double_two_thirds"
MAJOR = "civil_code_278_major"
ORDINARY = "civil_code_278_ordinary"

ARTICLE = "《民法典》第二百七十八条第一款"
ITEM_NUMERALS = {1: "一", 2: "二", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八", 9: "九"}
ITEM_TEXT = {
    1: "制定和修改业主大会议事规则",
    2: "制定和修改管理规约",
    3: "选举业主委员会或者更换业主委员会成员",
    4: "选聘和解聘物业服务企业或者其他管理人",
    5: "使用建筑物及其附属设施的维修资金",
    6: "筹集建筑物及其附属设施的维修资金",
    7: "改建、重建建筑物及其附属设施",
    8: "改变共有部分的用途或者利用共有部分从事经营活动",
    9: "有关共有和共同管理权利的其他重大事项",
}
MAJOR_ITEMS = (6, 7, 8)

# The matter a kind decides by itself (a general question names its item; a survey has none).
KIND_ITEM = {"willingness": 7, "plan_vote": 7, "management_mode": 4}
KIND_MATTER = {"willingness": "改造意愿征求", "plan_vote": "改造方案表决", "management_mode": "改造后管理模式表决",
               "general": "该事项"}
SURVEY_KINDS = ("satisfaction",)
CHOICE_KINDS = ("management_mode",)

PRESET_NAMES = {key: preset.label for key, preset in PRESETS.items()}


def is_survey(kind: str) -> bool:
    return kind in SURVEY_KINDS


def is_choice(kind: str) -> bool:
    return kind in CHOICE_KINDS


def matter_item(kind: str, named_item: int | None) -> int | None:
    """The art. 278 item a round of this kind decides (None: a survey, or a general question not named yet)."""
    if kind in KIND_ITEM:
        return KIND_ITEM[kind]
    if kind == "general":
        return named_item
    return None


def allowed_presets(item: int) -> tuple[str, ...]:
    if item == 7:
        return (LUCHENG, MAJOR)
    if item in MAJOR_ITEMS:
        return (MAJOR,)
    return (ORDINARY, MAJOR, LUCHENG)


def default_preset(item: int | None) -> str:
    """The rule a matter takes when the committee does not pick one."""
    if item is None or item == 7:
        return LUCHENG
    return MAJOR if item in MAJOR_ITEMS else ORDINARY


def item_citation(item: int) -> str:
    """"《民法典》第二百七十八条第一款第（七）项"."""
    return f"{ARTICLE}第（{ITEM_NUMERALS[item]}）项"


def item_line(item: int) -> str:
    """"《民法典》第二百七十八条第一款第（七）项（改建、重建建筑物及其附属设施）"."""
    return f"{item_citation(item)}（{ITEM_TEXT[item]}）"


def rule_kind_text(item: int) -> str:
    if item in MAJOR_ITEMS:
        return "属于第六项至第八项事项，须经参与表决专有部分面积四分之三以上且参与表决人数四分之三以上的业主同意"
    return "属于第六项至第八项以外的事项，须经参与表决专有部分面积过半数且参与表决人数过半数的业主同意"


def rule_refusal(kind: str, item: int, preset: str) -> str | None:
    """Why `preset` may not decide this matter (None when it may)."""
    allowed = allowed_presets(item)
    if preset in allowed:
        return None
    names = "或".join(f"“{PRESET_NAMES[p]}”" for p in allowed)
    matter = KIND_MATTER.get(kind, "该事项")
    return (f"{matter}属于{item_citation(item)}事项（{ITEM_TEXT[item]}），须采用{names}，"
            f"不能采用较弱的“{PRESET_NAMES.get(preset, preset)}”")
