"""`harness tune`: Optuna proposes engine settings; each trial is one ordinary cell (a server
launch, the config's load points, the open-loop capacity search at the SLO with the
sustained-rate rule), stored in the run directory like every other cell.

The study lives in the run directory (tune/study.db), so an interrupted tune continues where
it stopped: a trial whose cell is measured is read back, never measured again; a trial that
was cut off is proposed again and finishes from its stored points.

Pruning: once a trial has won, every later trial first probes `prune_below` of the rate it
would need to beat the best. A miss there ends it after one probe; later, any miss at or below
the rate it needs ends its search (it can no longer win).
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from harness.config import ExperimentConfig
from harness.contract.plan import Cell
from harness.contract.progress import Emit, Notice
from harness.contract.tune import TrialRecord, TuneRecord
from harness.run.capacity_search import SearchStep
from harness.run.runner import Runner
from harness.run.tune_space import TuneSpace
from harness.store.run_store import RunStore

DIRECTIONS = {"cost": ["maximize"], "capacity": ["maximize"],
              "pareto": ["maximize", "maximize"]}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
REFINE_SHARE = 1 / 3  # of a trial budget: the best trial's neighbours, measured last
MAX_PROPOSALS = 4  # proposals per configuration of the budget, before a small space ends it


class TrialFailed(Exception):
    """The trial's server failed, or the trial broke a constraint: a failed trial."""


@dataclass
class Best:
    """The best trial so far (single objective): its value and its capacity's rate."""

    number: int
    value: float
    rate_rps: float
    usd_per_hour: float


class TrialRunner(Runner):
    """A Runner whose capacity search starts where it could still beat the best trial, and
    gives up once it cannot."""

    def __init__(self, *args, need_rps: float | None, prune_below: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.need_rps = need_rps  # the rate this trial must sustain to beat the best
        self.prune_below = prune_below
        self.gave_up: str | None = None

    def search_rates(self, cell: Cell) -> tuple[float, float] | None:
        rates = super().search_rates(cell)
        if rates is None or self.need_rps is None:
            return rates
        low = max(rates[0], self.prune_below * self.need_rps)
        return low, max(rates[1], 2 * low)

    def give_up(self, step: SearchStep) -> bool:
        if self.need_rps is not None and not step.meets and step.rate <= self.need_rps:
            self.gave_up = (f"missed at {step.rate:g} req/s, where it needed "
                            f"{self.need_rps:.3g} req/s to beat the best")
            return True
        return False


@dataclass
class Tuner:
    config: ExperimentConfig
    run_name: str
    store: RunStore
    emit: Emit
    trials: int | None  # the budget (None: minutes only)
    minutes: float | None
    space: TuneSpace = field(init=False)
    began: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.space = TuneSpace(self.config)
        self.tune = self.config.tune
        self.objective = self.tune.objective
        self.widest = max(self.space.cell(p).gpus for p in self.corner_params())

    # --- the study -----------------------------------------------------------------------

    def study(self) -> optuna.Study:
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials are reported here
        self.store.tune_dir.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{self.store.tune_dir / 'study.db'}"
        seed = self.tune.seed if self.tune.seed is not None else self.config.seed
        study = optuna.create_study(
            study_name=self.run_name, storage=storage, load_if_exists=True,
            directions=DIRECTIONS[self.objective], sampler=self.sampler(seed))
        self.resume_cut_off(study)
        if not study.trials and self.config.fidelity is not None:
            study.enqueue_trial(self.space.first_params())  # the baseline, measured first
        return study

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        if self.tune.sampler == "grid":
            return optuna.samplers.GridSampler(self.space.grid(), seed=seed)
        if self.tune.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if self.objective == "pareto":
            return optuna.samplers.NSGAIISampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(4, self.startup()))

    def startup(self) -> int:
        """Random trials before TPE models the space: a third of the budget, at least 2."""
        return max(2, (self.trials or 12) // 3)

    def resume_cut_off(self, study: optuna.Study) -> None:
        """Trials left running by an interrupted tune: failed in the study and proposed again
        (their cells' finished points are read back)."""
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study.tell(trial.number, state=TrialState.FAIL)
            study.enqueue_trial(trial.params)

    def run(self) -> TuneRecord:
        """Trials until the budget is spent (those of earlier runs of the study count)."""
        study = self.study()
        self.current = self.record(study)
        timeout = None if self.minutes is None else max(1.0, 60 * self.minutes)
        if not self.spent(self.current):
            study.optimize(self.objective_of, timeout=timeout, catch=(TrialFailed,),
                           callbacks=[self.after_trial])
        record = self.record(study, importance=True)
        self.store.save_tune(record)
        return record

    def spent(self, record: TuneRecord) -> bool:
        """The budget counts configurations measured (a proposal measured before is read
        back, free); the study also ends once every point of a grid is measured, or after
        MAX_PROPOSALS x the budget proposals (a space smaller than the budget)."""
        measured = len({t.cell for t in record.trials})
        if self.trials is not None and (measured >= self.trials or
                                        len(record.trials) >= MAX_PROPOSALS * self.trials):
            return True
        size = self.space.grid_size()
        return size is not None and measured >= size

    def objective_of(self, trial: optuna.Trial) -> list[float]:
        """One trial, as Optuna's objective: its values, or TrialPruned / TrialFailed."""
        result = self.run_trial(trial, self.current)
        self.last = result
        for key in ("state", "cell", "launched", "minutes", "reason"):
            trial.set_user_attr(key, getattr(result, key))
        if result.state == "complete":
            return result.values
        if result.state == "pruned":
            if result.values is not None and len(result.values) == 1:
                trial.report(result.values[0], 0)  # what it reached: TPE learns from it
            raise optuna.TrialPruned(result.reason)
        raise TrialFailed(result.reason)

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.current = self.record(study)
        self.store.save_tune(self.current)
        self.emit(Notice(describe(self.last), "info"))
        if self.spent(self.current):
            study.stop()
        elif self.refining(self.current):
            self.enqueue_neighbour(study, self.current)

    def refining(self, record: TuneRecord) -> bool:
        """The last REFINE_SHARE of a trial budget goes to the best trial's neighbours."""
        if self.trials is None or self.objective == "pareto" or self.tune.sampler != "tpe":
            return False
        measured = len({t.cell for t in record.trials})
        return measured >= self.trials - max(1, int(self.trials * REFINE_SHARE))

    def enqueue_neighbour(self, study: optuna.Study, record: TuneRecord) -> None:
        """Propose next the best trial with one parameter moved to a value next to its own,
        not measured yet (TPE over a small budget can miss the optimum beside its best)."""
        best = record.best_trial
        if best is None:
            return
        measured = {t.cell for t in record.trials}
        weight = importances(study)  # the parameter that matters most, moved first
        for params in self.space.neighbours(best.params, order=sorted(
                self.space.parameters, key=lambda name: -weight.get(name, 0.0))):
            if self.space.cell(params).id not in measured:
                study.enqueue_trial(params)
                return

    # --- one trial -----------------------------------------------------------------------

    def run_trial(self, trial: optuna.Trial, record: TuneRecord) -> TrialRecord:
        began = time.monotonic()
        params = self.space.suggest(trial)
        cell = self.space.cell(params)
        best = self.best(record)
        known = self.store.read_capacity(cell.id) is not None or \
            self.store.read_failure(cell.id) is not None
        runner = TrialRunner(self.config, self.run_name, self.store, self.emit,
                             need_rps=self.need_rps(cell, best),
                             prune_below=self.tune.prune_below)
        if not known:
            self.measure(runner, cell)
        result = self.judge(trial.number, params, cell, best, runner.gave_up)
        result.launched = not known
        result.minutes = round((time.monotonic() - began) / 60, 2)
        return result

    def measure(self, runner: TrialRunner, cell: Cell) -> None:
        """Launch the cell's server, measure its points, search its capacity (all stored)."""
        runner.run([cell])

    def need_rps(self, cell: Cell, best: Best | None) -> float | None:
        """The rate this cell must sustain to beat the best (single objectives only)."""
        if best is None or self.objective == "pareto":
            return None
        return best.rate_rps * self.usd_per_hour(cell) / best.usd_per_hour

    def judge(self, number: int, params: dict[str, Any], cell: Cell, best: Best | None,
              gave_up: str | None) -> TrialRecord:
        base = dict(number=number, params=params, cell=cell.id, variant=cell.variant,
                    gpus=cell.gpus, peak_mem_used_gib=self.peak_memory(cell))
        failure = self.store.read_failure(cell.id)
        capacity = self.store.read_capacity(cell.id)
        if failure is not None or capacity is None:
            reason = failure_reason(failure.reason, failure.log_tail) if failure is not None \
                else "no capacity was searched"
            return TrialRecord(**base, state="failed", reason=reason)
        figures = self.figures(cell, capacity)
        record = TrialRecord(**base, state="complete", **figures)
        infeasible = self.infeasible(cell, record)
        if infeasible:
            return record.model_copy(update={"state": "infeasible", "reason": infeasible})
        if not capacity.meets_slo:
            why = f"even {capacity.steps[0].rate_rps:g} req/s misses the SLO"
            if best is None:  # no capacity at this SLO: a result, not a prune
                return record.model_copy(update={"reason": f"no capacity: {why}"})
            why += f" (the probe at {self.tune.prune_below:g} x what beating trial " \
                   f"{best.number} needs)"
            return record.model_copy(update={"state": "pruned", "reason": why})
        if gave_up:
            return record.model_copy(update={"state": "pruned", "reason": gave_up})
        return record

    def figures(self, cell: Cell, capacity) -> dict[str, Any]:
        """The capacity's figures and the objective's values."""
        out = capacity.output_throughput or 0.0
        price = self.usd_per_hour(cell)
        point = self.store.read_point(cell.id, capacity.point) if capacity.point else None
        tpot = point.metrics.tpot_ms.p50 if point is not None else None
        per_user = 1000 / tpot if tpot else 0.0
        usd_per_mtok = price / (out * 3600 / 1e6) if out and self.config.cost.usd_per_hour \
            else None
        values = {"cost": [out / price], "capacity": [out],
                  "pareto": [out / cell.gpus, per_user]}[self.objective]
        return dict(capacity_rps=capacity.rate_rps, output_throughput=capacity.output_throughput,
                    total_token_throughput=capacity.total_token_throughput,
                    usd_per_mtok=usd_per_mtok, tokens_per_s_per_user=per_user or None,
                    values=values)

    def infeasible(self, cell: Cell, record: TrialRecord) -> str | None:
        from harness.metrics.fidelity import missed

        limit = self.tune.max_gpu_memory_gib
        if limit is not None and record.peak_mem_used_gib is not None and \
                record.peak_mem_used_gib > limit:
            return f"peak GPU memory {record.peak_mem_used_gib:.1f} GiB > {limit:g} GiB"
        if self.config.fidelity is None:
            return None
        fidelity = self.store.read_fidelity(cell.fidelity_variant)
        if fidelity is not None and fidelity.status == "not measured":
            return f"fidelity not measured: {fidelity.reason}"
        return missed(fidelity, self.config.fidelity)

    def peak_memory(self, cell: Cell) -> float | None:
        peaks = [result.energy.peak_mem_used_gib for point in cell.points
                 if (result := self.store.read_point(cell.id, point.id)) is not None
                 and result.energy.peak_mem_used_gib is not None]
        return max(peaks, default=None)

    def usd_per_hour(self, cell: Cell) -> float:
        """What the trial's server costs an hour: its share (GPUs used of the widest trial's)
        of cost.usd_per_hour; without a price, its GPUs (the same order as any GPU price)."""
        price = self.config.cost.usd_per_hour
        return price * cell.gpus / self.widest if price else float(cell.gpus)

    def corner_params(self) -> list[dict[str, Any]]:
        """Enough parameter sets to find the widest trial (every parallelism value)."""
        base = self.space.first_params()
        sizes = self.space.parameters.get("tensor_parallel_size")
        if not isinstance(sizes, list):
            return [base]
        return [{**base, "tensor_parallel_size": size} for size in sizes]

    # --- the record ----------------------------------------------------------------------

    def best(self, record: TuneRecord) -> Best | None:
        best = record.best_trial
        if best is None or self.objective == "pareto" or not best.capacity_rps:
            return None
        cell = self.space.cell(best.params)
        return Best(best.number, best.values[0], best.capacity_rps, self.usd_per_hour(cell))

    def record(self, study: optuna.Study, importance: bool = False) -> TuneRecord:
        trials = [self.trial_record(t) for t in study.get_trials(deepcopy=False,
                                                                  states=FINISHED)]
        trials = [t for t in trials if t is not None]
        complete = [t for t in trials if t.state == "complete"]
        return TuneRecord(
            objective=self.objective, directions=DIRECTIONS[self.objective],
            sampler=self.tune.sampler, space=self.space.described(),
            usd_per_hour=self.config.cost.usd_per_hour, trials=trials,
            best=best_numbers(complete, self.objective),
            importance=importances(study) if importance else {},
            launches=sum(t.launched for t in trials),
            minutes=round(sum(t.minutes for t in trials), 2))

    def trial_record(self, trial: optuna.trial.FrozenTrial) -> TrialRecord | None:
        """The stored trial, judged again from its cell (the study keeps only params)."""
        cell_id = trial.user_attrs.get("cell")
        if cell_id is None:
            return None
        cell = self.space.cell(trial.params)
        result = self.judge(trial.number, trial.params, cell, None, None)
        said = {key: trial.user_attrs[key] for key in ("state", "reason", "launched", "minutes")
                if key in trial.user_attrs}  # as judged when it ran (against the best then)
        return result.model_copy(update=said)


def failure_reason(reason: str, log_tail: str) -> str:
    """The cell's failure with the engine's own words for it (the last error line of its
    log: an invalid combination names itself there)."""
    lines = [line.strip() for line in log_tail.splitlines()
             if re.search(r"error", line, re.IGNORECASE) and not line.strip().startswith("File ")
             and "errors.pydantic.dev" not in line]
    if not lines:
        return reason
    said = re.sub(r"\s*\[type=.*$", "", lines[-1].removeprefix("Value error, "))
    said = re.split(r"(?<=\.)\s", said, maxsplit=1)[0]  # its first sentence
    return f"{reason}: {said[:240]}"


def best_numbers(complete: list[TrialRecord], objective: str) -> list[int]:
    """The best trial (single objectives: ties go to the earlier), or the Pareto front."""
    if not complete:
        return []
    if objective != "pareto":
        return [max(complete, key=lambda t: (t.values[0], -t.number)).number]
    front = [t for t in complete
             if not any(dominates(o.values, t.values) for o in complete if o is not t)]
    return sorted(t.number for t in front)


def dominates(a: list[float], b: list[float]) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True)) and a != b


def importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's parameter importances (its default evaluator) over the complete trials; {}
    where they cannot be told (fewer than two complete trials, or a parameter that never
    varied)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    target: Callable | None = None
    if len(study.directions) > 1:
        target = lambda t: t.values[0]  # noqa: E731 (throughput per GPU)
    try:
        with warnings.catch_warnings():  # a few trials often give equal importances: say so
            warnings.simplefilter("ignore")  # in the numbers, not in a warning mid-table
            found = optuna.importance.get_param_importances(study, target=target)
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}
    return {name: round(float(value), 4) for name, value in found.items()}


def describe(trial: TrialRecord) -> str:
    head = f"trial {trial.number} ({trial.cell}): {trial.state}"
    if trial.capacity_rps:
        head += f", capacity {trial.capacity_rps:g} req/s = {trial.output_throughput:,.1f} " \
                "out tok/s"
    if trial.usd_per_mtok is not None:
        head += f", ${trial.usd_per_mtok:,.3f}/Mtok out"
    if trial.reason:
        head += f" ({trial.reason})"
    if not trial.launched:
        head += " [read back, no launch]"
    return head
