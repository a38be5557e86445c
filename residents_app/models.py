"""Imports every feature's models so that metadata and Alembic see all tables."""

from residents_app.audit import models as audit_models  # noqa: F401
from residents_app.auth import models as auth_models  # noqa: F401
from residents_app.auth import wechat_models  # noqa: F401
from residents_app.funding import account_models as funding_account_models  # noqa: F401
from residents_app.funding import models as funding_models  # noqa: F401
from residents_app.notify import models as notify_models  # noqa: F401
from residents_app.plans import models as plans_models  # noqa: F401
from residents_app.publicity import models as publicity_models  # noqa: F401
from residents_app.registry import models as registry_models  # noqa: F401
from residents_app.rounds import canvass_models  # noqa: F401
from residents_app.rounds import models as rounds_models  # noqa: F401
from residents_app.scheduler import models as scheduler_models  # noqa: F401
from residents_app.works import models as works_models  # noqa: F401
from residents_app.works.acceptance import models as works_acceptance_models  # noqa: F401
from residents_app.works.construction import models as works_construction_models  # noqa: F401
