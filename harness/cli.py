"""The `harness` command line."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from harness.config import ConfigError, ExperimentConfig, load_config
from harness.dummy_model import SHAPES, write_dummy_model

app = typer.Typer(
    help="Benchmark self-hosted LLM serving: sweep vLLM over batch sizes and quantizations, "
         "measure throughput and latency under load, and price it per million tokens.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _console(stream) -> Console:
    """Rich console; into a file or pipe, lines stay whole instead of wrapping at 80 columns."""
    return Console(stderr=stream is sys.stderr, width=None if stream.isatty() else 200)


console = _console(sys.stdout)
err_console = _console(sys.stderr)

from harness.cost.commands import register as register_cost_commands  # noqa: E402

register_cost_commands(app)

from harness.selftest import register as register_selftest_commands  # noqa: E402

register_selftest_commands(app)

EXIT_FAILED_CELLS = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def user_error(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_USER_ERROR)


@app.command()
def run(
    config_path: Path = typer.Argument(..., metavar="CONFIG", help="Experiment config (YAML)."),
    out: Path = typer.Option(None, "--out", help="Results directory "
                             "[default: results/<config name>]. Rerunning resumes it."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; start nothing."),
) -> None:
    """Run a sweep: one vLLM server per (variant x batch size), every load point on it.

    Finished points are kept: running the same command again skips them and measures the rest.
    Exit codes: 0 all measured, 1 some cells failed, 2 bad input, 130 interrupted.
    """
    from harness.plan import build_plan

    try:
        config = load_config(config_path)
    except ConfigError as err:
        raise user_error(str(err)) from None
    run_name = config.run_name(config_path)
    out = out or Path("results") / run_name
    plan = build_plan(config)
    if dry_run:
        console.print(plan_table(config, plan, out))
        return
    check_engine_installed(config)
    check_gpus(config, plan)
    raise typer.Exit(execute(config, config_path, run_name, out, plan))


ENGINE_MODULES = {"vllm": ("vllm",), "transformers": ("transformers", "fastapi", "uvicorn",
                                                       "accelerate")}


def check_engine_installed(config: ExperimentConfig) -> None:
    import shutil
    import subprocess

    modules = ENGINE_MODULES.get(config.engine.kind)
    if not modules:
        return
    python = config.engine.python or sys.executable
    if config.engine.python and not (shutil.which(python) or os.access(python, os.X_OK)):
        raise user_error(f"engine.python: {python} is not an executable")
    probe = ("import importlib.util, sys; missing = [m for m in sys.argv[1:] "
             "if importlib.util.find_spec(m) is None]; print(' '.join(missing))")
    missing = subprocess.run([python, "-c", probe, *modules], capture_output=True,
                             text=True).stdout.split()
    if missing:
        hint = {"vllm": "pip install '.[cpu]' (CPU) or '.[gpu]' (NVIDIA GPU)",
                "transformers": "pip install '.[hf]'"}[config.engine.kind]
        raise user_error(f"engine {config.engine.kind}: {', '.join(missing)} not installed for "
                         f"{python}: {hint}, or set engine.python")


def check_gpus(config: ExperimentConfig, plan: list) -> None:
    """Refuse GPUs NVML cannot measure (MIG slices, unknown ids) before anything starts."""
    from harness.runner import open_energy_monitor
    from harness.telemetry.gpus import TelemetryError

    widest = max(plan, key=lambda cell: cell.tensor_parallel_size)
    try:
        open_energy_monitor(config, widest).close()
    except TelemetryError as err:
        raise user_error(f"engine.gpus / CUDA_VISIBLE_DEVICES: {err}") from None


def execute(config: ExperimentConfig, config_path: Path, run_name: str, out: Path,
            plan: list) -> int:
    from harness.provenance import provenance
    from harness.report.progress import RunDisplay
    from harness.report.tables import results_table, write_summary
    from harness.runner import Runner
    from harness.store import RunStore, StoreMismatch

    store = RunStore(out)
    try:
        store.begin({"run": run_name, "config_file": str(config_path),
                     "config": config.model_dump(), "config_hash": config.hash(),
                     **provenance(config.engine.python)})
    except StoreMismatch as err:
        raise user_error(str(err)) from None
    restore = _sigterm_as_interrupt()
    began = time.monotonic()
    status, code = "interrupted", EXIT_INTERRUPTED
    searches = config.capacity.steps if config.capacity else 0
    total = sum(len(cell.points) + searches for cell in plan)
    try:
        with RunDisplay(console, total) as display:
            outcome = Runner(config, run_name, store, display).run(plan)
        status = "failed" if outcome.failed_cells else "complete"
        code = EXIT_FAILED_CELLS if outcome.failed_cells else 0
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted:[/yellow] servers stopped; finished points are "
                          f"in {out}. Run the same command to resume.")
    finally:
        store.end(status)
        frame = write_summary(store, config.cost.usd_per_hour)
        restore()
    if status != "interrupted":
        if not frame.empty:
            console.print(results_table(frame, title=f"{run_name} ({out})"))
        console.print(f"{outcome.measured} points measured, {outcome.skipped} already done, "
                      f"in {time.monotonic() - began:.0f} s. Summary: {store.summary_csv}")
        if config.cost.usd_per_hour is None:
            console.print("[dim]$/Mtok: set cost.usd_per_hour in the config to price the "
                          "rows[/dim]")
        if config.cost.profile and not frame.empty:
            answer_cost(out, Path(config.cost.profile))
        for cell_id, reason in outcome.failed_cells.items():
            err_console.print(f"[red]failed:[/red] {cell_id}: {reason} "
                              f"(see {store.server_log(cell_id)})")
    return code


def answer_cost(out: Path, profile: Path) -> None:
    """The build-or-buy answer for the config's traffic profile, as `harness cost` prints it."""
    from harness.cost.commands import OutputFormat, cost

    try:
        cost(results=out, profile_path=profile, prices_file=None, price_date=None,
             output_format=OutputFormat.table, points=False)
    except typer.Exit:
        pass  # the one-line reason is printed; the measured run itself succeeded


def _sigterm_as_interrupt():
    """Make SIGTERM and SIGHUP stop the run like Ctrl-C does, so servers are always stopped."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    return lambda: [signal.signal(sig, old) for sig, old in previous.items()]


def plan_table(config: ExperimentConfig, plan: list, out: Path) -> Table:
    from harness.runner import make_engine
    from harness.store import RunStore

    store = RunStore(out)
    searches = config.capacity.steps if config.capacity else 0
    table = Table(title=f"Plan: {len(plan)} server launches, "
                        f"{sum(len(c.points) for c in plan)} load points"
                        f"{f' + up to {searches} capacity steps each' if searches else ''}"
                        f" -> {out}")
    for column in ("cell", "model", "engine", "load points"):
        table.add_column(column)
    for cell in plan:
        points = ", ".join(describe_point(p) + (" (done)" if store.point_done(cell.id, p.id)
                                                else "") for p in cell.points)
        if config.capacity:
            cap = config.capacity
            points += (f", capacity search {cap.min_rate:g}-{cap.max_rate:g} req/s "
                       f"({cap.steps} steps x {cap.duration_s:g} s)")
        table.add_row(cell.id, cell.model, make_engine(config, cell, store, create=False)
                      .describe(), points)
    return table


def describe_point(point) -> str:
    def size(phase) -> str:
        return f"{phase.requests} req" if phase.requests else f"{phase.duration_s:g} s"

    parts = []
    for phase in point.phases:
        if phase.open_loop:
            r0, r1 = phase.rate
            load = f"{r0:g}" if r0 == r1 else f"{r0:g}->{r1:g}"
            parts.append(f"{load} req/s {phase.arrival} x {size(phase)}")
        else:
            parts.append(f"conc {phase.concurrency} x {size(phase)}")
    return f"{point.id} ({'; '.join(parts)})"


@app.command("report")
def report(results: Path = typer.Argument(..., metavar="RESULTS_DIR",
                                          help="A results directory written by `harness run`.")
           ) -> None:
    """Print the results table of a stored run (offline; rewrites its summary.csv)."""
    from harness.report.tables import results_table, write_summary
    from harness.store import RunStore, read_json

    run_info = read_json(results / "run.json")
    if run_info is None:
        raise user_error(f"{results}: no run.json here; give a directory made by `harness run`")
    price = (run_info.get("config", {}).get("cost") or {}).get("usd_per_hour")
    frame = write_summary(RunStore(results), price)
    if frame.empty:
        console.print(f"{results}: no points measured yet")
        return
    console.print(results_table(frame, title=f"{run_info.get('run')} ({results})"))


@app.command("dummy-model")
def dummy_model(
    out_dir: Path = typer.Argument(..., metavar="OUT_DIR", help="Directory to write."),
    shape: str = typer.Option("tiny", "--shape",
                              help=f"Model shape: {', '.join(SHAPES)}."),
    dtype: str = typer.Option("bfloat16", "--dtype", help="torch_dtype written to config.json."),
) -> None:
    """Write a random-weight Llama-shaped model directory (config.json + tokenizer, no weights).

    Serve it with vLLM's `--load-format dummy` to measure a real shape without downloading
    weights; in a config write `model: dummy:<shape>` and the harness does this for you.
    """
    if shape not in SHAPES:
        raise user_error(f"--shape: unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    write_dummy_model(out_dir, shape, dtype)
    console.print(f"wrote {shape} model files to {out_dir} (serve with --load-format dummy)")


if __name__ == "__main__":
    app()
