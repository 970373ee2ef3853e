"""What an engine's interpreter has installed: the modules it needs, and the version of its
distribution for run.json (asked of that interpreter, which may not be this one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from harness.contract.manifest import EnginePackage

_PROBE = """
import importlib.util, json, sys
from importlib.metadata import version, PackageNotFoundError
modules, distributions = json.loads(sys.argv[1]), json.loads(sys.argv[2])
found = None
for name in distributions:
    try:
        found = [name, version(name)]
        break
    except PackageNotFoundError:
        pass
missing = [m for m in modules if importlib.util.find_spec(m) is None]
print(json.dumps({"missing": missing, "package": found}))
"""


def probe(python: str | None, modules: tuple[str, ...] = (),
          distributions: tuple[str, ...] = ()) -> dict:
    """{"missing": [modules not importable], "package": [name, version] or None} for
    `python` (default: this interpreter), in a child process so nothing is imported here."""
    interpreter = python or sys.executable
    try:
        out = subprocess.run([interpreter, "-c", _PROBE, json.dumps(modules),
                              json.dumps(distributions)], capture_output=True, text=True,
                             timeout=60).stdout
        return json.loads(out)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {"missing": list(modules), "package": None}


def package(python: str | None, distributions: tuple[str, ...]) -> EnginePackage | None:
    """The first of `distributions` installed for `python`, with its version."""
    found = probe(python, distributions=distributions)["package"]
    return EnginePackage(package=found[0], version=found[1]) if found else None


def executable(python: str) -> bool:
    from shutil import which

    return bool(which(python)) or os.access(python, os.X_OK)
