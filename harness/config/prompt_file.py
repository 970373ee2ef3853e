"""Real prompts from a file: the ShareGPT layout (a JSON list of conversations) or JSONL.

    sharegpt  [{"conversations": [{"from": "human", "value": ...}, {"from": "gpt", ...}]}]
              the first human turn is the prompt; the reply after it gives the output length
              (in tokens, once tokenized) unless `output_tokens` of the workload is used
    jsonl     one {"prompt": "...", "output_tokens": 128} per line (output_tokens optional)

Conversations without a human turn are skipped; an empty file after that is refused.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from harness.config.base import Strict


class PromptFileError(ValueError):
    """A prompts file is missing or malformed; the message names the file (and line)."""


class PromptFileConfig(Strict):
    file: str
    format: Literal["sharegpt", "jsonl"] = "jsonl"
    output_from_file: bool = Field(
        True, description="output length from the file (JSONL output_tokens, ShareGPT's "
                          "reply); false: from workload.output_tokens")


@dataclass(frozen=True)
class FilePrompt:
    text: str
    output_tokens: int | None = None  # as the file gives it
    reply: str | None = None  # ShareGPT: the answer, whose token count is the output length


@functools.lru_cache(maxsize=4)
def read_prompts(config: PromptFileConfig) -> tuple[FilePrompt, ...]:
    path = Path(config.file).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PromptFileError(f"prompts file {config.file}: "
                              f"{getattr(err, 'strerror', None) or err}") from None
    found = _sharegpt(config.file, text) if config.format == "sharegpt" else \
        _jsonl(config.file, text)
    if not found:
        raise PromptFileError(f"prompts file {config.file}: no prompts in it")
    return tuple(found)


def _sharegpt(file: str, text: str) -> list[FilePrompt]:
    try:
        data = json.loads(text)
    except ValueError as err:
        raise PromptFileError(f"prompts file {file}: not valid JSON ({err})") from None
    if not isinstance(data, list):
        raise PromptFileError(f"prompts file {file}: a ShareGPT file is a JSON list")
    found = []
    for entry in data:
        turns = entry.get("conversations") if isinstance(entry, dict) else None
        if not isinstance(turns, list):
            continue
        for number, turn in enumerate(turns):
            if isinstance(turn, dict) and turn.get("from") == "human" and turn.get("value"):
                after = turns[number + 1] if number + 1 < len(turns) else {}
                reply = after.get("value") if isinstance(after, dict) else None
                found.append(FilePrompt(str(turn["value"]), None, reply or None))
                break
    return found


def _jsonl(file: str, text: str) -> list[FilePrompt]:
    found = []
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            raise PromptFileError(f"prompts file {file}, line {line}: not valid JSON") from None
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str) \
                or not record["prompt"]:
            raise PromptFileError(f"prompts file {file}, line {line}: needs a non-empty "
                                  "\"prompt\" string")
        output = record.get("output_tokens")
        if output is not None and (not isinstance(output, int) or output < 1):
            raise PromptFileError(f"prompts file {file}, line {line}: output_tokens must be "
                                  "a positive whole number")
        found.append(FilePrompt(record["prompt"], output))
    return found
