"""Demo data of this feature, added to the demo estate by `flask demo load`: a current publicity of
the hardship list (困难群众名单) posted today, with one objection already answered. Loading twice
changes nothing."""

from __future__ import annotations

import sqlalchemy as sa

DEMO_TITLE = "示范小区困难群众名单公示"
DEMO_NOTICE = ("根据《鹿城区老旧小区改造实施办法》，经业委会入户核实，拟将下列住户列入困难群众名单，"
               "其改造出资由政府补助或减免。\n公示期内如有异议，请通过本户二维码提出，或书面向业委会反映。")


def _base_url() -> str:
    from flask import current_app, has_app_context

    base = current_app.config.get("PUBLIC_BASE_URL") if has_app_context() else ""
    return (base or "http://127.0.0.1:5000").rstrip("/")


def extend_demo(estate, now) -> list[str]:
    """Add this feature's demo data to the demo estate; return lines to print on the console."""
    from residents_app.core.calendar import beijing_date
    from residents_app.errors import DomainError
    from residents_app.extensions import db
    from residents_app.publicity import services
    from residents_app.publicity.models import Publicity
    from residents_app.registry.models import Unit

    board = f"{_base_url()}/p/{estate.code}"
    existing = db.session.execute(sa.select(Publicity).where(
        Publicity.estate_id == estate.id, Publicity.subject_type == "hardship_list")).scalars().first()
    if existing is None:
        try:
            pub = services.post_publicity(estate, subject_type="hardship_list", subject_id=estate.id,
                                          title=DEMO_TITLE, notice_text=DEMO_NOTICE, posted_on=beijing_date(now),
                                          working_days=5, actor="system:demo", now=now)
        except DomainError as exc:
            return [f"演示公示未创建：{exc.message}"]
        unit = db.session.execute(sa.select(Unit).where(Unit.estate_id == estate.id, Unit.is_hardship.is_(False))
                                  .order_by(Unit.id)).scalars().first()
        if unit is not None and unit.owners:
            obj = services.raise_objection(pub, unit=unit, owner=unit.owners[0], photo=None, now=now,
                                           text="我家老人常年卧病，也想申请困难补助，请问怎么办理？")
            services.mediate(obj, outcome="answered", notes="业委会电话联系业主，说明申请条件与材料。",
                             answer="请携带低保证或残疾证到社区办理认定，认定后列入下一批名单。",
                             actor="system:demo", now=now)
        existing = pub
    return [f"演示公示：{existing.title}（{services.period_text(existing)}）",
            f"公开公示栏（无需登录，可打印张贴二维码）：{board}"]
