"""llm_foundations.sampling: exact filtering semantics, statistical checks of the samplers with
fixed generators and stated tolerances, and beam search against greedy and exhaustive search.

The statistical tests use :func:`llm_foundations.checks.ch07_token_sampling.frequency_tolerance`: with
``N`` draws over ``V`` tokens, a correct sampler exceeds it with probability below 1e-6
(Hoeffding's inequality and a union bound), and the fixed generators make every run identical.
"""
import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import llm_foundations.checks.ch07_token_sampling as ts
from llm_foundations.sampling import (
    beam_search,
    exhaustive_search,
    gumbel_max_sample,
    sample_next_token,
    sequence_log_prob,
    softmax_with_temperature,
    top_k_filter,
    top_p_filter,
)

INF = math.inf


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ------------------------------------------------------------------ softmax_with_temperature


@pytest.mark.parametrize("shape", [(7,), (3, 7), (2, 3, 7)])
@pytest.mark.parametrize("temperature", [0.1, 0.5, 1, 2.0, 10.0])
def test_softmax_with_temperature_is_softmax_of_scaled_logits(shape, temperature):
    logits = torch.randn(shape) * 3
    probs = softmax_with_temperature(logits, temperature)
    torch.testing.assert_close(probs, torch.softmax(logits / temperature, dim=-1))
    torch.testing.assert_close(probs.sum(-1), torch.ones(shape[:-1]))


def test_softmax_with_temperature_limits_and_entropy():
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0])
    torch.testing.assert_close(softmax_with_temperature(logits, 1e-3), torch.tensor([1.0, 0, 0, 0]))
    torch.testing.assert_close(softmax_with_temperature(logits, 1e4), torch.full((4,), 0.25), atol=1e-3, rtol=0)
    entropies = []
    for t in (0.1, 0.3, 1.0, 3.0, 10.0):
        p = softmax_with_temperature(logits, t)
        entropies.append(float(-(p * p.clamp_min(1e-30).log()).sum()))
    assert entropies == sorted(entropies), "entropy must grow with the temperature"
    assert entropies[-1] < math.log(4)


def test_softmax_with_temperature_keeps_minus_inf_at_zero():
    probs = softmax_with_temperature(torch.tensor([1.0, -INF, 0.0]), 0.7)
    assert probs[1] == 0 and torch.isfinite(probs).all()


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, float("nan"), float("inf"), True, "1"])
def test_softmax_with_temperature_rejects_non_positive_temperature(bad):
    with pytest.raises(ValueError, match="temperature"):
        softmax_with_temperature(torch.randn(5), bad)


# ------------------------------------------------------------------ top_k_filter


def test_top_k_keeps_ties_with_the_kth_value():
    logits = torch.tensor([3.0, 1.0, 1.0, 0.0])
    assert top_k_filter(logits, 2).tolist() == [3.0, 1.0, 1.0, -INF]
    assert top_k_filter(logits, 1).tolist() == [3.0, -INF, -INF, -INF]
    assert top_k_filter(logits, 3).tolist() == [3.0, 1.0, 1.0, -INF]
    assert top_k_filter(torch.zeros(5), 2).tolist() == [0.0] * 5  # all tied: all kept
    # a topk-index implementation keeps exactly k and drops a tied token
    by_index = ts._keep_topk_indices(logits, 2)
    assert (by_index == -INF).sum() == 2


@pytest.mark.parametrize("k", [4, 5, 100])
def test_top_k_with_k_at_least_vocab_returns_the_logits_unchanged(k):
    logits = torch.randn(3, 4)
    out = top_k_filter(logits, k)
    assert torch.equal(out, logits) and out is not logits


@pytest.mark.parametrize("shape", [(9,), (4, 9), (2, 3, 9)])
def test_top_k_any_leading_shape_matches_a_sort_based_filter(shape):
    logits = torch.randint(-3, 4, shape).float()  # many ties
    original = logits.clone()
    for k in range(1, 10):
        out = top_k_filter(logits, k)
        kth = logits.sort(dim=-1, descending=True).values[..., k - 1 : k]
        assert torch.equal(out, torch.where(logits >= kth, logits, torch.full_like(logits, -INF)))
        assert ((out > -INF).sum(-1) >= k).all()
    assert torch.equal(logits, original), "top_k_filter modified its input"


@given(st.lists(st.integers(-3, 3), min_size=1, max_size=12), st.integers(1, 14))
@settings(max_examples=60, deadline=None)
def test_top_k_property_keeps_exactly_the_values_at_least_the_kth(values, k):
    logits = torch.tensor(values, dtype=torch.float32)
    out = top_k_filter(logits, k)
    kept = out > -INF
    ranked = sorted(values, reverse=True)
    threshold = ranked[min(k, len(values)) - 1]
    assert kept.tolist() == [v >= threshold for v in values]
    assert torch.equal(out[kept], logits[kept])


def test_top_k_validation():
    with pytest.raises(ValueError, match="at least 1"):
        top_k_filter(torch.randn(4), 0)
    with pytest.raises(ValueError):
        top_k_filter(torch.randn(4), -2)
    with pytest.raises(TypeError):
        top_k_filter(torch.randn(4), 2.0)


# ------------------------------------------------------------------ top_p_filter


def _top_p_loop(row: list[float], p: float) -> list[bool]:
    """Keep-mask of one row, by a plain loop over the tokens sorted by probability (stable)."""
    m = max(row)
    weights = [math.exp(v - m) if v > -INF else 0.0 for v in row]
    total = sum(weights)
    probs = [w / total for w in weights]
    order = sorted(range(len(row)), key=lambda i: -probs[i])  # Python's sort is stable
    keep, mass = [False] * len(row), 0.0
    for i in order:
        if mass < p:
            keep[i] = True
        mass += probs[i]
    return keep


def test_top_p_keeps_the_token_that_crosses_p():
    logits = torch.tensor([0.5, 0.3, 0.2]).log()
    assert (top_p_filter(logits, 0.6) > -INF).tolist() == [True, True, False]  # 0.5 < 0.6: token 1 kept
    assert (top_p_filter(logits, 0.45) > -INF).tolist() == [True, False, False]
    assert (top_p_filter(logits, 0.81) > -INF).tolist() == [True, True, True]


def test_top_p_near_zero_keeps_the_top_token_and_one_keeps_everything():
    logits = torch.randn(5, 8)
    out = top_p_filter(logits, 1e-9)
    assert torch.equal(out > -INF, torch.nn.functional.one_hot(logits.argmax(-1), 8).bool())
    tiny_tail = torch.tensor([[10.0, 0.0, -30.0, -60.0]])  # p(token 3) ~ 1e-30: rounding must not drop it
    assert torch.equal(top_p_filter(tiny_tail, 1.0), tiny_tail)
    assert torch.equal(top_p_filter(logits, 1), logits)


def test_top_p_ties_rank_lower_ids_first():
    assert (top_p_filter(torch.zeros(4), 0.5) > -INF).tolist() == [True, True, False, False]
    assert (top_p_filter(torch.zeros(4), 0.51) > -INF).tolist() == [True, True, True, False]
    logits = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0])
    assert (top_p_filter(logits, 0.3) > -INF).tolist() == [False, True, False, False, False]
    assert (top_p_filter(logits, 0.5) > -INF).tolist() == [False, True, False, True, False]


@pytest.mark.parametrize("shape", [(10,), (6, 10), (2, 3, 10)])
@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9, 0.99])
def test_top_p_matches_a_loop_per_row(shape, p):
    logits = torch.randn(shape, dtype=torch.float64) * 2
    logits.view(-1, 10)[0, 3] = -INF  # an already filtered token stays filtered
    original = logits.clone()
    out = top_p_filter(logits, p)
    expected = torch.tensor([_top_p_loop(row, p) for row in logits.reshape(-1, 10).tolist()]).reshape(shape)
    assert torch.equal(out > -INF, expected)
    assert torch.equal(out[expected], logits[expected])
    assert torch.equal(logits, original), "top_p_filter modified its input"


@given(st.lists(st.floats(-5, 5), min_size=1, max_size=10), st.floats(0.01, 0.99))
@settings(max_examples=80, deadline=None)
def test_top_p_property_smallest_set_reaching_p(values, p):
    logits = torch.tensor(values, dtype=torch.float64)
    probs = torch.softmax(logits, -1)
    kept = top_p_filter(logits, p) > -INF
    mass = float(probs[kept].sum())
    smallest_kept = float(probs[kept].min())
    assert kept.any()
    # every kept token is at least as likely as every removed one
    assert not (~kept).any() or float(probs[~kept].max()) <= smallest_kept + 1e-12
    # the kept mass reaches p, and dropping the least likely kept token would not (up to rounding)
    assert mass >= p - 1e-9 or kept.all()
    assert mass - smallest_kept < p + 1e-9


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.0001, 2, float("nan"), None])
def test_top_p_validation(bad):
    with pytest.raises(ValueError, match="p must be"):
        top_p_filter(torch.randn(4), bad)


# ------------------------------------------------------------------ sample_next_token


def test_sample_next_token_greedy_is_argmax_whatever_the_filters():
    logits = torch.randn(6, 11)
    logits[0, 2] = logits[0, 5] = logits[0].max() + 1  # a tie: the lower id wins
    for kwargs in ({}, {"top_k": 1}, {"top_k": 3, "top_p": 0.2}, {"top_p": 0.9}):
        out = sample_next_token(logits, temperature=0, **kwargs)
        assert out.dtype == torch.long and torch.equal(out, logits.argmax(-1))
    assert int(out[0]) == 2


def test_sample_next_token_shape_dtype_and_reproducibility():
    logits = torch.randn(5, 7)
    first = sample_next_token(logits, 0.8, top_k=4, generator=torch.Generator().manual_seed(3))
    assert first.shape == (5,) and first.dtype == torch.long
    ts.expect_reproducible(lambda g: sample_next_token(logits, 0.8, top_k=4, top_p=0.9, generator=g), 3, "sample_next_token")
    assert sample_next_token(torch.randn(2, 3, 7), generator=torch.Generator().manual_seed(0)).shape == (2, 3)


@pytest.mark.parametrize(
    "temperature,top_k,top_p",
    [(1.0, None, None), (0.5, None, None), (2.0, None, None), (1.0, 3, None), (1.5, None, 0.7), (0.7, 4, 0.8)],
)
def test_sample_next_token_draws_from_the_filtered_tempered_softmax(temperature, top_k, top_p):
    n = 20_000
    logits = torch.tensor([1.2, 0.3, 2.0, -0.5, 0.9, -1.0])
    gen = torch.Generator().manual_seed(11)
    samples = sample_next_token(logits.expand(n, 6), temperature, top_k=top_k, top_p=top_p, generator=gen)
    ts.expect_samples_follow(samples, ts.sampling_distribution(logits, temperature, top_k, top_p), "sample_next_token")


def test_sample_next_token_order_temperature_before_top_p_and_top_k_before_top_p():
    # temperature first: at T=3 the nucleus of mass 0.6 holds two tokens, at T=1 only one
    logits = torch.tensor([0.7, 0.2, 0.1]).log().expand(4000, 3)
    samples = sample_next_token(logits, 3.0, top_p=0.6, generator=torch.Generator().manual_seed(0))
    assert set(samples.tolist()) == {0, 1}
    # top-k before top-p: among the top 2 tokens (renormalised 0.57 / 0.43) a nucleus of 0.5 is one token
    logits = torch.tensor([0.4, 0.3, 0.2, 0.1]).log().expand(4000, 4)
    samples = sample_next_token(logits, 1.0, top_k=2, top_p=0.5, generator=torch.Generator().manual_seed(0))
    assert set(samples.tolist()) == {0}
    wrong = ts.sample_next_token_mistakes(logits[0], 1.0, 2, 0.5)
    assert wrong["top-p runs before top-k: the order is temperature, top-k, top-p"][1] > 0.4


def test_sample_next_token_validation():
    logits = torch.randn(2, 5)
    for kwargs in ({"temperature": -0.1}, {"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5}):
        with pytest.raises(ValueError):
            sample_next_token(logits, **kwargs)


def test_sample_next_token_follows_the_device_of_its_inputs():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    logits = torch.randn(3, 5, device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    assert sample_next_token(logits, 0.9, top_k=3, top_p=0.9, generator=gen).device == logits.device
    assert gumbel_max_sample(logits, generator=torch.Generator(device=device).manual_seed(0)).device == logits.device


# ------------------------------------------------------------------ gumbel_max_sample


def test_gumbel_max_sample_follows_the_softmax_and_skips_minus_inf():
    n = 20_000
    logits = torch.tensor([1.5, 0.8, -INF, 0.3, 0.0, -0.5])
    samples = gumbel_max_sample(logits.expand(n, 6), generator=torch.Generator().manual_seed(5))
    assert samples.shape == (n,) and samples.dtype == torch.long
    ts.expect_samples_follow(samples, torch.softmax(logits.double(), -1), "gumbel_max_sample")


def test_gumbel_max_sample_is_reproducible():
    logits = torch.randn(4, 9)
    ts.expect_reproducible(lambda g: gumbel_max_sample(logits, generator=g), 7, "gumbel_max_sample")


def test_gumbel_max_sample_works_in_float64_and_any_leading_shape():
    out = gumbel_max_sample(torch.randn(2, 3, 5, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3)


# ------------------------------------------------------------------ beam search


def _toy_step(prefixes):
    """0 = bos, 1 = eos, 2 = 'a', 3 = 'the', 4 = 'cat': greedy takes 'a' (0.55), but 'the' leads to a likelier end."""
    table = {(0,): [0, 0, 0.55, 0.45, 0], (0, 2): [0, 0.1, 0.3, 0.3, 0.3], (0, 3): [0, 0.05, 0, 0, 0.95]}
    rows = [table.get(tuple(p), [0, 1.0, 0, 0, 0]) for p in prefixes.tolist()]
    return torch.tensor(rows).clamp_min(1e-12).log()


def test_beam_search_finds_what_greedy_misses():
    greedy = beam_search(_toy_step, 0, 1, beam_size=1, max_len=4)
    beam = beam_search(_toy_step, 0, 1, beam_size=2, max_len=4)
    assert beam == [0, 3, 4, 1]
    assert greedy == ts.greedy_search(_toy_step, 0, 1, 4) and greedy != beam
    assert sequence_log_prob(_toy_step, beam) > sequence_log_prob(_toy_step, greedy)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("vocab,max_len", [(3, 5), (4, 4), (4, 5)])
def test_beam_search_equals_exhaustive_search_with_a_large_beam(seed, vocab, max_len):
    model = ts.RandomPrefixModel(vocab, seed, eos_id=1, sharpness=1.5)
    best, score = exhaustive_search(model, 0, 1, vocab, max_len)
    assert beam_search(model, 0, 1, beam_size=vocab ** (max_len - 1), max_len=max_len) == best
    assert math.isclose(score, model.score(best), abs_tol=1e-6)


@pytest.mark.parametrize("seed", range(12))
def test_beam_size_one_is_greedy_and_larger_beams_match_an_independent_implementation(seed):
    model = ts.RandomPrefixModel(4, seed, eos_id=1, sharpness=1.2)
    assert beam_search(model, 0, 1, 1, 6) == ts.greedy_search(model, 0, 1, 6)
    for beam_size in (2, 3, 5):
        tokens = beam_search(model, 0, 1, beam_size, 6)
        assert tokens == ts.expected_beam_search(model, 0, 1, beam_size, 6)
        ts.expect_valid_sequence(tokens, 0, 1, 6, "beam_search")


def test_beam_search_calls_step_fn_with_all_live_prefixes_at_once():
    model = ts.RandomPrefixModel(5, 0, eos_id=1)
    beam_search(model, 0, 1, 3, 5)
    assert model.calls[0] == (1, 1)
    assert all(n <= 3 and t == i + 1 for i, (n, t) in enumerate(model.calls))


def test_beam_search_edge_cases():
    model = ts.RandomPrefixModel(4, 1, eos_id=1)
    assert beam_search(model, 0, 1, 3, 1) == [0]
    assert len(beam_search(model, 0, 1, 3, 2)) == 2
    # bos == eos (GPT-2 style): [bos] alone is not finished
    same = ts.RandomPrefixModel(4, 2, eos_id=0)
    tokens = beam_search(same, 0, 0, 2, 4)
    assert len(tokens) >= 2 and tokens[0] == 0
    ts.expect_valid_sequence(tokens, 0, 0, 4, "beam_search with bos == eos")
    assert beam_search(same, 0, 0, 4**3, 4) == exhaustive_search(same, 0, 0, 4, 4)[0]
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, 0, 1, 0, 4)
    with pytest.raises(ValueError, match="max_len"):
        beam_search(model, 0, 1, 2, 0)
    with pytest.raises(ValueError, match="shape"):
        beam_search(lambda p: torch.zeros(5), 0, 1, 2, 4)


def test_beam_search_does_not_length_normalise():
    # after bos: eos 0.45 or 'x' 0.55; after 'x': 'y' 0.6 or eos 0.4
    def step(prefixes):
        rows = [[0, 0.45, 0.55, 0] if len(p) == 1 else [0, 0.4, 0, 0.6] for p in prefixes.tolist()]
        return torch.tensor(rows).clamp_min(1e-12).log()

    # totals: [0, 1] -0.80, [0, 2, 3] -1.11: the short one wins; per token it would lose (-0.40 vs -0.37)
    assert beam_search(step, 0, 1, 4, 3) == [0, 1]
    assert beam_search(step, 0, 1, 1, 3) == [0, 2, 3]  # greedy
    assert beam_search(step, 0, 1, 4, 2) == [0, 2]  # stopped by max_len, without eos
    assert ts.beam_search_mistakes(step, 0, 1, 4, 3)[next(iter(ts.beam_search_mistakes(step, 0, 1, 4, 3)))] == [0, 2, 3]


def test_length_penalty_ranks_by_log_probability_per_token():
    def step(prefixes):  # the model of the test above
        rows = [[0, 0.45, 0.55, 0] if len(p) == 1 else [0, 0.4, 0, 0.6] for p in prefixes.tolist()]
        return torch.tensor(rows).clamp_min(1e-12).log()

    assert beam_search(step, 0, 1, 4, 3, length_penalty=0.0) == beam_search(step, 0, 1, 4, 3) == [0, 1]
    assert beam_search(step, 0, 1, 4, 3, length_penalty=1.0) == [0, 2, 3]  # -0.37 per token beats -0.80
    with pytest.raises(ValueError, match="length_penalty"):
        beam_search(step, 0, 1, 4, 3, length_penalty=-1.0)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_a_large_beam_with_length_penalty_finds_the_best_normalised_sequence(alpha):
    table = torch.randn(4, 4, generator=torch.Generator().manual_seed(3)).log_softmax(-1)  # a random bigram model

    def model(prefixes):
        return table[prefixes[:, -1]]

    best, best_score = None, -math.inf
    for tail in itertools.product(range(4), repeat=4):
        tail = tail[: tail.index(1) + 1] if 1 in tail else tail
        tokens = [0, *tail]
        score = sequence_log_prob(model, tokens) / len(tail) ** alpha
        if score > best_score + 1e-12:
            best, best_score = tokens, score
    assert beam_search(model, 0, 1, 4**4, 5, length_penalty=alpha) == best
