"""The package's shape: each layer a package, the import-linter contract of its layers
(pyproject.toml) holds with at most 9 layers, no module imports itself round a cycle, and every
module stays small enough to have one concern."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parent.parent
MODULE_LINES = 400


def test_the_layers_contract_holds(monkeypatch):
    monkeypatch.chdir(REPO)  # import-linter reads the package from the working directory
    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True,
                        no_logo=True) == 0


def test_each_layer_is_a_package_and_the_contract_names_at_most_nine():
    top = sorted(path.name for path in (REPO / "harness").glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "cli.py"]
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in contracts["contracts"] if c["type"] == "layers")["layers"]
    assert len(layers) <= 9
    named = {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}
    packages = {f"harness.{path.parent.name}" for path in (REPO / "harness").glob("*/__init__.py")}
    assert packages <= named, f"packages in no layer: {packages - named}"


def cycles(graph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), i.e. import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_round_a_cycle(monkeypatch):
    monkeypatch.chdir(REPO)
    assert cycles(grimp.build_graph("harness", cache_dir=None)) == []


def test_every_module_has_one_concern_and_fits_on_a_few_screens():
    big = {str(path.relative_to(REPO)): lines for path in (REPO / "harness").rglob("*.py")
           if (lines := len(path.read_text().splitlines())) > MODULE_LINES}
    assert not big, f"split these by concern: {big}"


def test_the_contract_forbids_what_it_should(tmp_path):
    """A reading module that imports a measuring one breaks the contract (it can fail)."""
    package = tmp_path / "harness"
    for path in (REPO / "harness").rglob("*.py"):
        target = package / path.relative_to(REPO / "harness")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    summary = package / "report" / "run_report" / "summary.py"
    summary.write_text(summary.read_text()
                       + "\nfrom harness.run.point_measurer import PointMeasurer\n")
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    check = ("import sys; from importlinter.cli import lint_imports; "
             "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True))")
    result = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "harness.report.run_report.summary -> harness.run.point_measurer" in result.stdout


def test_a_cycle_is_found():
    class Graph:
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
        modules = set(edges)

        def find_modules_directly_imported_by(self, module):
            return self.edges[module]

    assert cycles(Graph()) == [["a", "b", "c"]]


def test_the_contributing_guide_layout_names_every_package():
    guide = (REPO / "CONTRIBUTING.md").read_text()
    layout = guide[guide.index("## Layout"):].split("```")[1]
    packages = sorted(str(path.parent.relative_to(REPO)) + "/"
                      for path in (REPO / "harness").rglob("__init__.py"))
    listed = [line.split()[0] for line in layout.splitlines() if line.startswith("harness/")]
    assert sorted(listed) == [p for p in packages if p != "harness/"]
