"""Bad input: one line naming file or field, exit code 2, nothing launched."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from harness.cli import app
from harness.config import ConfigError, load_config

runner = CliRunner()

GOOD = {
    "model": "dummy:tiny",
    "matrix": {"max_num_seqs": [2, 4], "variants": {"bf16": {"dtype": "bfloat16"}}},
    "workload": {"input_tokens": 16, "output_tokens": 4},
    "load": {"concurrency": [1, 2], "requests": 4},
}


def write(tmp_path: Path, config: object, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


def with_changes(**sections) -> dict:
    config = yaml.safe_load(yaml.safe_dump(GOOD))
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    return config


def run_cli(tmp_path: Path, *args: str):
    return runner.invoke(app, ["run", *args, "--out", str(tmp_path / "out")])


def test_good_config_loads(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.matrix.max_num_seqs == [2, 4]
    assert config.load.warmup_requests == 4


def test_scalars_become_lists(tmp_path):
    config = load_config(write(tmp_path, with_changes(
        matrix={"max_num_seqs": 8}, load={"concurrency": 3})))
    assert config.matrix.max_num_seqs == [8]
    assert config.load.concurrency == [3]


def test_kebab_case_options_are_accepted(tmp_path):
    config = load_config(write(tmp_path, with_changes(
        engine={"options": {"max-model-len": 64, "enforce-eager": True}})))
    assert config.engine.options == {"max_model_len": 64, "enforce_eager": True}


def test_hash_ignores_cost_but_not_load(tmp_path):
    base = load_config(write(tmp_path, GOOD, "a.yaml"))
    priced = load_config(write(tmp_path, with_changes(cost={"usd_per_hour": 2.5}), "b.yaml"))
    heavier = load_config(write(tmp_path, with_changes(load={"requests": 8}), "c.yaml"))
    assert base.hash() == priced.hash()
    assert base.hash() != heavier.hash()


def test_load_profiles_is_the_old_name_of_scenarios(tmp_path):
    """A config written with `load.profiles` still runs, says once to rename it, and hashes as
    with `load.scenarios` (its results directory resumes); a stored config reads silently."""
    from harness.config import ExperimentConfig
    from harness.config.base import ConfigDeprecation

    phases = [{"name": "average", "rate": 2, "duration_s": 4}, {"name": "peak", "rate": 8,
                                                                "duration_s": 4}]
    new = load_config(write(tmp_path, with_changes(load={"scenarios": {"peak": phases}}), "a.yaml"))
    with pytest.warns(ConfigDeprecation, match="load.profiles is now load.scenarios"):
        old = load_config(write(tmp_path, with_changes(load={"profiles": {"peak": phases}}),
                                "b.yaml"))
    assert old == new and old.hash() == new.hash()
    stored = new.model_dump(mode="json")
    stored["load"]["profiles"] = stored["load"].pop("scenarios")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = ExperimentConfig.model_validate(stored, context={"stored": True})
    assert again.hash() == new.hash()
    both = with_changes(load={"scenarios": {"peak": phases}, "profiles": {"peak": phases}})
    with pytest.raises(ConfigError, match="set `scenarios` only"):
        load_config(write(tmp_path, both, "c.yaml"))


def test_the_quickstart_hashes_as_its_committed_run():
    """configs/quickstart.yaml (now with `load.scenarios`) is the config of the committed
    example run: the same hash, so rerunning it there resumes."""
    root = Path(__file__).resolve().parent.parent
    config = load_config(root / "configs" / "quickstart.yaml")
    assert config.hash() == "2c98d159a5b87faa"


@pytest.mark.parametrize("config, expected", [
    ("model: [unclosed", "invalid YAML at line 1"),
    ("- just\n- a list\n", "expected a mapping"),
    (with_changes(colour="blue"), "colour: unknown key"),
    (with_changes(matrix={"max_num_seqs": [0]}),
     "matrix.max_num_seqs.0: Input should be greater than 0"),
    (with_changes(matrix={"max_num_seqs": [-4]}), "matrix.max_num_seqs.0"),
    (with_changes(matrix={"max_num_seqs": []}), "matrix.max_num_seqs: List should have at least 1"),
    (with_changes(matrix={"variants": {}}), "matrix.variants: Dictionary should have at least 1"),
    (with_changes(load={"concurrency": []}), "load.concurrency"),
    (with_changes(load={"duration_s": 5}), "exactly one of `requests` and `duration_s`"),
    (with_changes(model="./no/such/model"), "model: model path ./no/such/model does not exist"),
    (with_changes(model="dummy:huge"), "unknown dummy shape 'huge'"),
    (with_changes(engine={"options": {"port": 9000}}), "`port` is set by the harness"),
    (with_changes(engine={"options": {"max_num_seqs": 9}}), "use `matrix.max_num_seqs`"),
    (with_changes(matrix={"variants": {"awq": {"model": "/no/awq", "quantization": "awq"}}}),
     "matrix.variants.awq.model: model path /no/awq does not exist"),
    (with_changes(engine={"options": {"max_model_len": 10}}),
     "a request can need 20 tokens (input + output) but engine.options.max_model_len is 10"),
    (with_changes(load={"rates": [0]}), "load.rates.0: Input should be greater than 0"),
    (with_changes(load={"rates": [-2.5]}), "load.rates.0"),
    (with_changes(load={"scenarios": {"peak": []}}), "scenario 'peak' has no phases"),
    (with_changes(load={"scenarios": {"peak": [{"rate": 0, "duration_s": 5}]}}),
     "load.scenarios.peak.0.rate"),
    (with_changes(load={"scenarios": {"peak": [{"duration_s": 5}]}}),
     "a phase needs exactly one of `rate` and `concurrency`"),
    (with_changes(load={"scenarios": {"peak": [{"rate": 2, "duration_s": 5, "arrival": "gamma",
                                               "burstiness": 0}]}}),
     "load.scenarios.peak.0.burstiness: Input should be greater than 0"),
    (with_changes(load={"burstiness": -1}), "load.burstiness: Input should be greater than 0"),
    (with_changes(load={"concurrency": None}),
     "give load points: `concurrency`, `rates` or `scenarios`"),
    (with_changes(workload={"input_tokens": {"dist": "uniform", "min": 8, "max": 400}},
                  engine={"options": {"max_model_len": 256}}),
     "a request can need 404 tokens (input + output) but engine.options.max_model_len is 256"),
    (with_changes(workload={"input_tokens": {"dist": "normal", "mean": 100, "std": 10}},
                  engine={"options": {"max_model_len": 256}}),
     "a normal or lognormal length needs `max`"),
    (with_changes(workload={"input_tokens": {"dist": "uniform", "min": 8}}),
     "a uniform distribution needs max"),
    (with_changes(workload={"input_tokens": 10, "conversation": {"turns": 4}},
                  engine={"options": {"max_model_len": 50}}),
     "a request can need 56 tokens (input + output, all turns)"),
    (with_changes(slo={"ttft_p97_ms": 100}), "unknown SLO 'ttft_p97_ms'"),
    (with_changes(capacity={"min_rate": 1, "max_rate": 8}), "the search needs `slo` limits"),
    (with_changes(slo={"ttft_p95_ms": 100}, capacity={"min_rate": 8, "max_rate": 1}),
     "min_rate must be below max_rate"),
    (with_changes(workload={"input_tokens": 0}), "workload.input_tokens"),
])
def test_bad_config_is_one_line_and_exit_2(tmp_path, config, expected):
    path = write(tmp_path, config)
    with pytest.raises(ConfigError, match=None) as caught:
        load_config(path)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)
    result = run_cli(tmp_path, str(path))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in result.output.replace("\n", "")
    assert not (tmp_path / "out").exists(), "nothing may be written or launched"


@pytest.mark.parametrize("content, expected", [
    (None, "lengths file {file}: No such file or directory"),
    ("length\n12\nabc\n", "lengths file {file}, line 3: 'abc' is not a number"),
    ("12\n0\n", "lengths file {file}, line 2: '0' is not a positive whole number"),
    ('{"n": 5}\n{"m": 6}\n', "lengths file {file}, line 1: no key None"),
    ("a,b\n1,2\n", "no column None in the header ['a', 'b'] (set `column`)"),
])
def test_bad_lengths_file_names_file_and_line(tmp_path, content, expected):
    lengths = tmp_path / "lengths.csv"
    if content is not None:
        lengths.write_text(content)
    path = write(tmp_path, with_changes(
        workload={"input_tokens": {"dist": "empirical", "file": str(lengths)}}))
    result = run_cli(tmp_path, str(path))
    assert result.exit_code == 2
    assert expected.format(file=lengths) in result.output.replace("\n", "")


def test_empirical_lengths_from_csv_jsonl_and_plain(tmp_path):
    from harness.config.lengths import empirical_lengths
    (tmp_path / "a.csv").write_text("prompt,output\n10,3\n20,4\n")
    (tmp_path / "b.jsonl").write_text('{"prompt": 7}\n{"prompt": 9}\n')
    (tmp_path / "c.txt").write_text("5\n6\n\n7\n")
    assert empirical_lengths(str(tmp_path / "a.csv"), "output") == (3, 4)
    assert empirical_lengths(str(tmp_path / "b.jsonl"), "prompt") == (7, 9)
    assert empirical_lengths(str(tmp_path / "c.txt")) == (5, 6, 7)


def test_missing_config(tmp_path):
    result = run_cli(tmp_path, str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "nope.yaml: no such config file" in result.output


def test_unreadable_config(tmp_path):
    result = run_cli(tmp_path, str(tmp_path))  # a directory is not a readable file
    assert result.exit_code == 2
    assert "cannot read the config" in result.output


def test_dry_run_prints_plan_and_starts_nothing(tmp_path):
    result = run_cli(tmp_path, str(write(tmp_path, GOOD)), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "2 server launches, 4 load points" in result.output
    assert "bf16-b2" in result.output and "bf16-b4" in result.output
    assert "--max-num-seqs 4" in result.output
    assert not (tmp_path / "out").exists()


def test_dry_run_says_what_the_plan_costs_in_wall_time(tmp_path):
    config = with_changes(load={"concurrency": [1], "rates": [2.0], "duration_s": 30,
                                "requests": None},
                          slo={"ttft_p95_ms": 500}, capacity={"steps": 3, "duration_s": 10})
    config["engine"] = {"startup_timeout_s": 600}
    result = run_cli(tmp_path, str(write(tmp_path, config)), "--dry-run")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    # 2 cells x (c1 + r2) x 30 s = 120 s; 2 x (3 capacity steps + 3 doublings) x 10 s = 120 s
    assert "about 4 min of load: 4 load points (2 min of planned arrivals)" in text
    assert "up to 12 capacity steps (2 min)" in text
    assert "2 server launches (each up to 10 min to start)" in text


def test_shipped_configs_validate():
    for path in sorted(Path(__file__).resolve().parent.parent.glob("configs/*.yaml")):
        if not path.name.startswith("profile"):  # cost profiles have their own schema
            load_config(path)


def test_help_explains_each_command():
    for command in ([], ["run"], ["report"], ["dummy-model"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0
        assert "Usage" in result.output


def test_a_driver_too_old_for_the_vllm_build_is_refused_before_anything_starts(tmp_path,
                                                                               monkeypatch):
    from harness.contract.manifest import EnginePackage

    monkeypatch.setattr("harness.engines.installed.package",
                        lambda python, names: EnginePackage(package="vllm", version="0.33.0"))
    monkeypatch.setattr("harness.run.provenance.gpus", lambda: {"driver": "535.104.05"})
    result = run_cli(tmp_path, str(write(tmp_path, GOOD)))
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line == ("error: NVIDIA driver 535.104.05 is too old for vllm 0.33.0 (built for "
                    "CUDA 13: R580 or newer): update the driver, or install a vLLM built for "
                    "CUDA 12 into engine.python")
    assert not (tmp_path / "out" / "run.json").exists()
    monkeypatch.setattr("harness.run.provenance.gpus", lambda: {"driver": "580.159.04"})
    from harness.commands.run import check_driver
    from harness.config import ExperimentConfig

    check_driver(ExperimentConfig.model_validate(GOOD))  # new enough: nothing said


def test_help_shows_each_default_it_names():
    shown = " ".join(runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "Results directory [default: results/<config name>]." in shown
    cost = " ".join(runner.invoke(app, ["cost", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "in force on this date [default: today]" in cost
