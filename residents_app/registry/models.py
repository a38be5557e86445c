"""The register: street office -> estate -> building -> unit, owners, ownership, QR links."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from residents_app.db import Hundredths, UTCDateTime, utcnow
from residents_app.extensions import db
from residents_app.formatting import mask_phone

UNIT_KINDS = ("residential", "commercial")
UNIT_KIND_LABELS = {"residential": "住宅", "commercial": "商铺"}


class StreetOffice(db.Model):
    """街道: a district holding several estates."""

    __tablename__ = "street_office"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    district: Mapped[str] = mapped_column(sa.String(100), default="")
    estates: Mapped[list[Estate]] = relationship(back_populates="street_office")


class Estate(db.Model):
    """小区."""

    __tablename__ = "estate"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    address: Mapped[str] = mapped_column(sa.String(200), default="")
    street_office_id: Mapped[int] = mapped_column(sa.ForeignKey("street_office.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    street_office: Mapped[StreetOffice] = relationship(back_populates="estates")
    buildings: Mapped[list[Building]] = relationship(
        back_populates="estate", order_by="Building.name")


class Building(db.Model):
    """楼栋 / 幢."""

    __tablename__ = "building"
    __table_args__ = (sa.UniqueConstraint("estate_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(40))
    estate: Mapped[Estate] = relationship(back_populates="buildings")
    units: Mapped[list[Unit]] = relationship(back_populates="building", order_by="Unit.number")


class Unit(db.Model):
    """户 / 房号: one unit is one household."""

    __tablename__ = "unit"
    __table_args__ = (
        sa.UniqueConstraint("building_id", "number"),
        sa.CheckConstraint("title_area_m2 > 0", name="area_positive"),
        sa.CheckConstraint("kind in ('residential', 'commercial')", name="kind_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    building_id: Mapped[int] = mapped_column(sa.ForeignKey("building.id"), index=True)
    number: Mapped[str] = mapped_column(sa.String(40))
    # 产权面积, exact, two decimal places (stored as hundredths of m²)
    title_area_m2: Mapped[Decimal] = mapped_column(Hundredths)
    kind: Mapped[str] = mapped_column(sa.String(20), default="residential")
    is_hardship: Mapped[bool] = mapped_column(default=False)
    building: Mapped[Building] = relationship(back_populates="units")
    ownerships: Mapped[list[Ownership]] = relationship(
        back_populates="unit", cascade="all, delete-orphan")

    @property
    def owners(self) -> list[Owner]:
        return [o.owner for o in self.ownerships]

    @property
    def label(self) -> str:
        return f"{self.building.name}-{self.number}"


class Owner(db.Model):
    """业主: a person, identified within an estate by mobile phone."""

    __tablename__ = "owner"
    __table_args__ = (sa.UniqueConstraint("estate_id", "phone"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(60))
    phone: Mapped[str] = mapped_column(sa.String(20))
    id_last4: Mapped[str | None] = mapped_column(sa.String(4))
    ownerships: Mapped[list[Ownership]] = relationship(
        back_populates="owner", cascade="all, delete-orphan")

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)


class Ownership(db.Model):
    __tablename__ = "ownership"
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id", ondelete="CASCADE"), primary_key=True)
    owner_id: Mapped[int] = mapped_column(
        sa.ForeignKey("owner.id", ondelete="CASCADE"), primary_key=True, index=True)
    unit: Mapped[Unit] = relationship(back_populates="ownerships")
    owner: Mapped[Owner] = relationship(back_populates="ownerships")


class UnitLink(db.Model):
    """The per-unit QR link. Only the SHA-256 of the token is stored."""

    __tablename__ = "unit_link"
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unit: Mapped[Unit] = relationship()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
