"""The layout's rules: no import cycle, the core imports neither Dagster nor the pipeline, no
module outside ``artifacts`` spells a file name of a model directory, and the README's links
lead somewhere."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ploutos_core.artifacts import model_dir
from ploutos_core.paths import PROJECT_ROOT

PACKAGES = ("ploutos_core", "ploutos_pipeline")


def module_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = path
    return files


MODULES = module_files()


def module_level_imports(name: str) -> set[str]:
    """Modules of the project that ``name`` imports when it is imported (not inside functions).

    Importing ``a.b.c`` first runs the ``__init__`` of ``a`` and ``a.b``, so those count too,
    except the packages ``name`` itself lives in (already being imported). ``from package import
    submodule`` needs the submodule, not the names of the package's ``__init__``.
    """
    imported = set()
    for node in ast.parse(MODULES[name].read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            children = [f"{node.module}.{alias.name}" for alias in node.names]
            if all(child in MODULES for child in children):
                imported.update(children)
            else:
                imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    with_packages = set()
    for module in imported:
        parts = module.split(".")
        with_packages |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return {m for m in with_packages - own if m in MODULES and m != name}


def external_imports(name: str) -> set[str]:
    """Top-level names of every module ``name`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found


def find_cycle() -> list[str] | None:
    graph = {name: module_level_imports(name) for name in MODULES}
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = "open"
        for dependency in sorted(graph[name]):
            if state.get(dependency) == "open":
                return [*path[path.index(dependency) :], dependency]
            if dependency not in state and (cycle := visit(dependency, [*path, dependency])):
                return cycle
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name, [name])):
            return cycle
    return None


def test_no_import_cycle() -> None:
    assert find_cycle() is None


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m.startswith("ploutos_core")))
def test_the_core_imports_no_dagster_and_not_the_pipeline(name: str) -> None:
    assert not external_imports(name) & {"dagster", "ploutos_pipeline"}



def test_model_directory_file_names_live_in_artifacts() -> None:
    names = [getattr(model_dir, n) for n in dir(model_dir) if n.isupper()]
    names = [n for n in names if isinstance(n, str) and "." in n]
    assert "manifest.json" in names
    spelled = {
        module: [n for n in names if f'"{n}"' in MODULES[module].read_text()]
        for module in MODULES
        if not module.startswith("ploutos_core.artifacts")
    }
    assert {m: n for m, n in spelled.items() if n} == {}


def test_the_code_location_loads_without_the_training_stack() -> None:
    """Every Dagster process (webserver, daemon, each run and step) imports the code location;
    torch, Stable-Baselines3, matplotlib, pandas-ta and scipy.stats are imported by the steps
    that train, backtest, plot, compute features or judge, not by the definitions."""
    heavy = ("torch", "stable_baselines3", "gymnasium", "matplotlib", "pandas_ta", "scipy.stats")
    code = (
        "import sys, ploutos_pipeline.definitions; "
        f"print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        cwd=PROJECT_ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == []


MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("document", ["README.md", "docs/FEATURES.md"])
def test_the_documents_links_lead_to_files_and_headings(document: str) -> None:
    path = PROJECT_ROOT / document
    text = path.read_text()
    anchors = {
        github_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")
    }
    broken = []
    for target in MARKDOWN_LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        found = (path.parent / file).exists() if file else anchor in anchors
        if not found:
            broken.append(target)
    assert not broken, f"{document} links to what is not there: {broken}"
