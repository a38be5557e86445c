"""HTTP for rounds: resident pages (/v, /r/rounds, /receipt), committee pages and the JSON API.

The routes live in resident_views.py, committee_views.py and api.py; this module exposes the
blueprints that create_app() registers.
"""

from residents_app.rounds import api, canvass_views, committee_views, resident_views  # noqa: F401  (registers routes)
from residents_app.rounds.blueprints import api_bp, bp

__all__ = ["api_bp", "bp"]
