"""Prompts are exact-length token-id lists, distinct per request, reproducible."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from harness.load.prompts import PromptFactory, allowed_token_ids, salt_of


@given(length=st.integers(1, 2048), index=st.integers(0, 10**6))
def test_exact_length_and_ids_from_vocab(length, index):
    vocab = list(range(3, 259))
    prompt = PromptFactory(vocab, length, seed=0, salt=1).prompt(index)
    assert len(prompt) == length
    assert set(prompt) <= set(vocab)


def test_distinct_per_request_and_per_stream():
    vocab = list(range(3, 259))
    point_a = PromptFactory(vocab, 16, 0, salt_of("run", "cell", "c1"))
    point_b = PromptFactory(vocab, 16, 0, salt_of("run", "cell", "c4"))
    prompts = [tuple(point_a.prompt(i)) for i in range(2000)]
    prompts += [tuple(point_b.prompt(i)) for i in range(2000)]
    assert len(set(prompts)) == len(prompts)


def test_same_inputs_same_prompt():
    vocab = list(range(3, 259))
    assert PromptFactory(vocab, 64, 7, 9).prompt(5) == PromptFactory(vocab, 64, 7, 9).prompt(5)
    assert PromptFactory(vocab, 64, 7, 9).prompt(5) != PromptFactory(vocab, 64, 8, 9).prompt(5)


def test_tiny_model_vocab_excludes_special_tokens(tiny_model):
    ids = allowed_token_ids(str(tiny_model))
    assert len(ids) == 256
    assert not {0, 1, 2} & set(ids)
