"""`harness tune`: the space, the search against a known objective (no servers: each trial's
capacity search runs on a synthetic server whose capacity is a known function of its
settings), pruning, resuming, failed trials, and bad input refused before anything starts."""

from __future__ import annotations

import copy
from pathlib import Path

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from harness.cli import app
from harness.config import load_config
from harness.contract.progress import Event
from harness.contract.results import CapacityRecord, CapacityStep, CellFailure
from harness.run.capacity_search import SearchStep, rounded, search
from harness.run.tune import Tuner, best_numbers, failure_reason
from harness.run.tune_space import TuneSpace, short_names, token
from harness.store.run_store import RunStore

runner = CliRunner()

BASE = {
    "model": "dummy:tiny",
    "engine": {"options": {"max_model_len": 512}},
    "matrix": {"variants": {"bf16": {"dtype": "bfloat16"}}},
    "workload": {"input_tokens": 64, "output_tokens": 32},
    "load": {"concurrency": [8], "requests": 16},
    "slo": {"ttft_p95_ms": 500},
    "capacity": {"min_rate": 1, "max_rate": 64, "steps": 6, "grow_to": 1},
    "tune": {"space": {"max_num_seqs": [2, 4, 8, 16],
                       "max_num_batched_tokens": [512, 1024, 2048],
                       "enable_chunked_prefill": [True, False]},
             "trials": 8, "seed": 3},
    "cost": {"usd_per_hour": 2.0},
}


def write(tmp_path: Path, config: dict, name: str = "tune.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def true_capacity(params: dict) -> float:
    """The synthetic server: capacity (req/s) grows with the batch, suffers a small token
    budget, and gains a little from chunked prefill. Best: batch 16, 2048 tokens, chunked."""
    batch = params["max_num_seqs"]
    budget = {512: 0.6, 1024: 0.85, 2048: 1.0}[params["max_num_batched_tokens"]]
    chunked = 1.1 if params["enable_chunked_prefill"] else 1.0
    return 2.5 * batch * budget * chunked


class SyntheticTuner(Tuner):
    """A Tuner whose trials search a synthetic server instead of launching vLLM; it counts
    the launches and the rates each trial probed."""

    def __init__(self, *args, fails=lambda params: False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fails = fails
        self.launched: list[str] = []
        self.probes: dict[str, list[float]] = {}

    def measure(self, runner, cell) -> None:
        params = {"max_num_seqs": cell.max_num_seqs, **cell.options}
        self.launched.append(cell.id)
        if self.fails(params):
            self.store.record_failure(CellFailure(
                cell=cell.id, variant=cell.variant, max_num_seqs=cell.max_num_seqs,
                tensor_parallel_size=1, reason="server exited with code 1 during startup",
                log_tail="ValueError: this combination is refused", points=[],
                failed_at="2026-12-07T00:00:00+00:00"))
            return
        truth = true_capacity(params)
        probes = self.probes.setdefault(cell.id, [])

        def measure(rate: float) -> SearchStep:
            probes.append(rate)
            return SearchStep(rate, f"search-r{rate:g}", rate <= truth, [])

        cap = self.config.capacity_search
        found = search(measure, *runner.search_rates(cell), cap.steps, None, runner.give_up)
        best = found.best
        steps = [CapacityStep(rate_rps=s.rate, point=s.point, meets_slo=s.meets,
                              violations=[]) for s in found.steps]
        record = CapacityRecord(slo=self.config.slo, steps=steps, meets_slo=best is not None,
                                rate_rps=best.rate if best else None,
                                point=best.point if best else None,
                                output_throughput=best.rate * 32 if best else None,
                                total_token_throughput=best.rate * 96 if best else None)
        self.store.save_capacity(cell.id, record)


def tuner(tmp_path: Path, config: dict, trials: int | None = None, **kwargs) -> SyntheticTuner:
    loaded = load_config(write(tmp_path, config))
    store = RunStore(tmp_path / "run")
    events: list[Event] = []
    return SyntheticTuner(loaded, "tune", store, events.append,
                          trials if trials is not None else loaded.tune.trials, None, **kwargs)


# --- the space -----------------------------------------------------------------------------

def test_space_names_cells_after_their_parameters(tmp_path):
    space = TuneSpace(load_config(write(tmp_path, BASE)))
    cell = space.cell({"max_num_seqs": 8, "max_num_batched_tokens": 1024,
                       "enable_chunked_prefill": False})
    assert cell.id == "bf16-mnbt1024-ecpoff-b8"
    assert cell.options == {"max_model_len": 512, "dtype": "bfloat16",
                            "max_num_batched_tokens": 1024, "enable_chunked_prefill": False}
    assert space.grid_size() == 24
    assert short_names(["max_num_seqs", "max_new_seqs"]) == {"max_num_seqs": "maxnumseqs",
                                                             "max_new_seqs": "maxnewseqs"}
    assert [token(v) for v in (True, 0.9, "fp8_e4m3", None)] == ["on", "0.9", "fp8_e4m3", "none"]


def test_the_matrix_variants_are_one_parameter_and_fidelity_follows_quantization(tmp_path):
    config = copy.deepcopy(BASE)
    config["matrix"]["variants"]["fp8-kv"] = {"dtype": "bfloat16", "kv_cache_dtype": "fp8"}
    config["fidelity"] = {"baseline": "bf16", "max_kl": 0.01}
    space = TuneSpace(load_config(write(tmp_path, config)))
    assert space.parameters["variant"] == ["bf16", "fp8-kv"]
    first = space.first_params()
    assert first["variant"] == "bf16"
    cell = space.cell({**first, "variant": "fp8-kv"})
    assert cell.variant.startswith("fp8-kv-") and cell.fidelity_variant == "fp8-kv"
    assert cell.options["kv_cache_dtype"] == "fp8"


def test_ranges_make_grids():
    from harness.config.tune import FloatRange, IntRange

    assert IntRange(low=256, high=2048, log=True).grid() == [256, 512, 1024, 2048]
    assert IntRange(low=2, high=8, step=2).grid() == [2, 4, 6, 8]
    assert FloatRange(low=0.8, high=0.95, step=0.05).grid() == [0.8, 0.85, 0.9, 0.95]
    assert FloatRange(low=0.8, high=0.95).grid() is None


def test_a_search_that_cannot_win_gives_up_after_the_step_that_shows_it():
    truth, probes = 20.0, []

    def measure(rate):
        probes.append(rate)
        return SearchStep(rate, f"r{rate:g}", rate <= truth, [])

    whole = search(measure, 5, 40, 8)
    assert len(whole.steps) == 8 and whole.best.rate <= truth
    probes.clear()
    stopped = search(measure, 5, 40, 8, give_up=lambda step: not step.meets and step.rate <= 60)
    assert probes == [5, 40] and stopped.best.rate == 5  # the miss at 40 <= 60 ends it


# --- the search against a known objective --------------------------------------------------

def test_the_grid_finds_the_known_optimum(tmp_path):
    config = copy.deepcopy(BASE)
    config["tune"] = {**config["tune"], "sampler": "grid", "trials": None}
    found = tuner(tmp_path, config, trials=24)
    record = found.run()
    assert len(record.trials) == 24 and len(found.launched) == 24
    best = record.best_trial
    assert best.params == {"max_num_seqs": 16, "max_num_batched_tokens": 2048,
                           "enable_chunked_prefill": True}
    values = {t.number: t.values[0] for t in record.trials if t.state == "complete"}
    assert values[best.number] == max(values.values())
    # the objective is output tokens per dollar-hour: $/Mtok = price / (tok/s x 3600 / 1e6)
    assert best.usd_per_mtok == pytest.approx(2.0 / (best.output_throughput * 3600 / 1e6))


def test_tpe_in_a_third_of_the_grid_gets_near_the_optimum_and_prunes(tmp_path):
    found = tuner(tmp_path, BASE)
    record = found.run()
    assert len(found.launched) == 8 == len({t.cell for t in record.trials})
    assert record.launches == 8 and len(record.trials) >= 8  # repeats are read back, free
    optimum = rounded(true_capacity({"max_num_seqs": 16, "max_num_batched_tokens": 2048,
                                     "enable_chunked_prefill": True}))
    assert record.best_trial.capacity_rps >= 0.7 * optimum
    pruned = [t for t in record.trials if t.state == "pruned"]
    assert pruned, [t.state for t in record.trials]
    complete = [t for t in record.trials if t.state == "complete"]
    assert min(len(found.probes[t.cell]) for t in pruned) < \
        max(len(found.probes[t.cell]) for t in complete)
    # a later trial's first probe is prune_below of the rate it needs to beat the best so far
    assert all(t.reason for t in pruned)


def test_a_rerun_continues_the_study_and_measures_nothing_twice(tmp_path):
    first = tuner(tmp_path, BASE, trials=4)
    first.run()
    again = tuner(tmp_path, BASE, trials=4)
    record = again.run()
    cells = lambda record: {t.cell for t in record.trials}  # noqa: E731
    assert again.launched == [] and len(cells(record)) == 4
    more = tuner(tmp_path, BASE, trials=7)
    record = more.run()
    assert len(cells(record)) == 7
    assert not set(more.launched) & set(first.launched)  # a known cell is read back
    assert record.launches == len(set(first.launched) | set(more.launched))
    assert RunStore(tmp_path / "run").read_tune().trials == record.trials


def test_a_trial_cut_off_is_proposed_again(tmp_path):
    first = tuner(tmp_path, BASE, trials=2)
    first.run()
    study = optuna.load_study(study_name="tune",
                              storage=f"sqlite:///{tmp_path / 'run' / 'tune' / 'study.db'}")
    cut = study.ask({"max_num_seqs": optuna.distributions.CategoricalDistribution([2, 4, 8, 16]),
                     "max_num_batched_tokens":
                         optuna.distributions.CategoricalDistribution([512, 1024, 2048]),
                     "enable_chunked_prefill":
                         optuna.distributions.CategoricalDistribution([True, False])})
    again = tuner(tmp_path, BASE, trials=3)
    record = again.run()
    resumed = [t for t in record.trials if t.number > cut.number]
    assert resumed[0].params == cut.params  # proposed first, before anything new
    assert study.trials[cut.number].state == optuna.trial.TrialState.FAIL


def test_a_refused_combination_is_a_failed_trial_and_the_study_goes_on(tmp_path):
    found = tuner(tmp_path, BASE, fails=lambda p: not p["enable_chunked_prefill"]
                  and p["max_num_batched_tokens"] < 1024)
    record = found.run()
    failed = [t for t in record.trials if t.state == "failed"]
    assert failed and len({t.cell for t in record.trials}) == 8
    assert all(t.reason.endswith("ValueError: this combination is refused") for t in failed)
    assert record.best_trial is not None


def test_the_pareto_front_holds_no_dominated_trial():
    from harness.contract.tune import TrialRecord

    def trial(n, values):
        return TrialRecord(number=n, params={}, cell=f"c{n}", variant="v", state="complete",
                           values=values)

    trials = [trial(0, [10, 1]), trial(1, [5, 5]), trial(2, [4, 4]), trial(3, [1, 10])]
    assert best_numbers(trials, "pareto") == [0, 1, 3]
    assert best_numbers(trials, "cost") == [0]


def test_a_failure_names_the_engines_own_reason():
    tail = ("Traceback\n  File \"x.py\", line 1, in <module>\n"
            "pydantic_core._pydantic_core.ValidationError: 1 validation error for X\n"
            "  Value error, max_num_batched_tokens (256) is smaller than max_model_len (512). "
            "[type=value_error, input_value=...]\n"
            "    For further information visit https://errors.pydantic.dev/2/v/value_error")
    assert failure_reason("exited", tail) == \
        "exited: max_num_batched_tokens (256) is smaller than max_model_len (512)."


# --- bad input: one line, exit 2, nothing started ------------------------------------------

@pytest.fixture
def nothing_starts(monkeypatch):
    def started(*args, **kwargs):
        raise AssertionError("a bad input got as far as starting the tune")

    monkeypatch.setattr("harness.store.run_store.RunStore.begin", started)
    monkeypatch.setattr("harness.engines.vllm.engine_option_names", lambda python: {
        "max_num_batched_tokens", "enable_chunked_prefill", "kv_cache_dtype", "dtype"})


def changed(**tune) -> dict:
    config = copy.deepcopy(BASE)
    config["tune"] = {**config["tune"], **tune}
    return config


@pytest.mark.parametrize("config, expected", [
    (changed(space={}), "tune.space: empty"),
    (changed(space={"max_num_batched_tokens": {"low": 2048, "high": 256}}),
     "low 2048 is above high 256"),
    (changed(trials=0), "a budget of 0 runs nothing"),
    (changed(minutes=0), "a budget of 0 runs nothing"),
    (changed(space={"kv_cache_dtype": ["auto", "fp8"]}),
     "kv_cache_dtype changes the model's numbers"),
    (changed(space={"max_num_seqs": []}), "an empty list of values"),
    (changed(space={"port": [8000, 8001]}), "set by the harness"),
    (changed(space={"speculative_magic": [1, 2]}), "tune.space.speculative_magic: not an "
                                                   "option of this vLLM"),
    ({k: v for k, v in BASE.items() if k != "tune"}, "no `tune:` section"),
    ({**BASE, "slo": None, "capacity": None}, "set `slo`"),
    ({**BASE, "matrix": {**BASE["matrix"], "workloads": {"rag": {"input_tokens": 256}}}},
     "remove matrix.workloads"),
])
def test_bad_tune_input_is_one_line(tmp_path, nothing_starts, config, expected):
    config = {k: v for k, v in config.items() if v is not None}
    result = runner.invoke(app, ["tune", str(write(tmp_path, config)), "--out",
                                 str(tmp_path / "out")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert expected in lines[0], lines[0]


def test_a_zero_trials_budget_on_the_command_line_is_refused(tmp_path, nothing_starts):
    result = runner.invoke(app, ["tune", str(write(tmp_path, BASE)), "--trials", "0"])
    assert result.exit_code == 2 and "--trials" in result.output


def test_dry_run_prints_the_space_and_starts_nothing(tmp_path, nothing_starts):
    result = runner.invoke(app, ["tune", str(write(tmp_path, BASE)), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "24 combinations in the grid; budget 8 trials" in result.output
    assert not (tmp_path / "out").exists()


def test_configs_without_tune_hash_as_before(tmp_path):
    plain = {k: v for k, v in BASE.items() if k != "tune"}
    assert load_config(write(tmp_path, plain, "a.yaml")).hash() == \
        load_config(write(tmp_path, {**plain, "tune": None}, "b.yaml")).hash()
    more = changed(trials=50)
    assert load_config(write(tmp_path, BASE, "c.yaml")).hash() == \
        load_config(write(tmp_path, more, "d.yaml")).hash()  # the budget is not the study
    assert load_config(Path("configs/quickstart.yaml")).hash() == "2c98d159a5b87faa"


def test_the_last_third_of_the_budget_moves_the_best_one_parameter_at_a_time(tmp_path):
    from harness.config.tune import IntRange
    from harness.run.tune_space import adjacent

    space = TuneSpace(load_config(write(tmp_path, BASE)))
    best = {"max_num_seqs": 16, "max_num_batched_tokens": 1024, "enable_chunked_prefill": True}
    moved = space.neighbours(best, order=["enable_chunked_prefill", "max_num_seqs",
                                          "max_num_batched_tokens"])
    assert moved == [{**best, "enable_chunked_prefill": False}, {**best, "max_num_seqs": 8},
                     {**best, "max_num_batched_tokens": 2048},
                     {**best, "max_num_batched_tokens": 512}]
    assert adjacent(IntRange(low=256, high=4096, log=True), 1024) == [2048, 512]
    assert adjacent(IntRange(low=1, high=9, step=4), 9) == [5]
    found = tuner(tmp_path, BASE)
    record = found.run()
    tail = record.trials[-2:]  # proposed as neighbours of the best measured before them
    assert all(sum(t.params[k] != record.trial(n).params[k] for k in t.params) == 1
               for t in tail for n in [max((x for x in record.trials if x.number < t.number
                                            and x.state == "complete"),
                                           key=lambda x: x.values[0]).number])


def test_the_trials_table_leaves_columns_out_rather_than_cut_a_name(tmp_path):
    from rich.console import Console

    from harness.report.run_report.tune import trials_table

    record = tuner(tmp_path, BASE).run()
    for width in (80, 200):
        console = Console(width=width, record=True)
        console.print(trials_table(record, width))
        text = console.export_text()
        assert all(t.cell in text for t in record.trials), text
        assert ("left out at this width" in text) == (width == 80)
