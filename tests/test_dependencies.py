"""What bot/ imports: every third-party package is declared, and the product never imports its test doubles."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"


def _normalise(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every absolute module imported by ``path`` (at any depth), with its line."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno
            for alias in node.names:  # ``from bot import testing`` imports bot.testing
                yield f"{node.module}.{alias.name}", node.lineno


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_normalise(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}


def test_every_third_party_package_bot_imports_is_a_declared_dependency():
    declared = _declared()
    owners = packages_distributions()
    undeclared = []
    for path in sorted(BOT.rglob("*.py")):
        for module, line in _imports(path):
            top = module.partition(".")[0]
            if top == "bot" or top in sys.stdlib_module_names:
                continue
            distributions = {_normalise(name) for name in owners.get(top, [])}
            if not distributions & declared:
                undeclared.append(f"{path.relative_to(ROOT)}:{line}: {top} (from {sorted(distributions) or '?'})")

    assert undeclared == []


def test_no_product_module_imports_the_test_doubles():
    importers = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted(BOT.rglob("*.py"))
        if path != BOT / "testing.py"
        for module, line in _imports(path)
        if module == "bot.testing" or module.startswith("bot.testing.")
    ]

    assert importers == []
