"""Faults the mock server can inject, for testing how the client records and survives them.

A fault plan is a cycle of fault names, one per completion request in the order a worker
receives them: `ok,http500,reset:2` answers request 1 normally, request 2 with HTTP 500,
request 3 with a reset after 2 token chunks, request 4 normally again, and so on.

    ok            a normal stream
    http500       HTTP 500 with a JSON error body
    http429       HTTP 429 with a JSON error body and retry-after: 1
    reset:K       K token chunks, then the connection reset (RST)
    stall:K       K token chunks, then nothing: the stream never ends (a hung engine)
    malformed     a malformed SSE event after the first token chunk
    no-usage      no usage chunk at the end, though the client asked for one
    bad-usage     a usage chunk that counts 5 more completion tokens than were streamed
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BAD_USAGE_EXTRA = 5
NAMES = ("ok", "http500", "http429", "reset", "stall", "malformed", "no-usage", "bad-usage")
COUNTED = ("reset", "stall")  # the faults that take `:K`


@dataclass(frozen=True)
class Fault:
    name: str
    after: int = 0  # token chunks before a reset or a stall


def parse_fault(text: str) -> Fault:
    match = re.fullmatch(r"([a-z0-9-]+)(?::(\d+))?", text.strip())
    if not match or match.group(1) not in NAMES:
        raise ValueError(f"unknown fault {text!r}: use {', '.join(NAMES)}")
    name, count = match.group(1), match.group(2)
    if count is not None and name not in COUNTED:
        raise ValueError(f"fault {name} takes no count")
    return Fault(name, int(count or 0))


def parse_plan(text: str | None) -> tuple[Fault, ...]:
    """`ok,http500,reset:2` -> the cycle of faults; empty: no faults."""
    return tuple(parse_fault(part) for part in (text or "").split(",") if part.strip())


class FaultCycle:
    """One worker's place in the plan: the fault for each completion request it receives."""

    def __init__(self, plan: tuple[Fault, ...]):
        self.plan = plan or (Fault("ok"),)
        self.taken = 0

    def next(self) -> Fault:
        fault = self.plan[self.taken % len(self.plan)]
        self.taken += 1
        return fault
