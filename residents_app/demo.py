"""Demo street office, estate and accounts (`flask demo load`). Loading twice changes nothing.

The register goes in through the real roster import, so the demo exercises the same path as a
committee's spreadsheet. The passwords are fixed and printed: demo only, never in production.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime
from decimal import Decimal

import click
import sqlalchemy as sa

OFFICE_CODE, OFFICE_NAME, DISTRICT = "WM", "鹿城区五马街道", "温州市鹿城区"
ESTATE_CODE, ESTATE_NAME, ESTATE_ADDRESS = "DEMO", "示范小区", "温州市鹿城区五马街道示范路 1 号"
DEMO_ACTOR = "system:demo"
# username, role, display name, password (demo only)
ACCOUNTS = (
    ("admin", "admin", "系统管理员", "demo-admin-2026"),
    ("street", "street", "五马街道 王科长", "demo-street-2026"),
    ("committee", "committee", "业委会 陈主任", "demo-committee-2026"),
    ("committee2", "committee", "业委会 林委员", "demo-committee2-2026"),
)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许邓冯韩曹曾彭潘蔡叶"
GIVEN = ("建华", "秀英", "志强", "丽娟", "国平", "美玲", "海涛", "玉兰", "德明", "春梅", "永红", "晓东",
         "金凤", "文斌", "桂芳", "伟", "静", "敏", "磊", "芳", "军", "霞", "勇", "燕")
HARDSHIP_UNITS = {("2幢", "102"), ("4幢", "201")}
SHOPS = {("1幢", "101"), ("1幢", "102"), ("1幢", "103"), ("4幢", "101")}
SECOND_UNIT = (("2幢", "301"), ("3幢", "402"))  # one owner, two units


def demo_roster_rows() -> list[list[str]]:
    """About 120 units in 4 buildings (5 floors x 6 units), deterministic, as roster rows."""
    rng = random.Random(20260901)  # noqa: S311 - reproducible demo data, not security
    rows = []
    phone_seq = iter(range(1, 10_000))
    shared_owner = None
    id_digits: dict[str, str] = {}
    for b in range(1, 5):
        building = f"{b}幢"
        for floor in range(1, 6):
            for n in range(1, 7):
                number = f"{floor}{n:02d}"
                key = (building, number)
                kind = "商铺" if key in SHOPS else "住宅"
                if kind == "商铺":
                    area = Decimal(rng.randint(6000, 9000)).scaleb(-2)
                else:
                    area = Decimal(rng.choice((6235, 7518, 8850, 9260, 10230, 11875, 13520))
                                   + rng.randint(-150, 150)).scaleb(-2)
                hardship = "是" if key in HARDSHIP_UNITS else "否"
                name = rng.choice(SURNAMES) + rng.choice(GIVEN)
                phone = f"138{next(phone_seq):08d}"
                if key == SECOND_UNIT[1] and shared_owner:
                    name, phone = shared_owner
                owners = [(name, phone)]
                if key == SECOND_UNIT[0]:
                    shared_owner = (name, phone)
                if (b * 30 + floor * 6 + n) % 9 == 0 and kind == "住宅":  # co-owned: spouse
                    owners.append((rng.choice(SURNAMES) + rng.choice(GIVEN), f"139{next(phone_seq):08d}"))
                for oname, ophone in owners:
                    digits = id_digits.setdefault(ophone, f"{rng.randint(0, 9999):04d}")
                    rows.append([building, number, str(area), kind, hardship, oname, ophone, digits])
    return rows


def demo_roster_csv() -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["楼栋", "房号", "产权面积", "类型", "困难户", "业主姓名", "手机号", "身份证后四位"])
    writer.writerows(demo_roster_rows())
    return buf.getvalue().encode("utf-8")


def load_demo(now: datetime) -> list[str]:
    """Create (or find) the demo office, estate, register and accounts; returns the lines to print."""
    from residents_app.auth.models import User
    from residents_app.auth.services import create_user
    from residents_app.extensions import db
    from residents_app.registry.models import Estate, StreetOffice
    from residents_app.registry.roster import import_roster
    from residents_app.registry.services import create_estate, create_street_office

    lines = []
    office = db.session.execute(sa.select(StreetOffice).where(StreetOffice.code == OFFICE_CODE)).scalar_one_or_none()
    if office is None:
        office = create_street_office(OFFICE_CODE, OFFICE_NAME, DISTRICT)
    estate = db.session.execute(sa.select(Estate).where(Estate.code == ESTATE_CODE)).scalar_one_or_none()
    if estate is None:
        estate = create_estate(ESTATE_CODE, ESTATE_NAME, OFFICE_CODE, ESTATE_ADDRESS, actor=DEMO_ACTOR, now=now)
    plan = import_roster(estate, "demo.csv", demo_roster_csv(), actor=DEMO_ACTOR, now=now)
    if plan.applied:
        lines.append(f"演示名册已导入：{plan.unit_count_in_file} 户，{plan.owner_rows_in_file} 条业主记录")
    else:
        lines.append("演示名册已存在，未改动")
    for username, role, display, password in ACCOUNTS:
        if db.session.execute(sa.select(User.id).where(User.username == username)).first() is None:
            create_user(username=username, password=password, role=role, display_name=display,
                        street_code=OFFICE_CODE if role == "street" else None,
                        estate_code=ESTATE_CODE if role == "committee" else None)
    db.session.flush()
    lines.append(f"演示街道 {OFFICE_NAME}（{OFFICE_CODE}），演示小区 {ESTATE_NAME}（{ESTATE_CODE}，id {estate.id}）")
    lines.append("演示账户（仅供演示，切勿用于生产环境）：")
    for username, _role, display, password in ACCOUNTS:
        lines.append(f"  {username:<11} 密码 {password:<22} {display}")

    from residents_app.funding.demo import extend_demo as plans_demo
    from residents_app.publicity.demo import extend_demo as publicity_demo
    from residents_app.rounds.demo import extend_demo as rounds_demo

    for extend in (rounds_demo, publicity_demo, plans_demo):
        lines.extend(extend(estate, now) or [])
    return lines


demo_cli = click.Group("demo", help="Demo data for a newcomer.")


@demo_cli.command("load")
def demo_load():
    """Load the demo street office, estate (about 120 units) and accounts; safe to run twice."""
    from residents_app.db import utcnow
    from residents_app.extensions import db

    lines = load_demo(utcnow())
    db.session.commit()
    for line in lines:
        click.echo(line)
    _print_first_link_as_qr(lines)


def _print_first_link_as_qr(lines: list[str]) -> None:
    """Scan this with a phone on the same network (set PUBLIC_BASE_URL to this machine's LAN address)."""
    import re

    from residents_app import qr

    for line in lines:
        match = re.search(r"(https?://\S+/v/\S+)", line)
        if match:
            click.echo("扫码投票（第一个演示链接）：")
            click.echo(qr.terminal(match.group(1)))
            return
