"""Demo data of this feature, added to the demo estate by `flask demo load`."""

from __future__ import annotations


def extend_demo(estate, now) -> list[str]:
    """Add this feature's demo data to the demo estate; return lines to print on the console."""
    return []
