"""`harness tune CONFIG`: search the engine settings of the config's `tune:` section for the
cheapest configuration that meets the SLO; each trial is one cell of the run."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape

from harness.commands.console import (
    EXIT_INTERRUPTED,
    console,
    err_console,
    user_error,
)
from harness.config import ConfigError, ExperimentConfig, load_config

DEFAULT_TRIALS = 20


def tune(
    config_path: Path = typer.Argument(..., metavar="CONFIG",
                                       help="Experiment config (YAML) with a `tune:` section."),
    out: Path = typer.Option(None, "--out", help="Results directory "
                             "\\[default: results/<config name>]. Rerunning continues the study."),
    trials: int = typer.Option(None, "--trials", min=1, metavar="N",
                               help="Trials in all (server launches at most), counting those "
                                    "already in --out \\[default: tune.trials, else 20]."),
    minutes: float = typer.Option(None, "--minutes", min=0.1, metavar="M",
                                  help="Start no trial after M minutes \\[default: tune.minutes]."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Print the space and the budget; start nothing."),
) -> None:
    """Find the cheapest engine configuration that meets the SLO (Optuna over `tune.space`).

    Each trial launches one server with the proposed settings, measures the config's load
    points and searches its sustained capacity at the SLO; it is stored as an ordinary cell, so
    `harness report`, `compare`, `cost` and `validate` read a tuned run. Ends with the best
    trial as a config (tune/best.yaml) and a `vllm serve` line (tune/best-serve.sh).
    Exit codes: 0 done, 1 no trial met the SLO, 2 bad input, 130 interrupted.
    """
    try:
        config = load_config(config_path)
    except ConfigError as err:
        raise user_error(str(err)) from None
    if config.tune is None:
        raise user_error(f"{config_path}: no `tune:` section: add one naming the engine "
                         "options to search (docs/tuning.md)")
    if config.executor.kind != "local":
        raise user_error(f"{config_path}: executor: trials run one after another on this "
                         "machine; remove `executor` to tune (a sweep of the best trial can "
                         "then run on the cluster)")
    budget_trials = trials if trials is not None else config.tune.budget_trials
    budget_minutes = minutes if minutes is not None else config.tune.minutes
    if budget_trials is None and budget_minutes is None:
        budget_trials = DEFAULT_TRIALS
    run_name = config.run_name(config_path)
    out = out or Path("results") / run_name
    check_space(config)
    if dry_run:
        print_space(config, budget_trials, budget_minutes)
        return
    from harness.commands.run import check_driver, check_engine_installed, check_out_writable

    check_out_writable(out)
    check_engine_installed(config)
    check_driver(config)
    raise typer.Exit(execute(config, config_path, run_name, out, budget_trials,
                             budget_minutes))


def check_space(config: ExperimentConfig) -> None:
    """Every option in the space is one the engine knows, or one line saying which is not."""
    from harness.config.tune import VARIANT
    from harness.run.tune_space import MATRIX_AXES

    options = [name for name in config.tune.space if name not in (VARIANT, *MATRIX_AXES)]
    if config.engine.kind != "vllm" or not options:
        return
    from harness.engines.vllm import engine_option_names

    known = engine_option_names(config.engine.python)
    if known is None:
        return  # the engine's check before launching says what is missing
    unknown = [name for name in options if name not in known]
    if unknown:
        raise user_error(f"tune.space.{unknown[0]}: not an option of this vLLM (no "
                         f"--{unknown[0].replace('_', '-')}); see `vllm serve --help`")


def print_space(config: ExperimentConfig, trials: int | None, minutes: float | None) -> None:
    from harness.report.run_report.tune import space_table
    from harness.run.tune_space import TuneSpace

    space = TuneSpace(config)
    console.print(space_table(space.described()))
    size = space.grid_size()
    grid = f"{size} combinations in the grid" if size else "a continuous space (no grid)"
    budget = " and ".join(part for part in (f"{trials} trials" if trials else "",
                                            f"{minutes:g} minutes" if minutes else "") if part)
    console.print(f"{grid}; budget {budget}; objective {config.tune.objective}, sampler "
                  f"{config.tune.sampler}. Each trial: one server launch, "
                  f"{len(space.points)} load points, then the capacity search.")


def execute(config: ExperimentConfig, config_path: Path, run_name: str, out: Path,
            trials: int | None, minutes: float | None) -> int:
    from harness.commands.progress import RunDisplay
    from harness.commands.run import _sigterm_as_interrupt, write_run_report
    from harness.report.run_report.summary import write_summary
    from harness.run.provenance import run_manifest
    from harness.run.tune import Tuner
    from harness.store.run_store import ResultsError, ResultsLost, RunStore

    store = RunStore(out)
    try:
        store.begin(run_manifest(config, run_name, config_path))
    except ResultsError as err:
        raise user_error(str(err)) from None
    earlier = store.read_tune()  # a study this run directory already holds
    launched_before = earlier.launches if earlier is not None else 0
    restore = _sigterm_as_interrupt()
    began, status, record = time.monotonic(), "interrupted", None
    steps = config.capacity_search.steps if config.capacity_search else 0
    try:
        with RunDisplay(console, (trials or DEFAULT_TRIALS) * (steps + 4)) as display:
            tuner = Tuner(config, run_name, store, display, trials, minutes)
            record = tuner.run()
        status = "complete"
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted:[/yellow] servers stopped; finished trials are "
                          f"in {out}. Run the same command to continue the study.")
    except ResultsLost as err:
        status = "failed"
        err_console.print(f"[red]stopped:[/red] {escape(str(err))}; servers stopped",
                          highlight=False, soft_wrap=True)
    finally:
        store.end(status)
        write_summary(store)
        restore()
    if record is None:
        return EXIT_INTERRUPTED if status == "interrupted" else 1
    finish(config, config_path, store, tuner, record, time.monotonic() - began,
           record.launches - launched_before)
    write_run_report(store)
    return 0 if record.best else 1


def finish(config: ExperimentConfig, config_path: Path, store, tuner, record,
           seconds: float, launched_now: int) -> None:
    """The trials, the best configuration (printed and written) and what mattered."""
    from harness.report.run_report.tune import importance_table, trials_table
    from harness.run.tune_best import best_config, serve_command

    console.print(trials_table(record, console.width))
    console.print(f"{len(record.trials)} trials, {record.launches} server launches in all; "
                  f"this time {launched_now} launches in {seconds / 60:.1f} min; study: "
                  f"{store.tune_dir / 'study.db'}", highlight=False)
    if record.importance:
        console.print(importance_table(record))
    best = record.best_trial
    if best is None:
        err_console.print("[red]no trial met the SLO[/red]: widen the space, or check the SLO")
        return
    cell = tuner.space.cell(best.params)
    config_file = store.tune_dir / "best.yaml"
    config_file.write_text(best_config(config_path, tuner.space, best.params,
                                       len(record.trials)))
    serve = serve_command(cell, config.served_model_name)
    (store.tune_dir / "best-serve.sh").write_text(f"#!/bin/sh\n{serve}\n")
    if len(record.best) > 1:
        console.print(f"Pareto front: trials {', '.join(str(n) for n in record.best)}")
    console.print(f"[bold]best:[/bold] trial {best.number} ({escape(best.cell)})",
                  highlight=False)
    console.print(f"  as a config: {config_file}  (harness run {config_file})", highlight=False)
    console.print(f"  as a server: {escape(serve)}", highlight=False, soft_wrap=True)
