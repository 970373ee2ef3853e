"""Fidelity scoring by hand, its config's bad input, and where a score shows up: summary,
terminal table and the cost answer (the real pass on vLLM: test_fidelity_e2e.py)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from harness.cli import app
from harness.config import ConfigError, load_config
from harness.config.fidelity import FidelityConfig
from harness.contract.fidelity import FidelityRecord, FidelityScore
from harness.contract.plan import build_plan
from harness.contract.server import TOKEN_IDS
from harness.cost import flat
from harness.cost.answer import build_answer
from harness.cost.inputs.prices import load_price_book
from harness.cost.inputs.profile import Profile
from harness.cost.measured import load_results
from harness.engines.vllm import VllmEngine
from harness.load.prompt_source import PromptSource
from harness.metrics.fidelity import (
    Probe,
    first_divergence,
    misses,
    prompt_set,
    prompts_sha,
    score,
    token_kl,
)
from harness.report.run_report.fidelity import fidelity_figure
from harness.report.run_report.html import build_report
from harness.report.run_report.summary import summary_frame
from harness.report.run_report.table import results_table
from harness.run.runner import tokenizer_for
from harness.store.run_store import RunStore

from .factories import manifest, metrics, point_result, write_run
from .test_config import GOOD, with_changes, write

runner = CliRunner()


def lp(*probs: float) -> list[float]:
    return [math.log(p) for p in probs]


def dist(ids: list[int], probs: list[float]) -> dict[int, float]:
    return dict(zip(ids, lp(*probs), strict=True))


def test_identical_distributions_have_zero_kl():
    d = dist([5, 7, 9], [0.5, 0.2, 0.1])
    assert token_kl(d, dict(d), k=3) == 0.0


def test_kl_by_hand_with_a_rest_bucket():
    base = dist([1, 2], [0.6, 0.3])  # rest 0.1
    ours = dist([1, 2], [0.5, 0.4])  # rest 0.1
    expected = 0.6 * math.log(0.6 / 0.5) + 0.3 * math.log(0.3 / 0.4)
    assert token_kl(base, ours, k=2) == pytest.approx(expected, abs=1e-12)


def test_a_baseline_token_outside_the_variant_top_k_gets_its_kth_probability():
    base = dist([1, 2], [0.6, 0.3])
    ours = dist([1, 3], [0.7, 0.2])  # token 2 not in its top 2: at most 0.2
    expected = (0.6 * math.log(0.6 / 0.7) + 0.3 * math.log(0.3 / 0.2)
                + 0.1 * math.log(0.1 / (1 - 0.7 - 0.2)))
    assert token_kl(base, ours, k=2) == pytest.approx(expected, abs=1e-9)
    assert token_kl(base, ours, k=2) > 0


def probe(tokens: list[list[int]], shift: float = 0.0) -> Probe:
    """Distributions that put 0.5 + shift on each position's token."""
    return Probe(tokens, [[dist([t, t + 100], [0.5 + shift, 0.3 - shift]) for t in row]
                          for row in tokens])


def test_control_scores_zero_kl_full_agreement_no_divergence():
    base = probe([[1, 2, 3, 4], [5, 6, 7, 8]])
    s = score(base, probe([[1, 2, 3, 4], [5, 6, 7, 8]]), k=2)
    assert (s.kl_mean, s.kl_p99, s.kl_max, s.top1_agreement) == (0.0, 0.0, 0.0, 1.0)
    assert s.positions == 8 and s.diverged_prompts == 0 and s.first_divergence_min is None


def test_a_changed_variant_scores_kl_disagreement_and_divergence():
    base = probe([[1, 2, 3, 4], [5, 6, 7, 8]])
    other = probe([[1, 2, 3, 4], [5, 6, 7, 8]], shift=0.1)  # forced on the baseline's tokens
    other.tokens[0] = [1, 2, 9, 9]  # its own greedy text parts at position 2
    other.forced[0][3] = dist([104, 4], [0.6, 0.2])  # a different top token at one position
    s = score(base, other, k=2)
    assert s.kl_mean > 0 and s.kl_max >= s.kl_p99 >= s.kl_mean
    assert s.top1_agreement == pytest.approx(7 / 8)
    assert s.diverged_prompts == 1 and s.first_divergence_min == 2
    assert s.first_divergence_median == 2.0


def test_first_divergence():
    assert first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert first_divergence([1, 2, 3], [1, 5, 3]) == 1
    assert first_divergence([1, 2], [1, 2, 3]) == 2


def test_probe_round_trips_through_its_parquet_frame(tmp_path):
    original = probe([[1, 2, 3], [4, 5, 6]], shift=0.05)
    path = tmp_path / "p.parquet"
    original.frame().to_parquet(path)
    back = Probe.from_frame(pd.read_parquet(path))
    assert back.tokens == original.tokens
    assert back.forced == original.forced


def test_prompt_set_is_seeded_and_drawn_from_the_vocabulary():
    fidelity = FidelityConfig(prompts=4, prompt_tokens=16)
    vocab = list(range(3, 259))
    first, again = prompt_set(fidelity, vocab, 0), prompt_set(fidelity, vocab, 0)
    assert first == again and prompts_sha(first) == prompts_sha(again)
    assert prompts_sha(prompt_set(fidelity, vocab, 1)) != prompts_sha(first)
    assert len(first) == 4 and all(len(p) == 16 for p in first)
    assert all(3 <= t < 259 for p in first for t in p)


def record(kl: float, top1: float, variant: str = "fp8") -> FidelityRecord:
    return FidelityRecord(
        run="r", variant=variant, cell=f"{variant}-b4", baseline="bf16", status="scored",
        prompts=2, prompt_tokens=8, output_tokens=4, top_k=20, prompts_sha="x",
        teacher_forced=True, duration_s=1.0, measured_at="2026-12-03T08:00:00+00:00",
        score=FidelityScore(positions=8, kl_mean=kl, kl_p99=kl, kl_max=kl, top1_agreement=top1,
                            prompts=2, diverged_prompts=1, first_divergence_min=1,
                            first_divergence_median=1.0))


def test_misses_name_each_limit():
    limits = FidelityConfig(max_kl=0.01, min_top1=0.95)
    assert misses(record(0.001, 0.99), limits) == []
    assert misses(record(0.02, 0.90), limits) == [
        "mean KL 0.02 > max_kl 0.01", "top-1 agreement 90.0% < min_top1 95.0%"]
    assert misses(record(0.02, 0.90), None) == []


TWO = {"bf16": {"dtype": "bfloat16"}, "fp8-kv": {"dtype": "bfloat16", "kv_cache_dtype": "fp8"}}


@pytest.mark.parametrize("changes, expected", [
    ({"fidelity": {"baseline": "fp16"}},
     "fidelity.baseline: 'fp16' is not a variant; the variants are bf16, fp8-kv"),
    ({"fidelity": {"max_kl": -0.1}}, "fidelity.max_kl: Input should be greater than or equal"),
    ({"fidelity": {"min_top1": 1.5}}, "fidelity.min_top1: Input should be less than or equal"),
    ({"fidelity": {"tasks": ["gsm8k"]}}, "fidelity.tasks: task accuracy (lm-eval) is not built"),
    ({"fidelity": {"top_k": 50}}, "fidelity.top_k: Input should be less than or equal to 20"),
    ({"fidelity": {}, "engine": {"options": {"max_model_len": 64}}},
     "fidelity: prompt_tokens + output_tokens + 1 is 161 but engine.options.max_model_len is 64"),
    ({"fidelity": {}, "engine": {"kind": "external", "url": "http://127.0.0.1:9"},
      "matrix": {"variants": {"default": {}}}}, "fidelity: the external engine does not return"),
])
def test_bad_fidelity_config_is_one_line_and_exit_2(tmp_path, changes, expected):
    config = with_changes(**{"matrix": {"max_num_seqs": [2], "variants": TWO}, **changes})
    if "url" in str(changes):
        config["matrix"] = changes["matrix"]
    path = write(tmp_path, config)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert expected in str(caught.value), str(caught.value)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
    assert not (tmp_path / "out").exists()


def test_the_baseline_runs_first_and_seeded_weights_are_served(tmp_path):
    config = with_changes(matrix={"max_num_seqs": [2], "variants": TWO},
                          fidelity={"baseline": "fp8-kv"})
    result = runner.invoke(app, ["run", str(write(tmp_path, config)), "--dry-run",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert result.output.index("fp8-kv-b2") < result.output.index("bf16-b2")
    loaded = load_config(write(tmp_path, config))
    for cell in build_plan(loaded):
        command = VllmEngine.for_cell(loaded, cell, tmp_path / "log", create=False).command(1)
        model = command[command.index("--model") + 1]
        assert model.endswith("dummy-models/tiny-seed0") and "dummy" not in command


def test_without_the_section_the_hash_is_what_it_was_before_the_section(tmp_path):
    """No `fidelity` key enters the hash of a config without it (its runs resume), and the
    limits do not enter it at all."""
    plain = load_config(write(tmp_path, GOOD))
    dumped = plain.model_dump(exclude={
        "cost": True, "fidelity": True, "executor": True, "sustain": True, "tune": True,
        "matrix": {"workloads": True}})
    dumped["load"]["profiles"] = dumped["load"].pop("scenarios")  # hashed by its old name
    before = json.dumps(dumped, sort_keys=True)
    assert plain.fidelity is None
    assert plain.hash() == hashlib.sha256(before.encode()).hexdigest()[:16]
    measured = load_config(write(tmp_path, with_changes(fidelity={}), "b.yaml"))
    stricter = load_config(write(tmp_path, with_changes(fidelity={"max_kl": 0.1}), "c.yaml"))
    longer = load_config(write(tmp_path, with_changes(fidelity={"prompts": 8}), "d.yaml"))
    assert measured.hash() != plain.hash()
    assert stricter.hash() == measured.hash()  # limits judge, they do not change what is measured
    assert longer.hash() != measured.hash()


def fidelity_run(tmp_path: Path) -> Path:
    """Two variants on stored results: fp8 scored outside max_kl, bf16 the baseline."""
    config = {"matrix": {"max_num_seqs": [8], "variants": {"bf16": {}, "fp8": {}}},
              "fidelity": {"max_kl": 0.01, "min_top1": 0.9}}
    points = [point_result(f"{v}-b8", v, 8, 8, metrics(5000.0, 1250.0)) for v in ("bf16", "fp8")]
    root = write_run(tmp_path / "run", points, manifest(usd_per_hour=2.0, config=config))
    store = RunStore(root)
    base = record(0.0, 1.0, variant="bf16").model_copy(update={"status": "baseline",
                                                               "score": None})
    store.save_fidelity(base, None)
    store.save_fidelity(record(0.02, 0.97), None)
    return root


def test_a_variant_beyond_max_kl_is_marked_in_summary_table_and_cost_answer(tmp_path):
    root = fidelity_run(tmp_path)
    frame = summary_frame(RunStore(root).load()).set_index("variant")
    assert frame.loc["bf16", "fidelity"] == "baseline"
    assert frame.loc["fp8", "fidelity_kl_mean"] == 0.02
    assert frame.loc["fp8", "fidelity_miss"] == "mean KL 0.02 > max_kl 0.01"
    assert pd.isna(frame.loc["bf16", "fidelity_miss"])

    console = Console(width=250, record=True)
    console.print(results_table(frame.reset_index()))
    text = console.export_text()
    assert "KL 0.02/0.02, top-1 97.0% misses" in text and "baseline" in text

    profile = Profile.model_validate({"traffic": {"tokens_per_day": 1e6,
                                                  "input_output_ratio": 3}})
    answer = build_answer(load_results(root), profile, load_price_book())
    assert answer.variant("fp8").fidelity.miss == "mean KL 0.02 > max_kl 0.01"
    assert answer.variant("bf16").fidelity.miss is None
    assert any(note.startswith("fp8: misses fidelity (mean KL 0.02 > max_kl 0.01 against bf16)")
               for note in answer.notes), answer.notes
    assert not any(note.startswith("bf16: misses") for note in answer.notes)
    verdicts = flat.frame(answer, "verdicts")
    assert verdicts[verdicts["variant"] == "fp8"]["fidelity_miss"].notna().all()


def test_a_run_without_fidelity_has_no_fidelity_columns(tmp_path):
    root = write_run(tmp_path / "run", [point_result("a-b8", "a", 8, 8)])
    assert not [c for c in summary_frame(RunStore(root).load()) if c.startswith("fidelity")]


def test_prompts_of_a_fidelity_run_find_the_dummy_tokenizer_in_a_fresh_cache(tmp_path,
                                                                              monkeypatch):
    """The served checkpoint lives in <shape>-seed<N>; prompts still find the tokenizer."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    config = load_config(write(tmp_path, with_changes(
        model="dummy:tiny", matrix={"max_num_seqs": [2], "variants": TWO}, fidelity={})))
    cell = build_plan(config)[0]
    source = PromptSource(config, cell, frozenset({TOKEN_IDS}), "run",
                          tokenizer_for(config, cell))
    assert len(source.vocab) == 256
    assert not list((tmp_path / "cache").rglob("*.safetensors")), "no weights for prompts"


def test_the_report_page_has_a_fidelity_table_and_chart(tmp_path):
    run = RunStore(fidelity_run(tmp_path)).load()
    html = build_report([run]).html
    section = html[html.index("<h2>Fidelity</h2>"):]
    assert "mean KL 0.02 &gt; max_kl 0.01" in section[:3000]
    assert "chart-fidelity" in html and fidelity_figure([run]).spec is not None
    plain = write_run(tmp_path / "plain", [point_result("a-b8", "a", 8, 8)])
    assert fidelity_figure([RunStore(plain).load()]).reason.startswith("no fidelity pass")
