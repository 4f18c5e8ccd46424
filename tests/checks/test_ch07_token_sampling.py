"""The chapter-7 checks (llm_foundations.checks.ch07_token_sampling): the statistical checks and their
tolerance, the independent computations against the reference, every named mistake, the beam-search
helpers, and the guard against the reference."""

import math

import pytest
import torch

import llm_foundations.checks.ch07_token_sampling as ts
from llm_foundations.sampling import (
    beam_search,
    gumbel_max_sample,
    sample_next_token,
    sequence_log_prob,
    softmax_with_temperature,
    top_k_filter,
    top_p_filter,
)
from mistakes import named

INF = math.inf


def test_frequency_tolerance_formula():
    tol = ts.frequency_tolerance(20_000, 6)
    assert 0.019 < tol < 0.021
    assert 2 * 6 * math.exp(-2 * 20_000 * tol**2) == pytest.approx(1e-6)


def test_expect_samples_follow_detects_wrong_distributions_and_names_the_mistake():
    logits = torch.tensor([1.2, 0.3, 2.0, -0.5, 0.9, -1.0])
    samples = sample_next_token(logits.expand(20_000, 6), 2.0, generator=torch.Generator().manual_seed(1))
    ts.expect_samples_follow(samples, ts.sampling_distribution(logits, 2.0), "ok")
    wrong = sample_next_token((logits * 2.0).expand(20_000, 6), 1.0, generator=torch.Generator().manual_seed(1))
    with pytest.raises(AssertionError, match="multiplies the logits"):
        ts.expect_samples_follow(wrong, ts.sampling_distribution(logits, 2.0), "x",
                                 hints=ts.sample_next_token_mistakes(logits, 2.0))
    filtered = ts.sampling_distribution(logits, 1.0, top_k=2)
    with pytest.raises(AssertionError, match="probability is 0"):
        ts.expect_samples_follow(sample_next_token(logits.expand(500, 6)), filtered, "x")


def test_expect_filtered_and_mistake_hints():
    logits = torch.tensor([[3.0, 1.0, 1.0, 0.0]])
    ts.expect_filtered(top_k_filter(logits, 2), logits, top_k_filter(logits, 2), "ok")
    with pytest.raises(AssertionError, match="drops tokens tied"):
        ts.expect_filtered(ts._keep_topk_indices(logits, 2), logits, top_k_filter(logits, 2), "x",
                           hints=ts.top_k_filter_mistakes(logits, 2))
    with pytest.raises(AssertionError, match="logits changed"):
        ts.expect_filtered(top_k_filter(logits, 2) - 1, logits, top_k_filter(logits, 2), "x")
    with pytest.raises(AssertionError, match="not probabilities"):
        ts.expect_filtered(torch.softmax(top_k_filter(logits, 2), -1), logits, top_k_filter(logits, 2), "x")
    with pytest.raises(AssertionError, match="exactly -inf"):
        ts.expect_filtered(logits.masked_fill(logits < 1, -1e9), logits, top_k_filter(logits, 2), "x")
    probs = torch.tensor([[0.5, 0.3, 0.2]]).log()
    with pytest.raises(AssertionError, match="crosses p"):
        ts.expect_filtered(torch.tensor([[probs[0, 0], -INF, -INF]]), probs, top_p_filter(probs, 0.6), "x",
                           hints=ts.top_p_filter_mistakes(probs, 0.6))


def test_forbid_reference_catches_a_wrapper():
    def wrapper(logits, k):
        return top_k_filter(logits, k)

    with pytest.raises(AssertionError, match="reference"):
        with ts.forbid_reference("top_k_filter", "top_k_filter"):
            wrapper(torch.randn(4), 2)
    with ts.forbid_reference("beam_search", "beam_search"):  # the test's own step_fn is allowed
        ts.RandomPrefixModel(3, 0)(torch.zeros(1, 1, dtype=torch.long))


def test_forbid_torch_calls_sees_multinomial():
    with pytest.raises(AssertionError, match="multinomial"):
        with ts.forbid_torch_calls("gumbel_max_sample", ("multinomial",), "use the Gumbel-max trick"):
            torch.multinomial(torch.ones(3), 1)
    with ts.forbid_torch_calls("gumbel_max_sample", ("multinomial",), "use the Gumbel-max trick"):
        gumbel_max_sample(torch.randn(2, 3))


@pytest.mark.parametrize("shape", [(10,), (6, 10), (2, 3, 10)])
def test_expected_helpers_agree_with_the_reference(shape):
    logits = torch.randn(shape) * 2
    for k in (1, 3, 10, 12):
        assert torch.equal(ts.expected_top_k(logits, k), top_k_filter(logits, k))
    for p in (0.05, 0.5, 0.9, 1.0):
        assert torch.equal(ts.expected_top_p(logits, p), top_p_filter(logits, p))
    torch.testing.assert_close(ts.expected_softmax(logits, 0.3), softmax_with_temperature(logits.double(), 0.3))


def test_softmax_with_temperature_mistakes_are_the_mistakes_they_name():
    logits = torch.randn(3, 7, dtype=torch.float64)
    m = ts.softmax_with_temperature_mistakes(logits, 2.0)
    torch.testing.assert_close(named(m, "the logits are multiplied"), softmax_with_temperature(logits, 0.5))
    torch.testing.assert_close(named(m, "the temperature is ignored"), softmax_with_temperature(logits, 1.0))
    torch.testing.assert_close(named(m, "the softmax runs over the first dimension").sum(0), torch.ones(7, dtype=torch.float64))
    for why, wrong in m.items():
        assert not torch.allclose(wrong, softmax_with_temperature(logits, 2.0)), why
    assert not any("first dimension" in why for why in ts.softmax_with_temperature_mistakes(logits[0], 2.0))


def test_top_k_and_top_p_mistakes_differ_and_are_what_they_name():
    logits = torch.tensor([[3.0, 1.0, 2.0, 1.0, -1.0, 0.5]])  # a tie at the third largest
    right = top_k_filter(logits, 3)
    m = ts.top_k_filter_mistakes(logits, 3)
    assert torch.equal(named(m, "only k - 1 tokens are kept"), top_k_filter(logits, 2))
    smallest = named(m, "the k smallest logits are kept")
    assert torch.equal(smallest > -INF, top_k_filter(-logits, 3) > -INF)
    assert torch.equal(smallest[smallest > -INF], logits[smallest > -INF])
    assert int((named(m, "the kept tokens are chosen by the indices") > -INF).sum()) == 3
    assert int((right > -INF).sum()) == 4
    for why, wrong in m.items():
        if not why.startswith("k + 1 tokens"):  # with the tie, keeping 4 is right here
            assert not torch.equal(wrong, right), why
    distinct = torch.tensor([[0.3, 2.0, -1.0, 1.2, 0.0]])
    m = ts.top_k_filter_mistakes(distinct, 2)
    assert torch.equal(named(m, "k + 1 tokens are kept"), top_k_filter(distinct, 3))
    for why, wrong in m.items():
        if not why.startswith("the kept tokens are chosen by the indices"):  # the same without ties
            assert not torch.equal(wrong, top_k_filter(distinct, 2)), why

    logits = torch.tensor([[2.0, 0.1, 1.0, -0.5, 0.6]])  # probabilities about 0.52, 0.08, 0.19, 0.04, 0.13
    right = top_p_filter(logits, 0.6)
    for why, wrong in ts.top_p_filter_mistakes(logits, 0.6).items():
        assert not torch.equal(wrong, right), why
    ascending = named(ts.top_p_filter_mistakes(logits, 0.6), "the probabilities are sorted in ascending order")
    assert torch.equal(right > -INF, torch.tensor([[True, False, True, False, False]]))  # 0.52, then 0.19 crosses 0.6
    assert bool((ascending > -INF).all())  # from the least probable up, the mass before 0.52 is 0.44 < 0.6


@pytest.mark.parametrize("top_k,top_p", [(None, None), (3, None), (None, 0.7), (3, 0.7)])
def test_sampling_distribution_and_its_mistakes(top_k, top_p):
    logits = torch.tensor([1.2, 0.3, 2.0, -0.5, 0.9, -1.0], dtype=torch.float64)
    expected = logits / 0.7
    expected = top_k_filter(expected, top_k) if top_k else expected
    expected = top_p_filter(expected, top_p) if top_p else expected
    torch.testing.assert_close(ts.sampling_distribution(logits, 0.7, top_k, top_p), torch.softmax(expected, -1))
    m = ts.sample_next_token_mistakes(logits, 0.7, top_k, top_p)
    torch.testing.assert_close(named(m, "the temperature is ignored"), ts.sampling_distribution(logits, 1.0, top_k, top_p))
    if top_k:
        torch.testing.assert_close(named(m, "top_k is ignored"), ts.sampling_distribution(logits, 0.7, None, top_p))
    if top_p:
        torch.testing.assert_close(named(m, "top_p is ignored"), ts.sampling_distribution(logits, 0.7, top_k, None))
    assert ("top-p runs before top-k: the order is temperature, top-k, top-p" in m) == bool(top_k and top_p)


def test_gumbel_mistakes_are_far_from_the_softmax_and_the_right_trick_is_not():
    z = torch.tensor([1.5, 0.8, 0.3, 0.0, -0.5, -1.2])
    tol = ts.frequency_tolerance(20_000, 6)
    for explanation, freq in ts.gumbel_mistakes(z, n_samples=20_000).items():
        assert float((freq - torch.softmax(z.double(), -1)).abs().max()) > 2 * tol + 0.01, explanation
    freq = ts.frequencies(gumbel_max_sample(z.expand(20_000, 6), generator=torch.Generator().manual_seed(2)), 6)
    assert float((freq - torch.softmax(z.double(), -1)).abs().max()) < tol


def test_frequencies_and_sample_checks():
    torch.testing.assert_close(ts.frequencies(torch.tensor([0, 2, 2, 1]), 4),
                               torch.tensor([0.25, 0.25, 0.5, 0.0], dtype=torch.float64))
    ts.expect_token_samples(torch.tensor([[0, 3]]), (1, 2), 4, "ids")
    with pytest.raises(AssertionError, match="integer tensor"):
        ts.expect_token_samples(torch.tensor([[0.0, 3.0]]), (1, 2), 4, "ids")
    with pytest.raises(AssertionError, match=r"must lie in \[0, 4\)"):
        ts.expect_token_samples(torch.tensor([[0, 4]]), (1, 2), 4, "ids")
    with pytest.raises(AssertionError, match="generator"):
        ts.expect_reproducible(lambda g: torch.randint(0, 9, (20,)), 1, "ignores its generator")
    before = torch.randn(3)
    ts.expect_unchanged(before, before.clone(), "f")
    with pytest.raises(AssertionError):
        ts.expect_unchanged(before, before + 1, "f")
    probs = torch.softmax(torch.randn(2, 5), -1)
    ts.expect_probabilities(probs.clone(), probs.double(), "p")
    with pytest.raises(AssertionError):
        ts.expect_probabilities(probs.log(), probs.double(), "p")


def test_beam_search_helpers_agree_with_the_reference_and_the_mistakes_differ():
    differ = 0
    for seed in range(6):
        model = ts.RandomPrefixModel(4, seed, eos_id=1, sharpness=1.5)
        assert ts.greedy_search(model, 0, 1, 6) == beam_search(model, 0, 1, 1, 6)
        right = beam_search(model, 0, 1, 3, 6)
        assert ts.expected_beam_search(model, 0, 1, 3, 6) == right
        assert ts.scorer(model)(right) == pytest.approx(model.score(right), abs=1e-5)
        assert model.score(right) == pytest.approx(sequence_log_prob(model, right), abs=1e-5)
        mistakes = ts.beam_search_mistakes(model, 0, 1, 3, 6)
        assert len(named(mistakes, "the search runs one step too many")) <= 7
        differ += sum(tokens != right for tokens in mistakes.values())
    assert differ >= 12  # a mistake may coincide with the answer on one model, not on most
    with pytest.raises(ValueError, match="shape"):
        ts.RandomPrefixModel(3, 0)(torch.zeros(3, dtype=torch.long))


def test_sequence_checks():
    assert ts.as_token_list(torch.tensor([0, 2, 1]), "t") == [0, 2, 1]
    with pytest.raises(AssertionError, match="found 2.0"):
        ts.as_token_list([0, 2.0], "t")
    ts.expect_valid_sequence([0, 2, 1], 0, 1, 3, "t")
    with pytest.raises(AssertionError, match="must start with bos_id=0"):
        ts.expect_valid_sequence([2, 1], 0, 1, 3, "t")
    with pytest.raises(AssertionError, match="max_len counts every token"):
        ts.expect_valid_sequence([0, 2, 2, 1], 0, 1, 3, "t")
    with pytest.raises(AssertionError, match="must not be extended"):
        ts.expect_valid_sequence([0, 1, 2], 0, 1, 3, "t")
    model = ts.RandomPrefixModel(3, 0)
    with pytest.raises(AssertionError, match=r"total log-probability .*\nHint: this is what happens when it stops early"):
        ts.expect_same_sequence([0, 1], [0, 2, 1], "t", model.score, hints=lambda: {"it stops early": [0, 1]})


def test_forbid_reference_catches_a_direct_call_and_the_checks_helpers():
    logits = torch.randn(2, 6)
    with pytest.raises(AssertionError, match="reference"):
        with ts.forbid_reference("sample_next_token", "sample_next_token"):
            sample_next_token(logits, 1.0)
    with pytest.raises(AssertionError, match="reference"):  # a helper computing the answer
        with ts.forbid_reference("top_p_filter", "top_p_filter"):
            ts.expected_top_p(logits, 0.5)
    with pytest.raises(AssertionError, match="reference"):  # sample_next_token may not reach the filters
        with ts.forbid_reference("sample_next_token", "sample_next_token"):
            top_k_filter(logits, 2)
    with ts.forbid_reference("top_k_filter", "top_k_filter"):  # another task's reference is allowed
        top_p_filter(logits, 0.5)
    with pytest.raises(TypeError, match="needs the task"):
        with ts.forbid_reference("x"):
            pass


def test_call_turns_known_errors_into_hints(expect_hint_table):
    expect_hint_table(ts.call, ts._ERROR_HINTS)
    with pytest.raises(AssertionError, match="when k >= V, return the logits unchanged"):
        ts.call(torch.topk, torch.randn(4), 9, what="top_k_filter")
