"""The blueprints of the construction pages (views.py re-exports them for create_app)."""

from flask import Blueprint
from flask_smorest import Blueprint as ApiBlueprint

bp = Blueprint("construction", __name__)
api_bp = ApiBlueprint("construction_api", __name__, url_prefix="/api/construction",
                      description="施工期监督：参建单位、工程变更、进度通报、投诉咨询、民间监理、项目进程")
