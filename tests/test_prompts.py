"""Prompts are exact-length token-id lists, distinct per request, reproducible (as the
workload draws them)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from harness.load.prompts import allowed_token_ids, salt_of

from .loads import workload


def prompt(vocab, length, seed, salt, index):
    return workload(vocab, length, 4, seed=seed, salt=salt).chain(index)[0].prompt


@given(length=st.integers(1, 2048), index=st.integers(0, 10**6))
def test_exact_length_and_ids_from_vocab(length, index):
    vocab = list(range(3, 259))
    drawn = prompt(vocab, length, 0, 1, index)
    assert len(drawn) == length
    assert set(drawn) <= set(vocab)


def test_distinct_per_request_and_per_stream():
    vocab = list(range(3, 259))
    point_a, point_b = salt_of("run", "cell", "c1"), salt_of("run", "cell", "c4")
    prompts = [tuple(prompt(vocab, 16, 0, point_a, i)) for i in range(2000)]
    prompts += [tuple(prompt(vocab, 16, 0, point_b, i)) for i in range(2000)]
    assert len(set(prompts)) == len(prompts)


def test_same_inputs_same_prompt():
    vocab = list(range(3, 259))
    assert prompt(vocab, 64, 7, 9, 5) == prompt(vocab, 64, 7, 9, 5)
    assert prompt(vocab, 64, 7, 9, 5) != prompt(vocab, 64, 8, 9, 5)


def test_a_prompt_is_the_ids_its_own_generator_draws_first():
    """Request i's prompt is the first draw of generator (seed, salt, i) from the vocabulary:
    the prompts earlier runs sent, byte for byte, and the same on a resume."""
    vocab = list(range(3, 259))
    rng = np.random.default_rng([7, 9, 5])
    assert prompt(vocab, 64, 7, 9, 5) == np.asarray(vocab)[rng.integers(0, 256, 64)].tolist()


def test_tiny_model_vocab_excludes_special_tokens(tiny_model):
    ids = allowed_token_ids(str(tiny_model))
    assert len(ids) == 256
    assert not {0, 1, 2} & set(ids)
