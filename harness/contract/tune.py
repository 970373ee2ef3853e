"""What `harness tune` stores besides its cells: tune/trials.json, the study in words.

Each trial is an ordinary cell of the run (its points and capacity.json under cells/); this
record says which parameters each trial had, what it cost and why it stopped, which trials are
best, and how much each parameter mattered. Optuna's own study (tune/study.db) is what a rerun
continues; this file is what the report and `harness cost` read.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from harness.contract.stored import SCHEMA_VERSION, Stored

TrialState = Literal["complete", "pruned", "failed", "infeasible"]


class TrialRecord(Stored):
    number: int  # Optuna's trial number, from 0
    params: dict[str, Any]
    cell: str  # its cell under cells/ (the same parameters always make the same cell)
    variant: str
    state: TrialState
    reason: str | None = None  # why it was pruned, failed or infeasible
    capacity_rps: float | None = None  # the highest sustained rate at the SLO (a lower bound
    output_throughput: float | None = None  # when pruned); output tok/s there
    total_token_throughput: float | None = None
    usd_per_mtok: float | None = None  # output tokens, at cost.usd_per_hour
    tokens_per_s_per_user: float | None = None  # 1000 / median TPOT at the capacity
    gpus: int = 1
    peak_mem_used_gib: float | None = None
    values: list[float] | None = None  # the objective's values, as Optuna was told
    launched: bool = False  # a server started for it (False: read back from its cell)
    minutes: float = 0.0


class TuneRecord(Stored):
    schema_version: int = SCHEMA_VERSION
    objective: Literal["cost", "capacity", "pareto"]
    directions: list[Literal["maximize", "minimize"]]
    sampler: str
    space: dict[str, Any]  # parameter -> its values or range, as searched
    usd_per_hour: float | None = None
    trials: list[TrialRecord] = Field(default_factory=list)
    best: list[int] = Field(default_factory=list)  # trial numbers: the best, or the front
    importance: dict[str, float] = Field(default_factory=dict)  # Optuna's, summing to 1
    launches: int = 0
    minutes: float = 0.0

    def trial(self, number: int) -> TrialRecord:
        return next(t for t in self.trials if t.number == number)

    @property
    def best_trial(self) -> TrialRecord | None:
        return self.trial(self.best[0]) if self.best else None
