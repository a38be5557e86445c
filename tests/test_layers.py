"""Imports go one way: the layer order of ../shared/STYLE.md, checked on the source with `ast`.

core → audit → registry → auth → notify → plans → rounds → publicity → funding → works → oversight → ops →
scheduler. A package's models and services never import a higher package; the HTTP and CLI edge (views, api,
cli) may link to a higher feature's services for a page's links, but never to oversight/ or scheduler/ from
below them. core imports neither Flask nor SQLAlchemy; no module of audit/ imports rounds, publicity, plans,
funding, works or oversight. Function-level
imports count the same as module-level ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "residents_app"
LAYERS = ("core", "audit", "registry", "auth", "notify", "plans", "rounds", "publicity", "funding", "works",
          "oversight", "ops", "scheduler")
RANK = {name: i for i, name in enumerate(LAYERS)}
# Shared plumbing below every feature (it imports no feature): the app's database, errors, formatting, files.
INFRA = {"db", "extensions", "errors", "formatting", "exports", "uploads", "qr", "config", "files", "ints", "api_csrf",
         "pdf_font", "sessions", "replica"}
# The application itself, above everything: it assembles the features.
ASSEMBLY = {"__init__", "models", "demo"}
EDGE = {"views", "api", "cli", "resident_views", "committee_views", "blueprints", "demo"}
NEVER_FROM_BELOW = {"oversight", "scheduler"}
# The chain is the bottom of the house: not even `flask audit` (its CLI edge) reads what is decided above it.
AUDIT_NEVER = {"plans", "rounds", "publicity", "funding", "works", "oversight"}
FORBIDDEN_IN_CORE = ("flask", "flask_", "sqlalchemy", "werkzeug", "marshmallow")


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.lineno, node.module))
            # `from residents_app import rounds` names a package too
            if node.module == "residents_app":
                out += [(node.lineno, f"residents_app.{alias.name}") for alias in node.names]
    return out


def violations(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        parts = rel.with_suffix("").parts
        where = str(Path("residents_app") / rel)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=where)
        top = parts[0]
        leaf = parts[-1]
        for lineno, module in imported_modules(tree):
            if top == "core":
                if module.startswith(FORBIDDEN_IN_CORE) or (
                        module.startswith("residents_app") and not module.startswith("residents_app.core")):
                    found.append(f"{where}:{lineno}: core imports {module}")
                continue
            if not module.startswith("residents_app."):
                continue
            target = module.split(".")[1]
            if top in INFRA:
                if target in RANK:
                    found.append(f"{where}:{lineno}: shared plumbing imports the feature {module}")
                continue
            if top in ASSEMBLY or target not in RANK or top not in RANK:
                continue
            if top == "audit" and target in AUDIT_NEVER:
                found.append(f"{where}:{lineno}: audit/ imports {module} (the chain knows no decision)")
                continue
            if RANK[target] <= RANK[top]:
                continue
            if leaf in EDGE and target not in NEVER_FROM_BELOW:
                continue
            kind = "the edge" if leaf in EDGE else "models/services"
            found.append(f"{where}:{lineno}: {top} ({kind}) imports {module}, a higher layer")
    return found


def test_no_package_imports_a_higher_one():
    assert violations() == []


def test_audit_services_and_verify_do_not_import_each_other():
    for name, other in (("services", "verify"), ("verify", "services")):
        tree = ast.parse((PACKAGE / "audit" / f"{name}.py").read_text(encoding="utf-8"))
        assert f"residents_app.audit.{other}" not in {m for _, m in imported_modules(tree)}, name


@pytest.mark.parametrize(("package", "source", "expected"), [
    ("rounds", "from residents_app.works.services import start_checklist\n",
     "rounds (models/services) imports residents_app.works.services, a higher layer"),
    ("plans", "def f():\n    from residents_app.funding import services\n",
     "plans (models/services) imports residents_app.funding, a higher layer"),
    ("core", "import sqlalchemy\n", "core imports sqlalchemy"),
    ("audit", "from residents_app.rounds.models import Round\n", "audit/ imports residents_app.rounds.models"),
])
def test_a_forbidden_import_is_caught(tmp_path, package, source, expected):
    (tmp_path / package).mkdir()
    (tmp_path / package / "services.py").write_text(source, encoding="utf-8")
    (found,) = violations(tmp_path)
    assert expected in found


def test_the_edge_may_link_upward_but_not_to_oversight():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "rounds").mkdir()
        (root / "rounds" / "views.py").write_text("from residents_app.works import services\n", encoding="utf-8")
        assert violations(root) == []
        (root / "rounds" / "views.py").write_text("from residents_app.oversight import dashboards\n", encoding="utf-8")
        assert violations(root) == ["residents_app/rounds/views.py:1: rounds (the edge) imports "
                                    "residents_app.oversight, a higher layer"]


def test_no_file_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert long == {}
