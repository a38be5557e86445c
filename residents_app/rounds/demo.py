"""Demo data of this feature, added to the demo estate by `flask demo load`.

An open willingness round (frozen roll, closes in 14 days) with about half of the units already
voted, so the tally is interesting; links issued for every unit. Tokens are stored hashed, so the
few demo links printed here are the only way in: on a second load the round is kept and only
those demo units get fresh links (printed again).
"""

from __future__ import annotations

import random
from datetime import timedelta

import sqlalchemy as sa

DEMO_TITLE = "示范小区老旧小区改造意愿征求"
DEMO_MENU = [
    {"key": "rain_sewage", "label": "雨污分流", "category": "必选"},
    {"key": "roof", "label": "屋面防水", "category": "基础"},
    {"key": "facade", "label": "外立面修缮", "category": "基础"},
    {"key": "parking", "label": "停车位规划", "category": "完善"},
    {"key": "lift", "label": "加装电梯", "category": "提升"},
]
DEMO_UNITS = ("2幢-101", "3幢-203", "4幢-305")  # left unvoted, their links are printed


def _base_url() -> str:
    from flask import current_app, has_app_context

    base = current_app.config.get("PUBLIC_BASE_URL") if has_app_context() else ""
    return (base or "http://127.0.0.1:5000").rstrip("/")


def extend_demo(estate, now) -> list[str]:
    """Add this feature's demo data to the demo estate; return lines to print on the console."""
    from residents_app.extensions import db
    from residents_app.registry.models import Building, Unit
    from residents_app.rounds import ballots
    from residents_app.rounds import links as links_svc
    from residents_app.rounds import services as svc
    from residents_app.rounds import tally as tally_svc
    from residents_app.rounds.models import Round

    rnd = db.session.execute(sa.select(Round).where(Round.estate_id == estate.id, Round.title == DEMO_TITLE)
                             ).scalar_one_or_none()
    units = list(db.session.execute(
        sa.select(Unit).join(Building, Building.id == Unit.building_id).where(Unit.estate_id == estate.id)
        .order_by(Building.name, Unit.number)).scalars())
    if not units:
        return ["演示表决：小区没有房屋，未创建"]
    lines = []
    if rnd is None:
        opened = now - timedelta(days=2)
        rnd = svc.create_round(estate.id, svc.RoundInput(
            kind="willingness", title=DEMO_TITLE, opens_at=opened, closes_at=now + timedelta(days=14),
            description="是否同意对本小区实施老旧小区改造？同意的，请勾选希望改造的项目。",
            item_menu=DEMO_MENU), opened, "system:demo")
        svc.open_round(rnd.id, opened, "system:demo")
        links_svc.issue_links(estate.id, opened, "system:demo")
        rng = random.Random(20261008)  # noqa: S311 - reproducible demo data
        for i, unit in enumerate(units):
            if unit.label in DEMO_UNITS or rng.random() > 0.55:
                continue
            r = rng.random()
            choice = "agree" if r < 0.8 else "disagree" if r < 0.92 else "abstain"
            items = [m["key"] for m in DEMO_MENU if rng.random() < 0.5] if choice == "agree" else []
            ballots.cast_ballot(rnd.id, unit.id, unit.ownerships[0].owner_id, choice,
                            opened + timedelta(minutes=17 * (i + 1)), items=items)
        t = tally_svc.compute_tally(rnd.id, now).to_dict()
        lines.append(f"演示表决“{DEMO_TITLE}”已开启（id {rnd.id}）：已投 {t['figures']['voted_count']} / "
                     f"{t['figures']['total_count']} 户，同意面积 {t['figures']['agree_area']} m²，"
                     f"还差 {t['margin_count']} 户 / {t['margin_area']} m²")
    else:
        lines.append(f"演示表决“{DEMO_TITLE}”已存在（id {rnd.id}），为演示房屋重新生成链接")
    base = _base_url()
    lines.append("演示投票链接（用手机打开，或在电脑浏览器打开；身份确认填写姓名和手机号后 4 位）：")
    by_label = {u.label: u for u in units}
    for label in DEMO_UNITS:
        unit = by_label.get(label)
        if unit is None or not unit.ownerships:
            continue
        token = links_svc.reissue_link(unit.id, now, "system:demo")
        owner = unit.ownerships[0].owner
        lines.append(f"  {label}  {base}/v/{token}  业主 {owner.name}  手机后4位 {owner.phone[-4:]}")
    return lines
