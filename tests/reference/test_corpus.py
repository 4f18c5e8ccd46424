"""llm_foundations.corpus: the chapter 2 texts, made locally and deterministically."""
import random

import torch

from llm_foundations.corpus import (
    CAPITAL_OF,
    HELD_OUT_TEXT,
    SAMPLE_TEXT,
    WORD_GROUPS,
    generate_corpus,
    sentences_to_ids,
    skipgram_training_data,
    word_vocabulary,
)


def test_corpus_is_deterministic_and_leaves_global_random_state_alone():
    random.seed(123)
    state = random.getstate()
    torch_state = torch.random.get_rng_state()
    assert generate_corpus(50, seed=4) == generate_corpus(50, seed=4)
    assert generate_corpus(50, seed=4) != generate_corpus(50, seed=5)
    assert random.getstate() == state
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert generate_corpus(0) == []


def test_every_group_word_occurs_and_sentences_are_lower_case_words():
    sentences = generate_corpus(3000)
    words, counts = word_vocabulary(sentences)
    for group in WORD_GROUPS.values():
        for word in group:
            assert word in words, word
            assert counts[words.index(word)] >= 20, word
    assert all(s == s.lower() and "{" not in s and "  " not in s for s in sentences)


def test_capital_sentences_pair_each_country_with_its_capital():
    for sentence in generate_corpus(2000, seed=1):
        if " is the capital of " in sentence:
            capital, country = sentence.split(" is the capital of ")
            assert CAPITAL_OF[country] == capital


def test_two_colour_sentences_use_two_different_colours():
    for sentence in generate_corpus(2000, seed=2):
        if sentence.startswith("the walls are"):
            words = sentence.split()
            assert words[3] != words[-1]


def test_vocabulary_order_and_ids():
    words, counts = word_vocabulary(["b a a", "c a b"])
    assert words == ["a", "b", "c"] and counts.tolist() == [3, 2, 1]
    ids = sentences_to_ids(["b a a", "c a b"], words)
    assert [t.tolist() for t in ids] == [[1, 0, 0], [2, 0, 1]]


def test_skipgram_training_data_shapes():
    words, pairs, noise = skipgram_training_data(200, window=2)
    assert pairs.dim() == 2 and pairs.size(1) == 2 and pairs.max() < len(words)
    assert noise.shape == (len(words),) and abs(noise.sum().item() - 1) < 1e-5


def test_sample_texts_are_plain_prose():
    assert 2000 < len(SAMPLE_TEXT) < 5000 and 100 < len(HELD_OUT_TEXT) < len(SAMPLE_TEXT)
    assert SAMPLE_TEXT.isascii() and HELD_OUT_TEXT.isascii()
