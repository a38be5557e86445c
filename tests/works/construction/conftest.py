"""Fixtures: the PlanWorld estate with an approved start application (the project), and photo bytes."""

from __future__ import annotations

import io

import pytest

from tests.plan_world import resident_login, world  # noqa: F401


@pytest.fixture
def project(world, db):  # noqa: F811
    """The estate's project: its start application approved by the street office at world.now."""
    plan = world.plan()
    app = world.approve_start(plan)
    world.plan_version = plan
    return app


def jpeg_with_exif(size=(3000, 2000), color=(200, 30, 30)) -> bytes:
    """A JPEG carrying EXIF (a GPS position and a camera serial) and the orientation tag 6 (turned 90°)."""
    from PIL import Image

    img = Image.new("RGB", size, color)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° CW to display
    exif[0xA431] = "SERIAL-12345"  # body serial number
    exif[0x8825] = {1: "N", 2: (31.0, 14.0, 0.0)}  # GPS IFD
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png_bytes(size=(40, 30)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGBA", size, (0, 0, 255, 128)).save(out, "PNG")
    return out.getvalue()
