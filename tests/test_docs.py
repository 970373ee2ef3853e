"""The docs against the code: every key of docs/configuration.md's reference exists with the
default it states; every file of docs/results.md's layout is in the committed example run (or
is one the results layout names, where marked "only"); every command and option the README
names is in `--help`."""

from __future__ import annotations

import fnmatch
import re
import types
import typing
from pathlib import Path

import pytest
import typer
import yaml
from pydantic import BaseModel

from harness.cli import app
from harness.config.experiment import ExperimentConfig
from harness.config.slo import LIMIT_KEY, Slo
from harness.contract.layout import RunLayout

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_RUN = REPO / "results" / "quickstart-cpu-2vcpu"


# --- docs/configuration.md ---------------------------------------------------------------

def reference_block() -> str:
    text = (REPO / "docs" / "configuration.md").read_text()
    section = text[text.index("## Every key and its default"):]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def comments(block: str) -> dict[tuple[str, ...], str]:
    """Each key's path -> the comment on its line (where `required` is said)."""
    found, stack = {}, []
    for line in block.splitlines():
        match = re.match(r"( *)([A-Za-z_][\w-]*):(.*)", line)
        if not match:
            continue
        depth = len(match.group(1)) // 2
        stack = [*stack[:depth], match.group(2)]
        found[tuple(stack)] = match.group(3).partition("#")[2]
    return found


def members(annotation) -> list[type[BaseModel]]:
    """The pydantic models an annotation allows (unions and Annotated unwrapped)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found += members(arg)
    return found


def model_for(annotation, value: dict) -> type[BaseModel]:
    """The union member a reference mapping describes: the one whose `kind` it names."""
    options = members(annotation)
    assert options, f"{annotation} is no section"
    kind = value.get("kind")
    for option in options:
        field = option.model_fields.get("kind")
        if kind is not None and field is not None and kind in typing.get_args(field.annotation):
            return option
    return options[0]


def default_of(field):
    if field.default_factory is not None:
        return field.default_factory()
    return field.default


def check_section(model: type[BaseModel], values: dict, path: tuple[str, ...],
                  notes: dict[tuple[str, ...], str], problems: list[str]) -> None:
    for key, value in values.items():
        where = (*path, key)
        name = ".".join(where)
        if model is Slo and (key == "max_error_rate" or LIMIT_KEY.fullmatch(key)):
            if key == "max_error_rate" and value != Slo().max_error_rate:
                problems.append(f"{name}: the docs say {value!r}, the default is "
                                f"{Slo().max_error_rate!r}")
            continue
        field = model.model_fields.get(key)
        if field is None:
            problems.append(f"{name}: no such key in {model.__name__}")
            continue
        required = "required" in notes.get(where, "")
        if required != field.is_required():
            problems.append(f"{name}: the docs say {'required' if required else 'optional'}, "
                            f"the code {'requires it' if field.is_required() else 'does not'}")
        if isinstance(value, dict) and members(field.annotation) and value:
            section = model_for(field.annotation, value)
            if not field.is_required() and default_of(field) is not None and not isinstance(
                    default_of(field), BaseModel):
                problems.append(f"{name}: a section in the docs, default {default_of(field)!r}")
            check_section(section, value, where, notes, problems)
            continue
        if required:
            continue
        default = default_of(field)
        if isinstance(default, BaseModel):
            default = default.model_dump()
        if value != default:
            problems.append(f"{name}: the docs say {value!r}, the default is {default!r}")


def test_every_key_of_the_configuration_reference_exists_with_its_default():
    block = reference_block()
    problems: list[str] = []
    check_section(ExperimentConfig, yaml.safe_load(block), (), comments(block), problems)
    assert problems == []


def test_the_checker_catches_a_wrong_default_and_an_unknown_key():
    block = "load:\n  warmup_requests: 5\n  colour: blue\n"
    problems: list[str] = []
    check_section(ExperimentConfig, yaml.safe_load(block), (), comments(block), problems)
    assert problems == ["load: the docs say optional, the code requires it",
                        "load.warmup_requests: the docs say 5, the default is 4",
                        "load.colour: no such key in LoadConfig"]


# --- docs/results.md -------------------------------------------------------------------------

def layout_entries() -> list[tuple[str, bool]]:
    """(the path under <run>/, whether it is marked `only`) of each line of the file list."""
    text = (REPO / "docs" / "results.md").read_text()
    block = text[text.index("## Files"):].split("```")[1]
    entries = []
    for line in block.splitlines():
        if line.startswith("<run>/"):
            path, _, words = line.partition(" ")
            entries.append((path.removeprefix("<run>/"), words.strip().startswith("only")))
    return entries


def as_glob(path: str) -> str:
    return re.sub(r"<[a-z]+>", "*", path)


def test_every_file_of_the_results_layout_is_in_the_example_run():
    stored = [str(p.relative_to(EXAMPLE_RUN)) for p in EXAMPLE_RUN.rglob("*") if p.is_file()]
    entries = layout_entries()
    assert len(entries) >= 10
    for path, only in entries:
        if not only:
            assert fnmatch.filter(stored, as_glob(path)), f"{path}: not in {EXAMPLE_RUN.name}"
    listed = [as_glob(path) for path, _ in entries]
    for stored_file in stored:  # and the list names every file the example run has
        assert any(fnmatch.fnmatch(stored_file, pattern) for pattern in listed), stored_file


def test_the_results_layout_lists_every_path_the_code_writes():
    layout = RunLayout(Path("RUN"))
    listed = [as_glob(path) for path, _ in layout_entries()]
    for name in dir(RunLayout):
        member = getattr(RunLayout, name)
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            path = getattr(layout, name)
        elif isinstance(member, types.FunctionType):
            arguments = {"cell": "CELL", "point": "POINT", "variant": "VARIANT"}
            names = list(member.__code__.co_varnames[1:member.__code__.co_argcount])
            path = member(layout, *(arguments[n] for n in names))
        else:
            continue
        relative = str(path.relative_to("RUN"))
        if "." not in path.name:
            continue  # a folder (cells/<cell>, tune/)
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in listed), \
            f"RunLayout.{name} ({relative}) is not in docs/results.md"


# --- README.md: commands and options ---------------------------------------------------------

def command_options() -> dict[str, set[str]]:
    """Each command (`run`, `selftest client`) -> its option names."""
    group = typer.main.get_command(app)
    found = {}

    def walk(command, name: str) -> None:
        found[name] = {opt for param in command.params for opt in
                       (*param.opts, *param.secondary_opts) if opt.startswith("-")} | {"--help"}
        if getattr(command, "commands", None):  # a group (typer's click may be its own)
            for sub_name, sub in command.commands.items():
                walk(sub, f"{name} {sub_name}".strip())

    walk(group, "")
    return found


def readme_snippets() -> list[str]:
    """Every code span and every line of a code block in the README."""
    text = (REPO / "README.md").read_text()
    snippets = []
    for index, part in enumerate(text.split("```")):
        if index % 2:
            snippets += part.splitlines()[1:]
        else:
            snippets += re.findall(r"`([^`\n]+)`", part)
    return snippets


def test_every_command_and_option_the_readme_names_exists():
    commands = command_options()
    every_option = set().union(*commands.values())
    problems, named = [], set()
    for snippet in readme_snippets():
        snippet = snippet.split(" #")[0]  # a shell comment names no command
        for match in re.finditer(r"\bharness ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?", snippet):
            first, second = match.groups()
            if first not in commands:
                problems.append(f"`{snippet}`: no command `harness {first}`")
                continue
            name = f"{first} {second}" if f"{first} {second}" in commands else first
            named.add(name)
            rest = snippet[match.end():].split(" harness ")[0]
            for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
                if option not in commands[name]:
                    problems.append(f"`{snippet}`: `harness {name}` has no {option}")
        if "harness " not in snippet:
            for option in re.findall(r"^(--[a-z][a-z-]*)", snippet):
                if option not in every_option:
                    problems.append(f"`{snippet}`: no command has {option}")
    assert problems == []
    assert {"run", "report", "cost", "prices", "compare", "validate"} <= named


@pytest.mark.parametrize("snippet, problem", [
    ("harness frobnicate", "no command `harness frobnicate`"),
    ("harness report RUN --pdf out.pdf", "`harness report` has no --pdf"),
])
def test_the_readme_checker_catches_a_missing_command_or_option(monkeypatch, snippet, problem):
    monkeypatch.setattr(f"{__name__}.readme_snippets", lambda: [snippet])
    with pytest.raises(AssertionError, match=re.escape(problem)):
        test_every_command_and_option_the_readme_names_exists()
