"""Import direction: the API routers and the web pages are adapters over the feature
rooms and the shared HTTP layer (service/http); neither imports the other, no router
imports another, the shared layer and the feature rooms import no adapter, the feature
rooms import no HTTP layer (they raise domain.errors), retrieval imports nothing from
service, and the domain core (domain/) imports nothing of ours but itself. Only the app
factory (and the CLI) see both adapters.

The check reads the source with `ast` (no import runs), so an import inside a function
counts as much as one at the top of a module."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = ("service.api", "service.web")
ASSEMBLERS = {"service.app", "service.cli", "service.cli_service"}
SURFACES = (*ADAPTERS, "service.http", *ASSEMBLERS, "service.cli_errors", "service.cli_output")
OURS = ("domain", "retrieval", "service", "evals", "prompts")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    return imports_in(path.read_text(encoding="utf-8"), package)


def imports_in(source: str, package: str) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in `source`, a module of `package`."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from service.api.routers import people`
                yield node.lineno, f"{base}.{alias.name}"


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def all_imports() -> Iterator[tuple[str, str, str]]:
    """(importing module, where, imported module) over domain/, service/ and retrieval/."""
    for top in ("domain", "service", "retrieval"):
        for path in sorted((ROOT / top).rglob("*.py")):
            importer = module_name(path)
            for line, imported in imports_of(path):
                yield importer, f"{path.relative_to(ROOT)}:{line}", imported


def broken_arrows(importer: str, imported: str) -> list[str]:
    """The rules this import breaks, in words (none when it is allowed)."""
    broken = []
    if within(importer, "service.web") and within(imported, "service.api"):
        broken.append("a web page imports the API adapter")
    if within(importer, "service.api") and within(imported, "service.web"):
        broken.append("the API adapter imports the web pages")
    if (
        within(importer, "service.api.routers")
        and within(imported, "service.api.routers")
        and importer != "service.api.routers"
        and imported not in {importer, "service.api.routers"}
    ):
        broken.append("a router imports another router")
    if within(importer, "retrieval") and within(imported, "service"):
        broken.append("retrieval imports service")
    if within(importer, "service.http") and any(within(imported, a) for a in ADAPTERS):
        broken.append("the shared HTTP layer imports an adapter")
    if within(importer, "domain") and any(within(imported, top) for top in OURS if top != "domain"):
        broken.append("the domain core imports a layer above it")
    if (
        within(importer, "service")
        and not any(within(importer, s) for s in SURFACES)
        and within(imported, "service.http")
    ):
        broken.append("a feature room imports the HTTP layer (raise domain.errors instead)")
    outside_adapters = not any(within(importer, a) for a in ADAPTERS)
    if (
        outside_adapters
        and importer not in ASSEMBLERS
        and any(within(imported, a) for a in ADAPTERS)
    ):
        broken.append("a feature or shared module imports an adapter (only the app does)")
    return broken


def offending_imports() -> list[str]:
    """One line per offending import statement and rule, naming the module it reaches."""
    offences: dict[tuple[str, str], str] = {}
    for importer, where, imported in all_imports():
        for rule in broken_arrows(importer, imported):
            offences.setdefault((where, rule), f"{where}: {importer} imports {imported}: {rule}")
    return list(offences.values())


def test_no_import_crosses_an_adapter_boundary() -> None:
    offences = offending_imports()
    assert not offences, "imports against the arrows:\n" + "\n".join(offences)


def test_only_the_app_factory_and_cli_import_both_adapters() -> None:
    seen: dict[str, set[str]] = {}
    for importer, _, imported in all_imports():
        for adapter in ADAPTERS:
            if within(imported, adapter) and not within(importer, adapter):
                seen.setdefault(importer, set()).add(adapter)
    both = {m for m, adapters in seen.items() if len(adapters) == 2}
    assert both <= ASSEMBLERS, f"modules importing both adapters: {sorted(both - ASSEMBLERS)}"
    assert "service.app" in both, "the app factory should assemble both adapters"


@pytest.mark.parametrize(
    ("importer", "imported", "rule"),
    [
        ("service.web.pages.drafts", "service.api.routers.drafts", "web page imports the API"),
        ("service.web.session", "service.api.deps", "web page imports the API"),
        ("service.api.routers.x", "service.web.setup", "API adapter imports the web"),
        ("service.api.routers.drafts", "service.api.routers.jobs", "router imports another"),
        ("retrieval.packs", "service.settings", "retrieval imports service"),
        ("service.http.deps", "service.api.schemas", "shared HTTP layer imports an adapter"),
        ("service.drafting.queries", "service.api.schemas", "feature or shared module"),
        ("domain.periods", "retrieval.chunking", "domain core imports a layer"),
        ("domain.errors", "service.settings", "domain core imports a layer"),
        ("service.calibration.access", "service.http.errors", "feature room imports the HTTP"),
    ],
)
def test_each_rule_catches_its_offence(importer: str, imported: str, rule: str) -> None:
    """The rules are not vacuous: each wrong arrow is reported, with its rule named."""
    broken = broken_arrows(importer, imported)
    assert any(rule.split()[-1] in b for b in broken), broken


def test_allowed_arrows_pass() -> None:
    for importer, imported in [
        ("service.api.routers.drafts", "service.http.deps"),
        ("service.web.pages.drafts", "service.drafting.queries"),
        ("service.drafting.queries", "domain.errors"),
        ("retrieval.queries", "domain.errors"),
        ("service.web.pages.drafts", "service.http.errors"),
        ("service.app", "service.web.setup"),
        ("service.api.routers.drafts", "service.api.accepted"),
    ]:
        assert broken_arrows(importer, imported) == [], (importer, imported)


def test_relative_and_nested_imports_are_seen() -> None:
    """`from ..api import deps` in service/web, or an import inside a function, counts."""
    source = "from ..api import deps\n\ndef f() -> None:\n    import service.api.errors\n"
    found = {name for _, name in imports_in(source, "service.web")}
    assert {"service.api", "service.api.deps", "service.api.errors"} <= found
    assert broken_arrows("service.web.pages.x", "service.api.deps")
