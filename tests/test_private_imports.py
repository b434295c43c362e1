"""No module of the project imports another module's private (underscore) names: what one
room needs from another is public, documented API (the counterfactual probe once reached
into drafting's `_prepare`)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("service", "retrieval", "evals")


def _private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(ROOT)}: {node.module}.{alias.name}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    found = [
        hit
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for hit in _private_imports(path)
    ]
    assert not found, "\n".join(found)


def test_the_audit_trail_imports_nothing_of_ingest() -> None:
    """service.ingest writes audit events through service.audit; the reverse arrow made an
    import cycle (audit_ingest now lives in service.ingest.audited)."""
    tree = ast.parse((ROOT / "service" / "audit.py").read_text(encoding="utf-8"))
    modules = [
        name
        for node in ast.walk(tree)
        for name in (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else []
        )
    ]
    assert not [m for m in modules if m == "service.ingest" or m.startswith("service.ingest.")]
