"""Engine-side metrics from a Prometheus /metrics endpoint, parsed by prometheus_client.

Snapshots before and after each load point give counter deltas (tokens, preemptions, prefix
cache); samples during it give the batch actually reached (running requests), the queue and
the KV-cache use. Older vLLM names are read where the new ones are missing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from harness.contract.results import EngineStats, ServerView

# Each metric: names to try, newest first (vLLM renamed some around 0.10-0.12).
RUNNING = ("vllm:num_requests_running",)
WAITING = ("vllm:num_requests_waiting",)
KV_CACHE_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
PREEMPTIONS = ("vllm:num_preemptions_total",)
PREFIX_QUERIES = ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total")
PREFIX_HITS = ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")
PROMPT_TOKENS = ("vllm:prompt_tokens_total",)
GENERATION_TOKENS = ("vllm:generation_tokens_total",)

SAMPLE_INTERVAL_S = 0.25
SETTLE_S = 3.0


@dataclass(frozen=True)
class Snapshot:
    """One scrape: sample name -> its values over label sets (one per engine/model)."""

    values: dict[str, list[float]]
    time: float

    def _find(self, names: tuple[str, ...]) -> list[float] | None:
        for name in names:
            if name in self.values:
                return self.values[name]
        return None

    def total(self, names: tuple[str, ...]) -> float | None:
        """Sum over label sets: counters and request counts of all engines."""
        found = self._find(names)
        return sum(found) if found is not None else None

    def peak(self, names: tuple[str, ...]) -> float | None:
        """Largest value over label sets: ratios such as KV-cache use."""
        found = self._find(names)
        return max(found) if found else None


# What the samples during a point need: three gauges out of a ~50 KB text.
SAMPLED = RUNNING + WAITING + KV_CACHE_USAGE


def only(text: str, names: tuple[str, ...]) -> str:
    """The lines of `names` (samples and their # HELP/# TYPE lines), for a cheap parse while
    the load runs: a full parse takes ~10 ms of the client's event loop."""
    keep = tuple(names) + tuple(f"# {kind} {name}" for name in names for kind in ("HELP", "TYPE"))
    return "\n".join(line for line in text.splitlines() if line.startswith(keep)) + "\n"


def parse(text: str, at: float | None = None) -> Snapshot:
    values: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values.setdefault(sample.name, []).append(sample.value)
    return Snapshot(values, time.perf_counter() if at is None else at)


async def scrape(session: aiohttp.ClientSession, url: str,
                 headers: dict[str, str] | None = None,
                 names: tuple[str, ...] | None = None) -> Snapshot:
    """One read of /metrics; with `names`, only those metrics are parsed."""
    async with session.get(url, headers=headers,
                           timeout=aiohttp.ClientTimeout(total=10)) as response:
        response.raise_for_status()
        text = await response.text()
    return parse(only(text, names) if names else text)


def delta(before: Snapshot, after: Snapshot, names: tuple[str, ...]) -> int | None:
    a, b = after.total(names), before.total(names)
    return None if a is None or b is None else int(round(a - b))


async def sample_until(session: aiohttp.ClientSession, url: str, stop: asyncio.Event,
                       interval_s: float = SAMPLE_INTERVAL_S) -> list[Snapshot]:
    """Scrape every `interval_s` until `stop` is set (one scrape at least)."""
    samples: list[Snapshot] = []
    while True:
        try:
            samples.append(await scrape(session, url, names=SAMPLED))
        except (TimeoutError, aiohttp.ClientError):
            pass  # a missed sample; the point's own snapshots decide about the server
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
            return samples
        except TimeoutError:
            continue


async def settled_after(session: aiohttp.ClientSession, url: str, before: Snapshot,
                        expected: tuple[int, int], wait_s: float = SETTLE_S) -> Snapshot:
    """The snapshot after a point.

    The engine updates its counters a little after the last reply leaves, so read again
    until the token deltas reach the client's counts or `wait_s` passes; what is returned is
    what the server says, matching or not.
    """
    deadline = time.perf_counter() + wait_s
    while True:
        after = await scrape(session, url)
        got = (delta(before, after, PROMPT_TOKENS), delta(before, after, GENERATION_TOKENS))
        if got == expected or time.perf_counter() > deadline:
            return after
        await asyncio.sleep(0.1)


def engine_stats(before: Snapshot, after: Snapshot, samples: list[Snapshot],
                 max_num_seqs: int | None) -> EngineStats:
    """Per-point engine view: batch reached, queue, KV cache, preemptions, prefix cache."""
    running = [s.total(RUNNING) for s in samples if s.total(RUNNING) is not None]
    waiting = [s.total(WAITING) for s in samples if s.total(WAITING) is not None]
    kv = [v for s in (before, *samples, after) if (v := s.peak(KV_CACHE_USAGE)) is not None]
    queries, hits = delta(before, after, PREFIX_QUERIES), delta(before, after, PREFIX_HITS)
    return EngineStats(
        samples=len(samples),
        running_mean=sum(running) / len(running) if running else None,
        running_max=max(running) if running else None,
        max_num_seqs=max_num_seqs,
        waiting_max=max(waiting) if waiting else None,
        kv_cache_usage_peak=max(kv) if kv else None,
        preemptions=delta(before, after, PREEMPTIONS),
        prefix_cache_queries=queries,
        prefix_cache_hits=hits,
        prefix_hit_rate=hits / queries if queries else None)


def token_check(client: tuple[int, int], before: Snapshot | None, after: Snapshot | None,
                errors: int) -> ServerView:
    """Client usage totals against the engine's own token counters over the same point."""
    if before is None or after is None:
        server = (None, None)
        verdict = "no server counters"
    else:
        server = (delta(before, after, PROMPT_TOKENS), delta(before, after, GENERATION_TOKENS))
        if server == client:
            verdict = "match"
        elif errors:
            verdict = f"unverifiable ({errors} errors)"
        else:
            verdict = "mismatch"
    return ServerView(prompt_tokens=server[0], generation_tokens=server[1],
                      client_prompt_tokens=client[0], client_generation_tokens=client[1],
                      token_check=verdict)
