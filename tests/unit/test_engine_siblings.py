"""The engines are siblings: they share public modules (engines/staging, engines/base) and
never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tagport

ENGINES = Path(tagport.__file__).parent / "engines"


def imported_modules(path: Path, engines: Path) -> set[str]:
    """Every module `path` (a file under `engines`) imports, anywhere in it, as absolute
    names (`from ..duckdb import load` resolved against its package)."""
    package = ".".join(["tagport", *path.relative_to(engines.parent).parent.parts])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def borrowed(engine: str, sibling: str, engines: Path = ENGINES) -> list[str]:
    """`file: module` for each import of `sibling`'s modules under engines/`engine`."""
    banned = f"tagport.engines.{sibling}"
    return sorted(
        f"{path.relative_to(engines)}: {name}"
        for path in (engines / engine).rglob("*.py")
        for name in imported_modules(path, engines)
        if name == banned or name.startswith(banned + ".")
    )


@pytest.mark.parametrize(("engine", "sibling"), [("spark", "duckdb"), ("duckdb", "spark")])
def test_an_engine_never_imports_its_sibling(engine, sibling):
    assert borrowed(engine, sibling) == []


def test_the_check_sees_absolute_relative_and_function_level_imports(tmp_path):
    fake = tmp_path / "engines"
    (fake / "spark").mkdir(parents=True)
    (fake / "spark" / "a.py").write_text("import tagport.engines.duckdb.store\n")
    (fake / "spark" / "b.py").write_text("from ..duckdb import load\n")
    (fake / "spark" / "c.py").write_text(
        "def f():\n    from tagport.engines import duckdb\n"
        "from tagport.engines.duckdbish import x\nfrom tagport.engines.staging import parse\n")
    assert borrowed("spark", "duckdb", fake) == [
        "spark/a.py: tagport.engines.duckdb.store",
        "spark/b.py: tagport.engines.duckdb",
        "spark/b.py: tagport.engines.duckdb.load",
        "spark/c.py: tagport.engines.duckdb",
    ]
