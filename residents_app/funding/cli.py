"""`flask plans ...`: a street office's contribution rule from the command line."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from residents_app.db import utcnow
from residents_app.errors import DomainError

cli = AppGroup("plans", help="改造方案与资金：街道的居民出资比例和补助上限。")


@cli.command("rule")
@click.argument("street_code")
@click.option("--required", "required_pct", type=int, default=0, show_default=True, help="必选类居民出资 %")
@click.option("--basic", "basic_pct", type=int, default=10, show_default=True, help="基础类居民出资 %")
@click.option("--improvement", "improvement_pct", type=int, default=30, show_default=True, help="完善类居民出资 %")
@click.option("--upgrade", "upgrade_pct", type=int, default=70, show_default=True, help="提升类居民出资 %")
@click.option("--cap-yuan-per-m2", type=int, default=400, show_default=True, help="每平方米补助上限（元）")
def rule_cmd(street_code, required_pct, basic_pct, improvement_pct, upgrade_pct, cap_yuan_per_m2):
    """Set STREET_CODE's residents' percentages by category and the subsidy cap per m²."""
    from residents_app.extensions import db
    from residents_app.funding import services
    from residents_app.registry.models import StreetOffice

    office = db.session.execute(sa.select(StreetOffice).where(StreetOffice.code == street_code)).scalar_one_or_none()
    if office is None:
        raise click.ClickException(f"找不到街道代码 {street_code}")
    pct = {"required": required_pct, "basic": basic_pct, "improvement": improvement_pct, "upgrade": upgrade_pct}
    try:
        services.set_contribution_rule(office.id, pct=pct, cap_fen_per_m2=cap_yuan_per_m2 * 100, user=None,
                                       now=utcnow())
    except DomainError as exc:
        db.session.rollback()
        details = "".join(f"\n  {k}：{'；'.join(v)}" for k, v in exc.errors.items())
        raise click.ClickException(f"{exc.message}{details}") from None
    db.session.commit()
    click.echo(f"{office.name}：必选 {required_pct}%，基础 {basic_pct}%，完善 {improvement_pct}%，提升 {upgrade_pct}%，"
               f"补助上限 {cap_yuan_per_m2} 元/m²")
