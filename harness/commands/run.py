"""`harness run CONFIG`: validate the config, check the engine and GPUs, then run the sweep
with a live display, keep every finished point, and end with the results table (and the
build-or-buy answer where the config names a traffic profile)."""

from __future__ import annotations

import contextlib
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from harness.commands.console import (
    EXIT_FAILED_CELLS,
    EXIT_INTERRUPTED,
    console,
    err_console,
    user_error,
)
from harness.config import ConfigError, ExperimentConfig, load_config


def run(
    config_path: Path = typer.Argument(..., metavar="CONFIG", help="Experiment config (YAML)."),
    out: Path = typer.Option(None, "--out", help="Results directory "
                             "\\[default: results/<config name>]. Rerunning resumes it."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; start nothing."),
    repeat: int = typer.Option(
        1, "--repeat", min=1, max=10, metavar="N",
        help="Measure every point N times on its server, one after another (ids c4, c4-rep2, "
             "...): harness compare then judges deltas against their spread."),
    ray: str = typer.Option(None, "--ray", metavar="ADDRESS",
                            help="Run each cell as a task on the Ray cluster whose head is "
                                 "ADDRESS (host:port, or auto); results come back to --out. "
                                 "Same as `executor: {kind: ray, address: ADDRESS}`."),
) -> None:
    """Run a sweep: one vLLM server per (variant x batch size), every load point on it.

    Finished points are kept: running the same command again skips them and measures the rest
    (here or on a cluster: where the cells run is not part of the config's hash).
    Exit codes: 0 all measured, 1 some cells failed, 2 bad input, 130 interrupted.

    Ctrl-C (SIGINT), SIGTERM and SIGHUP stop the run the same way: servers stopped, finished
    points kept. A SIGINT the harness inherits as ignored (nohup, or `&` in a script) stays
    ignored, as the parent asked; stop such a run with SIGTERM.
    """
    from harness.contract.plan import build_plan

    try:
        config = load_config(config_path)
        config = on_ray(config, ray) if ray else config
    except ConfigError as err:
        raise user_error(str(err)) from None
    run_name = config.run_name(config_path)
    out = out or Path("results") / run_name
    plan = build_plan(config, repeat)
    if dry_run:
        console.print(plan_table(config, plan, out))
        console.print(expected_time(config, plan))
        return
    check_out_writable(out)
    if config.executor.kind == "local":  # on a cluster, each node is listed and checked
        check_engine_installed(config)
        check_driver(config)
        check_gpus(config, plan)
    raise typer.Exit(execute(config, config_path, run_name, out, plan))


def check_out_writable(out: Path) -> None:
    """The results directory can be created and written, or one line saying why; what the
    check itself created is removed again."""
    if out.exists() and not out.is_dir():
        raise user_error(f"--out {out}: cannot write results there (a file, not a directory)")
    created = [parent for parent in (out, *out.parents) if not parent.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise user_error(f"--out {out}: cannot write results there "
                         f"({err.strerror or err})") from None
    finally:
        for parent in created:  # deepest first
            with contextlib.suppress(OSError):
                parent.rmdir()


def on_ray(config: ExperimentConfig, address: str) -> ExperimentConfig:
    """The config with its cells sent to the Ray cluster at `address`."""
    if not config.engine.local:
        raise ConfigError(f"--ray: the {config.engine.kind} server is already running "
                          "elsewhere; a Ray cluster has nothing to launch")
    from harness.config.executor import RayExecutor
    from harness.config.experiment import named_gpus

    named = named_gpus(config.engine)
    if named is not None:  # as the config's own executor: ray would be refused
        raise ConfigError(f"--ray: {named} pins every cell to the same GPUs, while Ray gives "
                          f"each cell's task its own: remove {named} to run on a cluster")
    settings = config.executor.model_dump() if config.executor.kind == "ray" else {}
    executor = RayExecutor.model_validate({**settings, "kind": "ray", "address": address})
    return config.model_copy(update={"executor": executor})


def check_engine_installed(config: ExperimentConfig) -> None:
    """The engine's interpreter has what the engine needs, or one line saying what to install."""
    from harness.engines import installed
    from harness.engines.registry import engine_type

    engine = engine_type(config)
    if not engine.requires:
        return
    python = config.engine.python or sys.executable
    if config.engine.python and not installed.executable(python):
        raise user_error(f"engine.python: {python} is not an executable")
    missing = installed.probe(python, engine.requires)["missing"]
    if missing:
        raise user_error(f"engine {engine.kind}: {', '.join(missing)} not installed for "
                         f"{python}: {engine.install_hint}, or set engine.python")


# vLLM's CUDA wheels are built for CUDA 13 since 0.20 (the tested 0.32 and 0.33 among them),
# which needs an NVIDIA driver of the R580 branch or newer.
CUDA13_VLLM, CUDA13_DRIVER = (0, 20), 580


def check_driver(config: ExperimentConfig) -> None:
    """Refuse, before a GPU hour is spent, a driver too old for the engine's vLLM build."""
    from harness.engines import installed
    from harness.engines.registry import engine_type
    from harness.run.provenance import gpus

    if config.engine.kind != "vllm":
        return
    package = installed.package(config.engine.python, engine_type(config).distributions)
    if package is None or package.package != "vllm" or _release(package.version) < CUDA13_VLLM:
        return
    driver = gpus().get("driver")
    if driver and _release(driver)[0] < CUDA13_DRIVER:
        raise user_error(f"NVIDIA driver {driver} is too old for vllm {package.version} "
                         f"(built for CUDA 13: R{CUDA13_DRIVER} or newer): update the driver, "
                         "or install a vLLM built for CUDA 12 into engine.python")


def _release(version: str) -> tuple[int, ...]:
    """'0.33.0' -> (0, 33, 0); '535.104.05' -> (535, 104, 5); what is not a number stops it."""
    parts = []
    for part in version.split("."):
        digits = "".join(char for char in part if char.isdigit())
        if not digits or digits != part[:len(digits)]:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_gpus(config: ExperimentConfig, plan: list) -> None:
    """Refuse GPUs NVML cannot measure (MIG slices, unknown ids) before anything starts."""
    from harness.run.runner import open_energy_monitor
    from harness.telemetry.gpus import TelemetryError

    widest = max(plan, key=lambda cell: cell.gpus)
    try:
        open_energy_monitor(config, widest).close()
    except TelemetryError as err:
        raise user_error(f"engine.gpus / CUDA_VISIBLE_DEVICES: {err}") from None


def execute(config: ExperimentConfig, config_path: Path, run_name: str, out: Path,
            plan: list) -> int:
    from harness.commands.progress import ClusterDisplay, RunDisplay
    from harness.run.provenance import run_manifest
    from harness.run.runner import Runner
    from harness.store.run_store import ResultsError, RunStore

    with ExitStack() as stack:
        session = None
        if config.executor.kind == "ray":
            from harness.commands.cluster import ray_session

            session = stack.enter_context(ray_session(config))  # exit 2 if unreachable
        store = RunStore(out)
        try:
            store.begin(run_manifest(config, run_name, config_path))
        except ResultsError as err:
            raise user_error(str(err)) from None
        if session is not None:
            session.admit(store)  # lists the nodes into run.json; refuses mismatched ones
        return sweep(config, run_name, out, plan, store,
                     session.runner if session else Runner,
                     ClusterDisplay if session else RunDisplay)


def sweep(config: ExperimentConfig, run_name: str, out: Path, plan: list, store,
          runner, display_type) -> int:
    from harness.commands.cost import print_answer
    from harness.report.run_report.summary import write_summary
    from harness.report.run_report.table import results_table
    from harness.store.run_store import ResultsLost

    restore = _sigterm_as_interrupt()
    began = time.monotonic()
    status, code, outcome = "interrupted", EXIT_INTERRUPTED, None
    searches = config.capacity_search.steps if config.capacity_search else 0
    total = sum(len(cell.points) + searches for cell in plan)
    try:
        with display_type(console, total) as display:
            outcome = runner(config, run_name, store, display).run(plan)
        status = "failed" if outcome.failed_cells else "complete"
        code = EXIT_FAILED_CELLS if outcome.failed_cells else 0
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted:[/yellow] servers stopped; finished points are "
                          f"in {out}. Run the same command to resume.")
    except ResultsLost as err:
        status, code = "failed", EXIT_FAILED_CELLS
        err_console.print(f"[red]stopped:[/red] {escape(str(err))}; servers stopped",
                          highlight=False, soft_wrap=True)
    finally:
        if store.run_json.exists():
            store.end(status)
            frame = write_summary(store)
        restore()
    if status == "failed" and outcome is None:  # stopped by the results directory
        return code
    if status != "interrupted":
        if not frame.empty:
            console.print(results_table(frame, title=f"{run_name} ({out})",
                                        width=console.width))
        console.print(f"{outcome.measured} points measured, {outcome.skipped} already done, "
                      f"in {time.monotonic() - began:.0f} s. Summary: {store.summary_csv}")
        if config.cost.usd_per_hour is None:
            console.print("[dim]$/Mtok: set cost.usd_per_hour in the config to price the "
                          "rows[/dim]")
        if config.cost.profile and not frame.empty:
            print_answer(out, Path(config.cost.profile))
        write_run_report(store)
        for cell_id, reason in outcome.failed_cells.items():
            err_console.print(f"[red]failed:[/red] {cell_id}: {reason} "
                              f"(see {store.server_log(cell_id)})")
    return code


def write_run_report(store) -> None:
    """<run>/report.html; a report that cannot be built is a one-line warning: the results are
    stored already and the exit code stays the run's."""
    from harness.report.run_report.html import build_report

    path = store.root / "report.html"
    try:
        path.write_text(build_report([store.load()]).html, encoding="utf-8")
    except Exception as err:  # noqa: BLE001 - the page must never cost the run its results
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        err_console.print(f"[yellow]warning:[/yellow] no report.html: {first}", highlight=False)
        return
    console.print(f"Report: {path} (open it in a browser)")


def _sigterm_as_interrupt():
    """Make SIGTERM and SIGHUP stop the run like Ctrl-C does, so servers are always stopped."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    return lambda: [signal.signal(sig, old) for sig, old in previous.items()]


def plan_table(config: ExperimentConfig, plan: list, out: Path) -> Table:
    from harness.engines.registry import make_engine
    from harness.store.run_store import RunStore

    store = RunStore(out)
    searches = config.capacity_search.steps if config.capacity_search else 0
    table = Table(title=f"Plan: {len(plan)} server launches, "
                        f"{sum(len(c.points) for c in plan)} load points"
                        f"{f' + up to {searches} capacity steps each' if searches else ''}"
                        f" -> {out}")
    for column in ("cell", "model", "engine", "load points"):
        table.add_column(column)
    for cell in plan:
        points = ", ".join(describe_point(p) + (" (done)" if store.point_done(cell.id, p.id)
                                                else "") for p in cell.points)
        if config.capacity_search:
            cap = config.capacity_search
            span = (f"{cap.min_rate:g}-{cap.max_rate:g} req/s" if cap.max_rate is not None
                    else "up to 1.25x the best rate measured")
            points += (f", capacity search {span} ({cap.steps} steps x {cap.duration_s:g} s"
                       f"{'' if config.capacity else ', on by default with cost.profile'})")
        engine = make_engine(config, cell, store.server_log(cell.id), create=False)
        table.add_row(cell.id, cell.model, engine.describe(), points)
    return table


def minutes(seconds: float) -> str:
    return f"{seconds / 60:,.0f} min" if seconds >= 90 else f"{seconds:,.0f} s"


def expected_time(config: ExperimentConfig, plan: list) -> str:
    """What the plan will cost in wall time: its load, and what comes on top."""
    from harness.run.estimate import estimate

    e = estimate(config, plan)
    parts = [f"{e.points} load points"
             + (f" ({minutes(e.timed_load_s)} of planned arrivals" if e.timed_load_s else "")
             + (f"{'; ' if e.timed_load_s else ' ('}{e.untimed_points} of a request count: as "
                "long as the server takes" if e.untimed_points else "")
             + (")" if e.timed_load_s or e.untimed_points else "")]
    if e.search_steps:
        parts.append(f"up to {e.search_steps} capacity steps ({minutes(e.search_load_s)})")
    extra = [f"{e.launches} server launches (each up to {minutes(e.startup_timeout_s)} to "
             "start)", "warmups"]
    if e.idle_s:
        extra.append(f"up to {minutes(e.idle_s)} of idle baselines")
    if e.fidelity_passes:
        extra.append(f"{e.fidelity_passes} fidelity passes")
    lead = f"about {minutes(e.load_s)} of load: " if e.load_s else ""
    return (f"Expected wall time: {lead}" + ", ".join(parts)
            + f"; plus {', '.join(extra)} and each point's drain (its last replies).")


def describe_point(point) -> str:
    def size(phase) -> str:
        return f"{phase.requests} req" if phase.requests else f"{phase.duration_s:g} s"

    parts = []
    for phase in point.phases:
        if phase.offsets is not None:
            span = max(phase.offsets, default=0.0)
            parts.append(f"replay x {len(phase.offsets)} req over {span:.1f} s")
        elif phase.open_loop:
            r0, r1 = phase.rate
            load = f"{r0:g}" if r0 == r1 else f"{r0:g}->{r1:g}"
            parts.append(f"{load} req/s {phase.arrival} x {size(phase)}")
        else:
            parts.append(f"conc {phase.concurrency} x {size(phase)}")
    return f"{point.id} ({'; '.join(parts)})"
