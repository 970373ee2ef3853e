"""Requests of a workload: exact lengths, shared prefixes, conversations that grow."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.config.lengths import LengthDist, fixed_if_number
from harness.config.load import WorkloadConfig
from harness.load.workload import Workload

VOCAB = list(range(3, 259))


def workload(**config) -> Workload:
    return Workload(WorkloadConfig(**config), VOCAB, None, seed=0, salt=1, prefix_salt=2)


def test_fixed_lengths_are_exact():
    chain = workload(input_tokens=50, output_tokens=7).chain(3)
    assert len(chain) == 1
    assert len(chain[0].prompt) == chain[0].input_tokens == 50
    assert chain[0].max_tokens == 7


@given(index=st.integers(0, 10_000))
def test_uniform_lengths_stay_in_range(index):
    w = workload(input_tokens={"dist": "uniform", "min": 10, "max": 20},
                 output_tokens={"dist": "lognormal", "median": 30, "sigma": 1.0, "max": 64})
    request = w.chain(index)[0]
    assert 10 <= len(request.prompt) <= 20
    assert 1 <= request.max_tokens <= 64


def test_normal_lengths_have_the_configured_mean():
    dist = LengthDist(**fixed_if_number({"dist": "normal", "mean": 100, "std": 10}))
    rng = np.random.default_rng(0)
    draws = [dist.draw(rng) for _ in range(4000)]
    assert np.mean(draws) == pytest.approx(100, abs=1)
    assert all(isinstance(d, int) for d in draws)


def test_shared_prefix_is_common_and_the_rest_differs():
    w = workload(input_tokens=100, output_tokens=4,
                 shared_prefix={"share": 0.5, "prefixes": 2})
    a, b, c = (w.chain(i)[0].prompt for i in (0, 2, 1))
    assert a[:50] == b[:50], "requests 0 and 2 share prefix 0"
    assert a[:50] != c[:50], "request 1 uses prefix 1"
    assert a[50:] != b[50:]
    assert len(a) == len(b) == len(c) == 100


def test_conversation_context_grows_turn_by_turn():
    w = workload(input_tokens=10, output_tokens=5, conversation={"turns": 3})
    turns = w.chain(0)
    assert [t.input_tokens for t in turns] == [10, 25, 40]
    assert turns[1].prompt[:10] == turns[0].prompt, "each turn carries the whole history"
    assert turns[2].prompt[:25] == turns[1].prompt


def test_same_index_same_requests_and_indices_differ():
    w = workload(input_tokens=30, output_tokens=4)
    assert w.chain(5) == w.chain(5)
    prompts = {tuple(w.chain(i)[0].prompt) for i in range(500)}
    assert len(prompts) == 500
