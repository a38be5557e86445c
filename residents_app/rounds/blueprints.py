"""The blueprints of this feature (views.py re-exports them for create_app)."""

from flask import Blueprint
from flask_smorest import Blueprint as ApiBlueprint

bp = Blueprint("rounds", __name__)
api_bp = ApiBlueprint("rounds_api", __name__, url_prefix="/api",
                      description="表决与投票：扫码投票、回执查询、业委会表决管理")
