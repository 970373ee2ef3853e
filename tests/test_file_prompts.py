"""Real prompts from a file (ShareGPT or JSONL): their lengths are what the tokenizer counts
with the server's special tokens; bad files are one line naming file and line; and the
workload's `prompt` mode is text unless token ids are asked for."""

from __future__ import annotations

import json
import textwrap

import pytest

from harness.config import ConfigError, load_config
from harness.config.load import WorkloadConfig
from harness.config.prompt_file import PromptFileConfig, PromptFileError, read_prompts
from harness.load.file_prompts import FilePromptRequests
from harness.load.prompts import load_tokenizer

SHAREGPT = [
    {"id": "a", "conversations": [{"from": "human", "value": "What is a llama?"},
                                  {"from": "gpt", "value": "A South American camelid."}]},
    {"id": "b", "conversations": [{"from": "system", "value": "Be brief."},
                                  {"from": "human", "value": "Name a prime."},
                                  {"from": "gpt", "value": "7"}]},
    {"id": "c", "conversations": [{"from": "gpt", "value": "no human turn"}]},
]


def write_sharegpt(tmp_path):
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps(SHAREGPT))
    return path


def test_sharegpt_takes_the_first_human_turn_and_its_reply(tmp_path):
    prompts = read_prompts(PromptFileConfig(file=str(write_sharegpt(tmp_path)),
                                            format="sharegpt"))
    assert [(p.text, p.reply) for p in prompts] == [
        ("What is a llama?", "A South American camelid."), ("Name a prime.", "7")]


@pytest.mark.parametrize("token_ids", [False, True])
def test_lengths_are_the_tokenizers_count_with_specials(tmp_path, tiny_model, token_ids):
    tokenizer = load_tokenizer(str(tiny_model))
    config = WorkloadConfig(output_tokens=5, prompts={"file": str(write_sharegpt(tmp_path)),
                                                      "format": "sharegpt"})
    source = FilePromptRequests(config, tokenizer, token_ids, seed=0, salt=1)
    first, second, third = (source.chain(k)[0] for k in range(3))
    # the tiny tokenizer is one token per byte, plus <s>
    assert first.input_tokens == len("What is a llama?") + 1
    assert first.max_tokens == len("A South American camelid.")  # the reply's length
    assert second.max_tokens == 1
    assert third.prompt == first.prompt  # cycles through the file
    if token_ids:
        assert first.prompt[0] == tokenizer.bos_token_id and len(first.prompt) == 17
    else:
        assert first.prompt == "What is a llama?"


def test_jsonl_output_tokens_or_the_workloads_draw(tmp_path, tiny_model):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "hello there", "output_tokens": 9}\n\n{"prompt": "bye"}\n')
    tokenizer = load_tokenizer(str(tiny_model))
    config = WorkloadConfig(output_tokens=3, prompts={"file": str(path)})
    source = FilePromptRequests(config, tokenizer, False, seed=0, salt=1)
    assert [source.chain(k)[0].max_tokens for k in range(2)] == [9, 3]
    ignore = WorkloadConfig(output_tokens=3, prompts={"file": str(path),
                                                      "output_from_file": False})
    assert FilePromptRequests(ignore, tokenizer, False, 0, 1).chain(0)[0].max_tokens == 3


def test_prompts_that_cannot_fit_are_left_out(tmp_path, tiny_model):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "x" * 300, "output_tokens": 4}) + "\n"
                    + json.dumps({"prompt": "short", "output_tokens": 4}) + "\n")
    config = WorkloadConfig(output_tokens=3, prompts={"file": str(path)})
    source = FilePromptRequests(config, load_tokenizer(str(tiny_model)), False, 0, 1,
                                max_model_len=256)
    assert source.left_out == 1 and source.chain(0)[0].prompt == "short"


@pytest.mark.parametrize(("content", "fmt", "expected"), [
    ('{"prompt": "a"}\n{"text": "b"}\n', "jsonl", "line 2: needs a non-empty \"prompt\""),
    ('{"prompt": "a", "output_tokens": 0}\n', "jsonl", "line 1: output_tokens must be"),
    ("{oops\n", "jsonl", "line 1: not valid JSON"),
    ('{"conversations": []}', "sharegpt", "a ShareGPT file is a JSON list"),
    ("[]", "sharegpt", "no prompts in it"),
])
def test_bad_prompts_file_is_one_line(tmp_path, content, fmt, expected):
    path = tmp_path / "bad"
    path.write_text(content)
    with pytest.raises(PromptFileError) as caught:
        read_prompts(PromptFileConfig(file=str(path), format=fmt))
    assert expected in str(caught.value) and str(path) in str(caught.value)


def config_file(tmp_path, workload: str):
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(f"""\
        model: dummy:tiny
        engine: {{options: {{max_model_len: 256}}}}
        workload: {workload}
        load: {{concurrency: [1], requests: 2}}
        """))
    return path


def test_prompt_mode_is_text_by_default():
    assert WorkloadConfig(input_tokens=8, output_tokens=2).prompt == "text"
    assert WorkloadConfig(input_tokens=8, output_tokens=2, prompt="token_ids").prompt == \
        "token_ids"


@pytest.mark.parametrize(("workload", "expected"), [
    ("{input_tokens: 8, output_tokens: 2, prompt: words}", "workload.prompt: Input should be"),
    ("{output_tokens: 2}", "set exactly one of `input_tokens` and `prompts`"),
    ("{output_tokens: 2, prompts: {file: /no/such.jsonl}}", "prompts file /no/such.jsonl: No"),
])
def test_bad_workload_is_a_config_error(tmp_path, workload, expected):
    path = config_file(tmp_path, workload)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert expected in str(caught.value)


def test_a_prompts_file_workload_loads(tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    config = load_config(config_file(tmp_path, f"{{output_tokens: 2, prompts: "
                                                f"{{file: {prompts}}}}}"))
    assert config.workload.prompts.file == str(prompts)


def prompt_source(tiny_model, workload: dict, extensions):
    from harness.config import ExperimentConfig
    from harness.contract.plan import build_plan
    from harness.load.prompt_source import PromptSource

    config = ExperimentConfig.model_validate({
        "model": str(tiny_model), "workload": workload,
        "load": {"concurrency": [1], "requests": 2}})
    return PromptSource(config, build_plan(config)[0], extensions, "run", str(tiny_model))


def test_text_by_default_even_where_the_server_takes_ids(tiny_model):
    from harness.contract.server import TOKEN_IDS

    source = prompt_source(tiny_model, {"input_tokens": 12, "output_tokens": 2},
                           frozenset({TOKEN_IDS}))
    planned = source.workload("c1").chain(0)[0]
    assert isinstance(planned.prompt, str) and planned.input_tokens == 12
    assert len(source.tokenizer(planned.prompt)["input_ids"]) == 12  # with its BOS
    ids = prompt_source(tiny_model, {"input_tokens": 12, "output_tokens": 2,
                                     "prompt": "token_ids"}, frozenset({TOKEN_IDS}))
    assert len(ids.workload("c1").chain(0)[0].prompt) == 12


def test_token_ids_on_a_text_only_server_fail_the_cell_with_the_fix(tiny_model):
    from harness.load.prompt_source import PromptsError

    with pytest.raises(PromptsError, match="set workload.prompt: text"):
        prompt_source(tiny_model, {"input_tokens": 12, "output_tokens": 2,
                                   "prompt": "token_ids"}, frozenset())
