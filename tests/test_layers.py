"""The package's shape: the import-linter contract of its layers (pyproject.toml) holds, and
every module stays small enough to have one concern."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parent.parent
MODULE_LINES = 400


def test_the_layers_contract_holds(monkeypatch):
    monkeypatch.chdir(REPO)  # import-linter reads the package from the working directory
    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True,
                        no_logo=True) == 0


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
