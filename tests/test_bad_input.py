"""The bad-input battery: every input a user writes (configs, lengths files, profiles, price
files, results directories, command-line arguments, traces and trace phases), each wrong in
one way, answered with one `error:` line naming the file and the field, exit 2, no traceback,
and nothing started. (tests/test_config.py, tests/test_cost_cli.py and tests/test_trace.py hold the
earlier cases, which this file does not repeat.)"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from harness.cli import app
from harness.store.run_store import RunStore

from .test_config import GOOD, with_changes

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "results" / "quickstart-cpu-2vcpu"
PROFILE = REPO / "configs" / "profile-example.yaml"

runner = CliRunner()
BEGIN = RunStore.begin


@pytest.fixture(autouse=True)
def nothing_starts(monkeypatch):
    """Any attempt to run a sweep or write a results directory fails the test."""
    def started(*args, **kwargs):
        raise AssertionError("a bad input got as far as starting the run")

    monkeypatch.setattr("harness.run.runner.Runner.run", started)
    monkeypatch.setattr("harness.store.run_store.RunStore.begin", started)


def assert_one_line_error(result, *expected: str) -> None:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for text in expected:
        assert text in lines[0], (text, lines[0])


def dump(value: object) -> str:
    return value if isinstance(value, str) else yaml.safe_dump(value)


# --- configs: `harness run CONFIG` ---------------------------------------------------------

DUPLICATE_MODEL = """\
model: dummy:tiny
workload: {input_tokens: 16, output_tokens: 4}
load: {concurrency: [1], requests: 4}
model: dummy:small
"""
DUPLICATE_ENGINE = """\
model: dummy:tiny
engine: {kind: vllm}
workload: {input_tokens: 16, output_tokens: 4}
load: {concurrency: [1], requests: 4}
engine: {kind: transformers}
"""
DUPLICATE_NESTED = """\
model: dummy:tiny
workload: {input_tokens: 16, output_tokens: 4}
load:
  concurrency: [1]
  requests: 4
  concurrency: [2]
"""
EXTERNAL = {"kind": "external", "url": "http://127.0.0.1:9"}


def external(**engine) -> dict:
    """GOOD measured on an external server (which has no matrix to set)."""
    config = {key: value for key, value in GOOD.items() if key != "matrix"}
    return {**config, "engine": {**EXTERNAL, **engine}}


CONFIGS = {
    "rate-inf": ("model: dummy:tiny\nworkload: {input_tokens: 16, output_tokens: 4}\n"
                 "load: {rates: [.inf], requests: 4}\n", "load.rates.0: Input should be a finite"),
    "rate-nan": (with_changes(load={"concurrency": None, "rates": [float("nan")]}),
                 "load.rates.0: Input should be a finite"),
    "duration-inf": (with_changes(load={"requests": None, "duration_s": float("inf")}),
                     "load.duration_s: Input should be a finite"),
    "timeout-inf": (with_changes(load={"request_timeout_s": float("inf")}),
                    "load.request_timeout_s: Input should be a finite"),
    "backoff-nan": (with_changes(load={"retry": {"backoff_s": float("nan")}}),
                    "load.retry.backoff_s: Input should be a finite"),
    "usd-per-hour-nan": (with_changes(cost={"usd_per_hour": float("nan")}),
                         "cost.usd_per_hour: Input should be a finite"),
    "metrics-interval-inf": (with_changes(telemetry={"engine_metrics_interval_s": float("inf")}),
                             "telemetry.engine_metrics_interval_s: Input should be a finite"),
    "normal-mean-inf": (with_changes(workload={"input_tokens": {
        "dist": "normal", "mean": float("inf"), "std": 1}}), "workload.input_tokens.mean"),
    "startup-timeout-inf": (with_changes(engine={"startup_timeout_s": float("inf")}),
                            "engine.vllm.startup_timeout_s: Input should be a finite"),
    "slo-inf": (with_changes(slo={"ttft_p95_ms": float("inf")}),
                "slo.latency_ms.ttft_p95_ms: Input should be a finite"),
    "ramp-inf": (with_changes(load={"concurrency": None, "scenarios": {"peak": [
        {"rate": [1, float("inf")], "duration_s": 5}]}}), "load.scenarios.peak.0.rate"),
    "model-twice": (DUPLICATE_MODEL,
                    "line 4, column 1: duplicate key 'model' (first set at line 1)"),
    "engine-twice": (DUPLICATE_ENGINE,
                     "line 5, column 1: duplicate key 'engine' (first set at line 2)"),
    "nested-key-twice": (DUPLICATE_NESTED,
                         "line 6, column 3: duplicate key 'concurrency' (first set at line 4)"),
    "external-key-unset": (external(api_key_env="HARNESS_TEST_UNSET_KEY"),
                           "engine.api_key_env: the environment variable "
                           "HARNESS_TEST_UNSET_KEY is not set"),
    "external-no-url": (external(url=None),
                        "the external engine needs `url`"),
    "external-bad-url": (external(url="ftp://x"),
                         "engine.external.url: must be an http:// or https:// URL"),
    "external-batch": (with_changes(engine=EXTERNAL, matrix={"max_num_seqs": [2]}),
                       "matrix.max_num_seqs: the external engine has no batch-size limit"),
    "engine-kind": (with_changes(engine={"kind": "sglang"}), "unknown engine kind"),
    "retry-zero": (with_changes(load={"retry": {"max_tries": 0}}), "load.retry.max_tries"),
    "prefix-share": (with_changes(workload={"shared_prefix": {"share": 1.5}}),
                     "workload.shared_prefix.share"),
    "one-turn": (with_changes(workload={"conversation": {"turns": 1}}),
                 "workload.conversation.turns"),
    "name-path": (with_changes(name="../elsewhere"), "name: must be letters, digits"),
    "prefix-cache": (with_changes(workload={"prefix_cache": "maybe"}), "workload.prefix_cache"),
    "ramp-three": (with_changes(load={"concurrency": None, "scenarios": {"peak": [
        {"rate": [1, 2, 3], "duration_s": 5}]}}), "a ramp is `rate: [from, to]`"),
    "arrival": (with_changes(load={"arrival": "weibull"}), "load.arrival"),
    "capacity-steps": (with_changes(slo={"ttft_p95_ms": 100},
                                    capacity={"min_rate": 1, "max_rate": 4, "steps": 50}),
                       "capacity.steps"),
    "sustain-share": (with_changes(sustain={"min_share": 1.2}), "sustain.min_share"),
    "sustain-share-zero": (with_changes(sustain={"min_share": 0}), "sustain.min_share"),
    "sustain-requests": (with_changes(sustain={"min_requests": 0}), "sustain.min_requests"),
    "profile-missing": (with_changes(cost={"profile": "/no/such/profile.yaml"}),
                        "cost.profile: /no/such/profile.yaml does not exist"),
    "model-number": (with_changes(model=123), "model: Input should be a valid string"),
    "empty-file": ("", "expected a mapping of settings"),
    "tab-indent": ("model: dummy:tiny\nload:\n\tconcurrency: [1]\n", "invalid YAML at line 3"),
    "variant-name": (with_changes(matrix={"variants": {"bad name": {}}}),
                     "variant name 'bad name'"),
    "scenario-name": (with_changes(load={"concurrency": None, "scenarios": {"c4": [
        {"rate": 1, "duration_s": 5}]}}), "scenario name 'c4'"),
}


@pytest.mark.parametrize("config, expected", CONFIGS.values(), ids=CONFIGS.keys())
def test_bad_config(tmp_path, monkeypatch, config, expected):
    monkeypatch.delenv("HARNESS_TEST_UNSET_KEY", raising=False)
    path = tmp_path / "exp.yaml"
    path.write_text(dump(config))
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(path), "--out", str(out)])
    assert_one_line_error(result, str(path), expected)
    assert not out.exists()


# --- lengths files -------------------------------------------------------------------------

LENGTHS = {
    "inf": ("12\ninf\n", "line 2: 'inf' is not a positive whole number"),
    "nan": ("nan\n", "line 1: 'nan' is not a positive whole number"),
    "fraction": ("12\n2.5\n", "line 2: '2.5' is not a positive whole number"),
    "empty": ("\n\n", "no lengths in it"),
    "header-only": ("length\n", "a header and no lengths"),
    "bad-jsonl": ('{"n": 5}\n{"n": 6\n', "line 2: not valid JSON"),
    "short-row": ("a,b\n1,2\n3\n", "line 3: no 'b' value"),
    "directory": (None, "Is a directory"),
}


@pytest.mark.parametrize("content, expected", LENGTHS.values(), ids=LENGTHS.keys())
def test_bad_lengths_file(tmp_path, content, expected):
    lengths = tmp_path / "lengths.csv"
    if content is None:
        lengths.mkdir()
    else:
        lengths.write_text(content)
    column = "b" if content and content.startswith("a,b") else \
        "n" if content and content.startswith("{") else None
    config = with_changes(workload={"input_tokens": {"dist": "empirical", "file": str(lengths),
                                                     "column": column}})
    path = tmp_path / "exp.yaml"
    path.write_text(dump(config))
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert_one_line_error(result, str(path), f"lengths file {lengths}", expected)
    assert not (tmp_path / "out").exists()


# --- traces: `load.trace` ------------------------------------------------------------------

JSONL_ROW = '{{"timestamp": {t}, "input_tokens": {i}, "output_tokens": 2}}\n'
TRACES = {
    "time-infinite": (JSONL_ROW.format(t=0, i=8) + JSONL_ROW.format(t="Infinity", i=8), "jsonl",
                      {}, "line 2: timestamp"),
    "time-nan": (JSONL_ROW.format(t="NaN", i=8), "jsonl", {}, "line 1: timestamp"),
    "tokens-infinite": (JSONL_ROW.format(t=0, i="Infinity"), "jsonl", {},
                        "line 1: input_tokens"),
    "burstgpt-nan": ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                     "0.5,ChatGPT,nan,4,4,Conversation log\n", "burstgpt", {},
                     "line 2: Request tokens 'nan' is not a positive whole number"),
    "time-scale-inf": (JSONL_ROW.format(t=0, i=8), "jsonl", {"time_scale": float("inf")},
                       "load.trace.time_scale: Input should be a finite"),
    "directory": (None, "jsonl", {}, "Is a directory"),
}


@pytest.mark.parametrize("content, fmt, options, expected", TRACES.values(), ids=TRACES.keys())
def test_bad_trace(tmp_path, content, fmt, options, expected):
    trace = tmp_path / "trace.jsonl"
    if content is None:
        trace.mkdir()
    else:
        trace.write_text(content)
    config = with_changes(load={"trace": {"file": str(trace), "format": fmt, **options}})
    path = tmp_path / "exp.yaml"
    path.write_text(dump(config))
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert_one_line_error(result, str(path), expected)
    assert not (tmp_path / "out").exists()


TRACE_PHASES = {  # name -> (load.trace's options, or None: no load.trace; the phase; error)
    "no-load-trace": (None, {"trace": True},
                      "load: scenario 'peak': a phase with `trace: true` replays load.trace: "
                      "set `load.trace`"),
    "with-rate": ({}, {"trace": True, "rate": 2},
                  "load.scenarios.peak.1: a trace phase takes its times from load.trace: drop "
                  "rate"),
    "with-concurrency": ({}, {"trace": True, "concurrency": 2, "duration_s": 5},
                         "a trace phase takes its times from load.trace: drop duration_s, "
                         "concurrency"),
    "no-duration": ({}, {"rate": 2}, "load.scenarios.peak.1: a phase needs `duration_s` (or "
                                     "`trace: true`)"),
    "no-span": ({"max_requests": 1}, {"trace": True}, "spans no time (one request?)"),
}


@pytest.mark.parametrize("options, phase, expected", TRACE_PHASES.values(),
                         ids=TRACE_PHASES.keys())
def test_bad_trace_phase(tmp_path, options, phase, expected):
    trace = tmp_path / "trace.jsonl"
    trace.write_text(JSONL_ROW.format(t=0, i=8) + JSONL_ROW.format(t=1, i=9))
    load = {"concurrency": None, "scenarios": {"peak": [{"rate": 1, "duration_s": 2}, phase]}}
    if options is not None:
        load["trace"] = {"file": str(trace), "format": "jsonl", **options}
    path = tmp_path / "exp.yaml"
    path.write_text(dump(with_changes(load=load)))
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert_one_line_error(result, str(path), expected)
    assert not (tmp_path / "out").exists()


# --- traffic profiles and price files: `harness cost` ---------------------------------------

def edited_profile(change: Callable[[dict], None]) -> str:
    raw = yaml.safe_load(PROFILE.read_text())
    change(raw)
    return yaml.safe_dump(raw)


PROFILES = {
    "tokens-inf": (edited_profile(lambda p: p["traffic"].update(tokens_per_day=float("inf"))),
                   "traffic.tokens_per_day: Input should be a finite"),
    "kwh-nan": (edited_profile(lambda p: p["own"].update(usd_per_kwh=float("nan"))),
                "own.usd_per_kwh: Input should be a finite"),
    "ratio-inf": (edited_profile(lambda p: p.update(input_output_cost_ratio=float("inf"))),
                  "input_output_cost_ratio: Input should be a finite"),
    "batch-share": (edited_profile(lambda p: p["traffic"].update(batch_share=2)),
                    "traffic.batch_share"),
    "traffic-twice": ("traffic: {tokens_per_day: 1000}\ntraffic: {requests_per_s: 2}\n",
                      "line 2, column 1: duplicate key 'traffic' (first set at line 1)"),
}


@pytest.mark.parametrize("text, expected", PROFILES.values(), ids=PROFILES.keys())
def test_bad_profile(tmp_path, text, expected):
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["cost", str(QUICKSTART), "--profile", str(path)])
    assert_one_line_error(result, str(path), expected)


GPU_ROW = {"gpu": "H100", "provider": "mine", "tier": "on-demand", "usd_per_gpu_hour": 2.0,
           "source": "my invoice", "checked": "2026-11-01"}
API_ROW = {"name": "my-api", "input_mtok": 0.1, "output_mtok": 0.4, "source": "their page",
           "checked": "2026-11-01"}

PRICE_FILES = {
    "gpu-price-inf": ({"gpus": [{**GPU_ROW, "usd_per_gpu_hour": float("inf")}]},
                      "gpus.0.usd_per_gpu_hour: Input should be a finite"),
    "gpu-price-zero": ({"gpus": [{**GPU_ROW, "usd_per_gpu_hour": 0}]},
                       "gpus.0.usd_per_gpu_hour: Input should be greater than 0"),
    "api-no-source": ({"apis": [{k: v for k, v in API_ROW.items() if k != "source"}]},
                      "apis.0.source: Field required"),
    "api-output-nan": ({"apis": [{**API_ROW, "output_mtok": float("nan")}]},
                       "apis.0.output_mtok: Input should be a finite"),
    "checked-not-date": ({"gpus": [{**GPU_ROW, "checked": "last week"}]}, "gpus.0.checked"),
    "unknown-key": ({"gpu": [GPU_ROW]}, "gpu: unknown key"),
    "gpus-twice": ("gpus: []\napis: []\ngpus: []\n",
                   "line 3, column 1: duplicate key 'gpus' (first set at line 1)"),
    "bad-yaml": ("gpus: [{gpu: H100\n", "invalid YAML"),
}


@pytest.mark.parametrize("content, expected", PRICE_FILES.values(), ids=PRICE_FILES.keys())
def test_bad_price_file(tmp_path, content, expected):
    path = tmp_path / "prices.yaml"
    path.write_text(dump(content))
    result = runner.invoke(app, ["cost", str(QUICKSTART), "--profile", str(PROFILE),
                                 "--prices", str(path)])
    assert_one_line_error(result, str(path), expected)


# --- results directories: `harness report`, `harness cost`, `harness run --out` ------------

def broken_run(tmp_path: Path, change: Callable[[Path], None]) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(QUICKSTART, copy)
    change(copy)
    return copy


def edit_manifest(**fields) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        data = json.loads((root / "run.json").read_text())
        data.update(fields)
        (root / "run.json").write_text(json.dumps(data))
    return change


RESULTS = {
    "no-run-json": (lambda root: (root / "run.json").unlink(), "report",
                    "no run.json here; give a directory made by `harness run`"),
    "run-json-torn": (lambda root: (root / "run.json").write_text('{"run": "quick'), "report",
                      "run.json: missing or not readable JSON"),
    "old-schema": (edit_manifest(schema_version=1), "report",
                   "run.json holds results of schema 1; this harness reads schema 2"),
    "old-schema-cost": (edit_manifest(schema_version=1), "cost",
                        "run.json holds results of schema 1"),
    "manifest-field": (edit_manifest(config_hash=None), "report",
                       "run.json: not a valid RunManifest: config_hash"),
}


@pytest.mark.parametrize("change, command, expected", RESULTS.values(), ids=RESULTS.keys())
def test_bad_results_directory(tmp_path, change, command, expected):
    root = broken_run(tmp_path, change)
    args = [command, str(root)] + (["--profile", str(PROFILE)] if command == "cost" else [])
    result = runner.invoke(app, args)
    assert_one_line_error(result, str(root), expected)


def test_out_holding_another_config(tmp_path, monkeypatch):
    monkeypatch.setattr(RunStore, "begin", BEGIN)  # it finds the mismatch, writing nothing
    root = broken_run(tmp_path, lambda root: None)
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(GOOD))
    before = (root / "run.json").read_bytes()
    result = runner.invoke(app, ["run", str(config), "--out", str(root)])
    assert_one_line_error(result, str(root), "holds a run of a different config")
    assert (root / "run.json").read_bytes() == before


# --- command-line arguments ----------------------------------------------------------------

def good_config(tmp_path: Path) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    return str(path)


ARGUMENTS = {
    "run-no-config": (lambda tmp: ["run"], "Missing argument 'CONFIG'"),
    "run-unknown-option": (lambda tmp: ["run", good_config(tmp), "--bogus"],
                           "No such option: --bogus"),
    "out-under-proc": (lambda tmp: ["run", good_config(tmp), "--out", "/proc/harness/out"],
                       "--out /proc/harness/out: cannot write results there"),
    "out-is-a-file": (lambda tmp: ["run", good_config(tmp), "--out", good_config(tmp)],
                      "cannot write results there (a file, not a directory)"),
    "out-under-a-file": (lambda tmp: ["run", good_config(tmp), "--out",
                                      good_config(tmp) + "/out"],
                         "cannot write results there (Not a directory)"),
    "report-missing-dir": (lambda tmp: ["report", str(tmp / "nope")], "no run.json here"),
    "cost-format": (lambda tmp: ["cost", str(QUICKSTART), "--format", "xml"],
                    "Invalid value for '--format'"),
    "cost-date": (lambda tmp: ["cost", str(QUICKSTART), "--price-date", "2026-13-01"],
                  "--price-date: '2026-13-01' is not a date"),
    "selftest-duration-inf": (lambda tmp: ["selftest", "client", "--duration", "inf"],
                              "Invalid value for '--duration'"),
    "selftest-tokens": (lambda tmp: ["selftest", "client", "--tokens", "0"],
                        "Invalid value for '--tokens'"),
    "dummy-shape": (lambda tmp: ["dummy-model", str(tmp / "m"), "--shape", "huge"],
                    "--shape: unknown shape 'huge'"),
    "no-such-command": (lambda tmp: ["bench"], "No such command 'bench'"),
}


@pytest.mark.parametrize("args, expected", ARGUMENTS.values(), ids=ARGUMENTS.keys())
def test_bad_arguments(tmp_path, args, expected):
    result = runner.invoke(app, args(tmp_path))
    assert_one_line_error(result, expected)
    assert not (tmp_path / "m").exists()

