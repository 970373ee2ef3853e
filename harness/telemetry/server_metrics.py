"""Engine-side counters from a Prometheus /metrics endpoint, parsed by prometheus_client."""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

PROMPT_TOKENS = "vllm:prompt_tokens_total"
GENERATION_TOKENS = "vllm:generation_tokens_total"


def parse_samples(text: str) -> dict[str, float]:
    """Sample name -> value summed over label sets (engines, models)."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


async def scrape(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
        response.raise_for_status()
        return parse_samples(await response.text())


async def settled_token_deltas(url: str, before: dict[str, float], expected: tuple[int, int],
                               wait_s: float = 3.0) -> tuple[int, int]:
    """(prompt, generation) token deltas since `before`.

    The engine updates its counters a little after the last reply leaves, so read again
    until they reach the client's counts or `wait_s` passes; what is returned is what the
    server says, matching or not.
    """
    async with aiohttp.ClientSession() as session:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            after = await scrape(session, url)
            deltas = (int(after.get(PROMPT_TOKENS, 0) - before.get(PROMPT_TOKENS, 0)),
                      int(after.get(GENERATION_TOKENS, 0) - before.get(GENERATION_TOKENS, 0)))
            if deltas == expected or loop.time() > deadline:
                return deltas
            await asyncio.sleep(0.1)


async def scrape_once(url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as session:
        return await scrape(session, url)
