"""Checks for the token-sampling exercise (chapter 7): statistical tests of samplers with stated
tolerances, filter comparisons that understand ``-inf``, what common mistakes return, a random
prefix-dependent "language model" for beam search, and a guard against calling the reference.

Used by the test cells of ``solutions/07_token_sampling``; :mod:`llm_foundations.checks.core` holds
the general checks (``expect_close`` and friends).

Dimension letters: ``B`` rows (batch), ``V`` vocabulary, ``N`` samples.

**How the statistical checks decide.** ``N`` independent draws from a distribution ``p`` over
``V`` tokens give frequencies ``f``. By Hoeffding's inequality each
``P(|f_i - p_i| >= t) <= 2 exp(-2 N t^2)``, so with a union bound over the ``V`` tokens

    P(max_i |f_i - p_i| >= t) <= 2 V exp(-2 N t^2) = delta   for   t = sqrt(ln(2 V / delta) / (2 N)).

The checks use ``delta = 1e-6``: a correct sampler fails a check with probability below one in a
million (and, with the fixed generators of the tests, either always or never). For ``N = 20000``
and ``V = 6`` that is ``t = 0.020``, so any mistake that moves some token's probability by more
than about ``2 t = 0.04`` is caught almost surely. Tokens of probability 0 are checked exactly:
one draw of such a token fails.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor

import llm_foundations.sampling as _reference
import llm_foundations.checks.core as core

#: the failure probability every statistical check is sized for
FAILURE_PROBABILITY = 1e-6


# ----------------------------------------------------------------------------------------------
# statistics


def frequency_tolerance(n_samples: int, n_outcomes: int, failure_prob: float = FAILURE_PROBABILITY) -> float:
    """Largest ``max_i |f_i - p_i|`` that ``n_samples`` correct draws exceed with probability ``<= failure_prob``.

    Hoeffding's inequality and a union bound over the ``n_outcomes`` tokens (see the module
    docstring): ``sqrt(ln(2 * n_outcomes / failure_prob) / (2 * n_samples))``.
    """
    return math.sqrt(math.log(2 * n_outcomes / failure_prob) / (2 * n_samples))


def frequencies(samples: Tensor, vocab_size: int) -> Tensor:
    """Empirical distribution of integer ``samples`` (any shape) over ``vocab_size`` tokens, float64 ``(V,)``."""
    flat = samples.detach().flatten().to("cpu", torch.long)
    return torch.bincount(flat, minlength=vocab_size).double() / max(flat.numel(), 1)


def _resolve(hints):
    """Hints may be given lazily, as a function computing them: they are only needed when a check fails."""
    return (hints() if callable(hints) else hints) or {}


def _table(freq: Tensor, probs: Tensor, limit: int = 10) -> str:
    rows = [f"    token {i}: expected {p:.4f}, drawn {f:.4f}" for i, (p, f) in enumerate(zip(probs.tolist(), freq.tolist()))]
    more = [f"    ... ({len(rows) - limit} more)"] if len(rows) > limit else []
    return "\n".join(rows[:limit] + more)


def expect_token_samples(samples: object, shape: tuple[int, ...], vocab_size: int, what: str) -> Tensor:
    """Fail unless ``samples`` is an integer tensor of ``shape`` holding token ids in ``[0, vocab_size)``."""
    samples = core.expect_shape(samples, shape, what, hint="one token id per row of logits: the vocabulary "
                                    "dimension (the last one) disappears")
    if samples.dtype not in (torch.int64, torch.int32):
        raise AssertionError(f"{what}: expected token ids as an integer tensor (torch.long), got dtype {samples.dtype}. "
                             "Hint: torch.multinomial and argmax return torch.long; do not convert to float.")
    if samples.numel() and (int(samples.min()) < 0 or int(samples.max()) >= vocab_size):
        raise AssertionError(f"{what}: token ids must lie in [0, {vocab_size}), got values from {int(samples.min())} "
                             f"to {int(samples.max())}")
    return samples


def expect_samples_follow(
    samples: Tensor,
    probs: Tensor,
    what: str,
    hints: Mapping[str, Tensor] | Callable[[], Mapping[str, Tensor]] | None = None,
    hint: str = "",
    failure_prob: float = FAILURE_PROBABILITY,
) -> None:
    """Fail unless the draws in ``samples`` look like independent draws from ``probs``.

    Exact part: a token of probability 0 must never be drawn. Statistical part: every token's
    frequency must be within :func:`frequency_tolerance` of its probability.

    Args:
        samples: token ids, any shape (every entry a draw from ``probs``).
        probs: the target distribution ``(V,)``.
        what: what is being checked, in words.
        hints: ``{explanation: distribution (V,)}`` of known mistakes; a mistake whose
            distribution explains the draws (same support, frequencies within the tolerance)
            becomes the hint. A function returning the mapping is also accepted (called only on failure).
        hint: a hint for when no known mistake matches.
    """
    probs = probs.detach().to("cpu", torch.float64)
    vocab = probs.numel()
    freq = frequencies(samples, vocab)
    n = samples.numel()
    tol = frequency_tolerance(n, vocab, failure_prob)
    impossible = (probs == 0) & (freq > 0)
    gap = float((freq - probs).abs().max())
    if not impossible.any() and gap <= tol:
        return
    if impossible.any():
        j = int(impossible.nonzero()[0])
        problem = (f"{what}: token {j} was drawn {int(round(float(freq[j]) * n))} times in {n} draws, but its "
                   "probability is 0 (it must be filtered out or has logit -inf).")
    else:
        problem = (f"{what}: the frequencies of {n} draws are too far from the expected probabilities (largest "
                   f"gap {gap:.4f}; a correct sampler stays within {tol:.4f} except with probability "
                   f"{failure_prob:g}).")
    message = f"{problem}\n{_table(freq, probs)}"
    for explanation, mistake in _resolve(hints).items():
        mistake = mistake.detach().to("cpu", torch.float64)
        if mistake.shape != probs.shape or ((mistake == 0) & (freq > 0)).any():
            continue
        if float((freq - mistake).abs().max()) <= tol + 0.005:
            raise AssertionError(f"{message}\nHint: this is what happens when {explanation}.")
    raise AssertionError(f"{message}\nHint: {hint}" if hint else message)


def expect_reproducible(draw: Callable[[torch.Generator], Tensor], seed: int, what: str) -> Tensor:
    """Fail unless ``draw(generator)`` depends on the generator only: equal seeds, equal tokens.

    The global random state is moved between the two draws, so code that ignores ``generator``
    (and uses ``torch.rand``/``torch.multinomial`` without it) is caught.
    """
    torch.manual_seed(seed + 1)
    first = draw(torch.Generator().manual_seed(seed))
    torch.manual_seed(seed + 2)
    torch.rand(17)
    second = draw(torch.Generator().manual_seed(seed))
    if not torch.equal(first.cpu(), second.cpu()):
        raise AssertionError(
            f"{what}: two calls with generators seeded alike returned different tokens "
            f"({first.flatten()[:8].tolist()} vs {second.flatten()[:8].tolist()}). Hint: pass `generator=generator` to "
            "every random function you call (torch.multinomial, torch.rand, Tensor.exponential_, ...): the global "
            "random state must not matter."
        )
    return first


# ----------------------------------------------------------------------------------------------
# filters


def expect_filtered(
    got: object,
    logits: Tensor,
    expected: Tensor,
    what: str,
    hints: Mapping[str, Tensor] | Callable[[], Mapping[str, Tensor]] | None = None,
    hint: str = "",
) -> Tensor:
    """Fail unless ``got`` removes (``-inf``) exactly the tokens ``expected`` removes and keeps the others' logits.

    ``logits`` is the input the filter saw; ``hints`` maps explanations to what known mistakes return
    (or is a function returning that mapping, called only on failure).
    """
    got = core.expect_shape(got, tuple(expected.shape), what, hint="a filter returns logits of the same shape "
                                "as its input: entries are replaced by -inf, never removed")
    got_cpu = got.detach().to("cpu", torch.float64)
    expected_cpu = expected.detach().to("cpu", torch.float64)
    if torch.isnan(got_cpu).any():
        raise AssertionError(f"{what}: the result contains NaN at {int(torch.isnan(got_cpu).sum())} entries")
    removed_got, removed_expected = got_cpu == -math.inf, expected_cpu == -math.inf
    if torch.equal(removed_got, removed_expected):
        kept = ~removed_expected
        if core.close(got_cpu[kept], expected_cpu[kept], 1e-6, 1e-6):
            return got
        raise AssertionError(
            f"{what}: the right tokens are kept, but their logits changed (e.g. {got_cpu[kept][:4].tolist()} instead "
            f"of {expected_cpu[kept][:4].tolist()}). Hint: a filter only writes -inf into the removed entries; the "
            "kept entries stay the logits you were given (no softmax, no renormalising)."
        )
    vocab = expected.shape[-1]
    rows_got, rows_expected = removed_got.reshape(-1, vocab), removed_expected.reshape(-1, vocab)  # (rows, V)
    row = int((rows_got != rows_expected).any(-1).nonzero()[0])
    lead = tuple(int(i) for i in torch.unravel_index(torch.tensor(row), logits.shape[:-1])) if logits.dim() > 1 else ()
    flat_logits = logits.detach().to("cpu", torch.float64).reshape(-1, logits.shape[-1])
    message = (
        f"{what}: wrong tokens removed in row {lead}.\n"
        f"  logits of that row:          {_fmt(flat_logits[row])}\n"
        f"  kept tokens, expected:       {(~rows_expected[row]).nonzero().flatten().tolist()}\n"
        f"  kept tokens, your result:    {(~rows_got[row]).nonzero().flatten().tolist()}"
    )
    for explanation, mistake in _resolve(hints).items():
        if mistake.shape == expected.shape and torch.equal(mistake.detach().cpu() == -math.inf, removed_got.cpu()):
            raise AssertionError(f"{message}\nHint: this is what happens when {explanation}.")
    missed = removed_expected & ~removed_got
    if missed.any() and bool((got_cpu[missed] <= -1e3).all()):
        hint = ("removed entries must be exactly -inf (float('-inf')), not a large negative number, so that they get "
                "probability exactly 0.")
    elif missed.any() and bool(((got_cpu >= 0) & (got_cpu <= 1)).all()):
        hint = "a filter returns logits with -inf in the removed entries, not probabilities."
    raise AssertionError(f"{message}\nHint: {hint}" if hint else message)


def _fmt(row: Tensor, limit: int = 12) -> str:
    shown = ", ".join(f"{v:.3g}" for v in row[:limit].tolist())
    return f"[{shown}{', ...' if row.numel() > limit else ''}]"


def expect_unchanged(before: Tensor, after: Tensor, what: str) -> None:
    """Fail if a function modified its input tensor in place."""
    if not torch.equal(before.cpu(), after.cpu()):
        raise AssertionError(
            f"{what} modified its input logits in place. Hint: build a new tensor (masked_fill, torch.where, "
            "clone) instead of writing into the logits you were given; the caller may still need them."
        )


def expect_probabilities(got: object, expected: Tensor, what: str,
                         hints: Mapping[str, Tensor] | Callable[[], Mapping[str, Tensor]] | None = None,
                         hint: str = "") -> Tensor:
    """Like :func:`llm_foundations.checks.core.expect_close` for probabilities, with a hint for overflow NaNs
    (``hints`` may be a function returning the mapping, called only on failure)."""
    got = core.expect_shape(got, tuple(expected.shape), what, hint="probabilities have the shape of the logits")
    if torch.isnan(got.detach()).any() and not torch.isnan(expected).any():
        raise AssertionError(
            f"{what}: your probabilities contain NaN at {int(torch.isnan(got.detach()).sum())} entries. Hint: exp of a "
            "large logit overflows to inf, and inf / inf is NaN: subtract each row's maximum before exp (or use "
            "torch.softmax, which does)."
        )
    try:
        return core.expect_close(got, expected, what, hint=hint, atol=1e-6, rtol=1e-4)
    except AssertionError:
        if not hints:
            raise
    return core.expect_close(got, expected, what, hints=_resolve(hints), hint=hint, atol=1e-6, rtol=1e-4)


def expected_softmax(logits: Tensor, temperature: float) -> Tensor:
    """``softmax(logits / temperature)`` in float64, written with an explicit max shift."""
    z = logits.detach().to("cpu", torch.float64) / temperature
    e = torch.exp(z - z.max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1, keepdim=True)


def expected_top_k(logits: Tensor, k: int) -> Tensor:
    """``top_k_filter`` by a full sort: keep every logit >= the k-th largest of its row (a new tensor)."""
    if k >= logits.size(-1):
        return logits.clone()
    kth = logits.sort(dim=-1, descending=True).values[..., k - 1 : k]  # (..., 1)
    return torch.where(logits >= kth, logits, torch.full_like(logits, -math.inf))


def expected_top_p(logits: Tensor, p: float) -> Tensor:
    """``top_p_filter`` by a plain loop over each row's tokens, most probable first (ties: lower id first)."""
    if p >= 1:
        return logits.clone()
    flat = logits.detach().to("cpu", torch.float64).reshape(-1, logits.size(-1))
    keep = torch.zeros(flat.shape, dtype=torch.bool)
    for r, row in enumerate(torch.softmax(flat, dim=-1).tolist()):
        mass = 0.0
        for i in sorted(range(len(row)), key=lambda j: -row[j]):  # Python's sort is stable
            if mass < p:
                keep[r, i] = True
            mass += row[i]
    return logits.masked_fill(~keep.reshape(logits.shape).to(logits.device), -math.inf)


def top_p_boundary_distance(logits: Tensor, p: float) -> float:
    """How close ``p`` is to any cumulative mass of any row (tests keep away from it, where rounding decides)."""
    probs = torch.softmax(logits.detach().to("cpu", torch.float64).reshape(-1, logits.size(-1)), -1)
    cumulative = probs.sort(dim=-1, descending=True).values.cumsum(-1)
    return float((cumulative - p).abs().min())


def softmax_with_temperature_mistakes(logits: Tensor, temperature: float) -> dict[str, Tensor]:
    """What common mistakes in ``softmax_with_temperature`` return: ``{explanation: probs}``."""
    plain = torch.softmax(logits, dim=-1)
    mistakes = {
        "the logits are multiplied by the temperature instead of divided by it": torch.softmax(logits * temperature, -1),
        "the temperature is ignored": plain,
        "the temperature is applied after the softmax (probs ** (1 / T)) without renormalising": plain ** (1 / temperature),
        "the probabilities are divided by the temperature after the softmax": plain / temperature,
    }
    if logits.dim() > 1:
        mistakes["the softmax runs over the first dimension instead of the last (the vocabulary)"] = torch.softmax(
            logits / temperature, dim=0)
    return mistakes


def _keep_topk_indices(logits: Tensor, k: int) -> Tensor:
    index = logits.topk(k, dim=-1).indices
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, index, True)
    return logits.masked_fill(~keep, -math.inf)


def top_k_filter_mistakes(logits: Tensor, k: int) -> dict[str, Tensor]:
    """What common mistakes in ``top_k_filter`` return (for ``1 <= k < V``): ``{explanation: logits}``."""
    vocab = logits.size(-1)
    threshold = lambda j: logits.topk(min(max(j, 1), vocab), dim=-1).values[..., -1:]  # noqa: E731
    mistakes = {
        "the kept tokens are chosen by the indices torch.topk returns, which keeps exactly k and drops tokens "
        "tied with the k-th largest logit: compare each logit with the k-th largest value instead":
            _keep_topk_indices(logits, k),
        "a logit equal to the k-th largest is removed (use `logits < kth` for the removed ones, not `<=`)":
            logits.masked_fill(logits <= threshold(k), -math.inf),
        "the k smallest logits are kept instead of the k largest":
            logits.masked_fill(logits > (-logits).topk(k, dim=-1).values[..., -1:].neg(), -math.inf),
    }
    if k > 1:
        mistakes["only k - 1 tokens are kept (an off-by-one in the index of the k-th value)"] = logits.masked_fill(
            logits < threshold(k - 1), -math.inf)
    if k + 1 <= vocab:
        mistakes["k + 1 tokens are kept (an off-by-one in the index of the k-th value)"] = logits.masked_fill(
            logits < threshold(k + 1), -math.inf)
    return mistakes


def _top_p_variant(logits: Tensor, p: float, *, rule: str = "before<p", descending: bool = True,
                   force_top: bool = True, scatter: bool = True) -> Tensor:
    probs = torch.softmax(logits.double(), dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=descending, stable=True)
    cumulative = sorted_probs.cumsum(-1)
    before = cumulative - sorted_probs
    keep_sorted = {"before<p": before < p, "before<=p": before <= p, "cum<=p": cumulative <= p,
                   "cum<p": cumulative < p}[rule]
    if force_top:
        keep_sorted[..., 0] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted) if scatter else keep_sorted
    return logits.masked_fill(~keep, -math.inf)


def top_p_filter_mistakes(logits: Tensor, p: float) -> dict[str, Tensor]:
    """What common mistakes in ``top_p_filter`` return: ``{explanation: logits}``."""
    return {
        "a token is kept only while the cumulative mass *including* it is <= p, so the token that crosses p is "
        "dropped: keep a token when the mass ranked strictly *before* it is < p":
            _top_p_variant(logits, p, rule="cum<=p", force_top=False),
        "the mass including each token is compared with p (cumulative < p), so the token that crosses p is dropped":
            _top_p_variant(logits, p, rule="cum<p", force_top=False),
        "the token that crosses p is dropped (the top token is kept, but the rule uses the cumulative mass including "
        "each token)": _top_p_variant(logits, p, rule="cum<=p"),
        "the probabilities are sorted in ascending order: sort with descending=True":
            _top_p_variant(logits, p, descending=False),
        "the keep-mask is computed in sorted order but applied to the tokens in their original order: scatter it "
        "back with the sort indices": _top_p_variant(logits, p, scatter=False),
    }


def sampling_distribution(logits: Tensor, temperature: float, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """The exact distribution ``sample_next_token`` must draw from, float64 ``(..., V)``: temperature,
    top-k, top-p, softmax, in that order (``temperature > 0``)."""
    scaled = logits.detach().to("cpu", torch.float64) / temperature
    if top_k is not None:
        scaled = _reference.top_k_filter(scaled, top_k)
    if top_p is not None:
        scaled = _reference.top_p_filter(scaled, top_p)
    return torch.softmax(scaled, dim=-1)


def sample_next_token_mistakes(logits: Tensor, temperature: float, top_k: int | None = None,
                               top_p: float | None = None) -> dict[str, Tensor]:
    """Distributions that common mistakes in ``sample_next_token`` draw from: ``{explanation: probs}``."""
    z = logits.detach().to("cpu", torch.float64)
    k_filter = (lambda x: x) if top_k is None else (lambda x: _reference.top_k_filter(x, top_k))
    p_filter = (lambda x: x) if top_p is None else (lambda x: _reference.top_p_filter(x, top_p))
    mistakes = {
        "the temperature is applied after the filters: divide the logits by the temperature first, so that top-p "
        "measures the tempered distribution": torch.softmax(p_filter(k_filter(z)) / temperature, -1),
        "the temperature multiplies the logits instead of dividing them": torch.softmax(p_filter(k_filter(z * temperature)), -1),
        "the temperature is ignored": torch.softmax(p_filter(k_filter(z)), -1),
    }
    if top_k is not None and top_p is not None:
        mistakes["top-p runs before top-k: the order is temperature, top-k, top-p"] = torch.softmax(
            k_filter(p_filter(z / temperature)), -1)
    if top_k is not None:
        mistakes["top_k is ignored"] = torch.softmax(p_filter(z / temperature), -1)
    if top_p is not None:
        mistakes["top_p is ignored"] = torch.softmax(k_filter(z / temperature), -1)
    return mistakes


def gumbel_mistakes(logits: Tensor, n_samples: int = 100_000, seed: int = 0) -> dict[str, Tensor]:
    """Distributions that common mistakes in ``gumbel_max_sample`` draw from, estimated by simulation.

    ``logits: (V,)``; returns ``{explanation: frequencies (V,)}`` from ``n_samples`` draws each.
    """
    z = logits.detach().to("cpu", torch.float64)
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(n_samples, z.numel(), generator=gen, dtype=torch.float64).clamp_min(1e-300)
    gumbel = -torch.log(-torch.log(u))
    normal = torch.randn(n_samples, z.numel(), generator=gen, dtype=torch.float64)
    probs = torch.softmax(z, -1)
    vocab = z.numel()
    return {
        "the noise is Gaussian (torch.randn): the trick needs Gumbel noise, -log(-log(U)) with U uniform":
            frequencies((z + normal).argmax(-1), vocab),
        "the noise is added to the probabilities instead of the logits": frequencies((probs + gumbel).argmax(-1), vocab),
        "the noise has the wrong sign (log(-log(U)) instead of -log(-log(U)))": frequencies((z - gumbel).argmax(-1), vocab),
        "argmin is taken instead of argmax": frequencies((z + gumbel).argmin(-1), vocab),
        "the noise is -log(U) (an exponential variable) instead of -log(-log(U))":
            frequencies((z - torch.log(u)).argmax(-1), vocab),
        "the noise is uniform (torch.rand) instead of Gumbel": frequencies((z + u).argmax(-1), vocab),
    }


@contextlib.contextmanager
def forbid_torch_calls(what: str, forbidden: Sequence[str], instead: str) -> Iterator[None]:
    """Fail if the code run inside the block calls a torch function whose name contains one of ``forbidden``."""
    with core.forbid_torch_functions(what, forbidden, "{what} calls {used}. " + instead):
        yield


# ----------------------------------------------------------------------------------------------
# beam search


class RandomPrefixModel:
    """A toy "language model" for beam search tests: every prefix gets its own fixed random distribution.

    Calling it with prefixes ``(n, t)`` returns log-probabilities ``(n, V)``. The distribution
    after a prefix depends on the **whole** prefix (not only its last token) and is the same every
    time that prefix is asked for, so the total log-probability of a sequence is well defined and
    search results can be compared exactly. ``sharpness`` scales the random logits (larger: more
    peaked); ``eos_bias`` is added to the end-of-sequence logit. Every call is recorded in
    ``calls`` (the shapes of the prefixes).
    """

    def __init__(self, vocab_size: int, seed: int, eos_id: int = 1, sharpness: float = 2.0, eos_bias: float = 0.0):
        self.vocab_size, self.seed, self.eos_id = vocab_size, seed, eos_id
        self.sharpness, self.eos_bias = sharpness, eos_bias
        self.calls: list[tuple[int, ...]] = []
        self._cache: dict[tuple[int, ...], Tensor] = {}

    def log_probs(self, prefix: Sequence[int]) -> Tensor:
        """The next-token log-probabilities ``(V,)`` after ``prefix`` (float64)."""
        key = tuple(int(t) for t in prefix)
        if key not in self._cache:
            state = self.seed * 7919 + 17
            for token in key:
                state = (state * 1_000_003 + token + 1) % (2**61 - 1)
            gen = torch.Generator().manual_seed(state)
            logits = torch.randn(self.vocab_size, generator=gen, dtype=torch.float64) * self.sharpness
            logits[self.eos_id] += self.eos_bias
            self._cache[key] = torch.log_softmax(logits, dim=-1)
        return self._cache[key]

    def __call__(self, prefixes: Tensor) -> Tensor:
        if not isinstance(prefixes, Tensor) or prefixes.dim() != 2:
            shape = tuple(prefixes.shape) if isinstance(prefixes, Tensor) else type(prefixes).__name__
            raise ValueError(f"step_fn expects the prefixes as a LongTensor of shape (n, t), got {shape}")
        if prefixes.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"step_fn expects integer token ids (torch.long), got dtype {prefixes.dtype}")
        self.calls.append(tuple(prefixes.shape))
        return torch.stack([self.log_probs(row) for row in prefixes.tolist()]).to(torch.float32)  # (n, V)

    def score(self, tokens: Sequence[int]) -> float:
        """Total log-probability of ``tokens[1:]`` given ``tokens[0]`` (float64)."""
        return float(sum(self.log_probs(tokens[:t])[tokens[t]] for t in range(1, len(tokens))))


def greedy_search(step_fn: Callable[[Tensor], Tensor], bos_id: int, eos_id: int, max_len: int) -> list[int]:
    """Greedy decoding: the most likely next token at every step, until ``eos_id`` or ``max_len`` tokens."""
    tokens = [bos_id]
    while len(tokens) < max_len and (len(tokens) == 1 or tokens[-1] != eos_id):
        tokens.append(int(step_fn(torch.tensor([tokens]))[0].argmax()))
    return tokens


def expected_beam_search(step_fn, bos_id, eos_id, beam_size, max_len, *, length_normalise=False, eos_ends=True,
                  keep_finished=True, max_tokens=None, pick_last=False):
    max_tokens = max_len if max_tokens is None else max_tokens
    beam = [([bos_id], 0.0)]

    def done(tokens):
        return eos_ends and len(tokens) > 1 and tokens[-1] == eos_id

    def rank(c):
        return c[1] / len(c[0]) if length_normalise else c[1]

    for _ in range(max_tokens - 1):
        alive = [b for b in beam if not done(b[0])]
        if not alive:
            break
        log_probs = step_fn(torch.tensor([t for t, _ in alive])).double()
        candidates = [b for b in beam if done(b[0])] if keep_finished else []
        for (tokens, score), row in zip(alive, log_probs):
            candidates += [(tokens + [v], score + float(row[v])) for v in range(row.numel())]
        beam = sorted(candidates, key=rank, reverse=True)[:beam_size]
        if not beam:
            break
    if pick_last:
        return beam[-1][0]
    return max(beam, key=rank)[0] if beam else [bos_id]


expected_beam_search.__doc__ = (
    "Beam search as the exercise defines it, written independently of the reference: every candidate "
    "(finished hypotheses and all extensions of the unfinished ones) ranked by total log-probability. "
    "The keyword options produce common mistakes (see :func:`beam_search_mistakes`)."
)


def beam_search_mistakes(step_fn: Callable[[Tensor], Tensor], bos_id: int, eos_id: int, beam_size: int,
                         max_len: int) -> dict[str, list[int]]:
    """What common mistakes in ``beam_search`` return: ``{explanation: tokens}``."""
    args = (step_fn, bos_id, eos_id, beam_size, max_len)
    return {
        "the scores are length-normalised (divided by the length): this exercise ranks by the total "
        "log-probability": expected_beam_search(*args, length_normalise=True),
        "hypotheses ending in eos are extended further: a hypothesis ending in eos is finished; keep it unchanged "
        "in the candidates": expected_beam_search(*args, eos_ends=False),
        "finished hypotheses are dropped from the beam: keep them among the candidates, where they compete with "
        "the extensions by total log-probability": expected_beam_search(*args, keep_finished=False),
        "the search runs one step too many: max_len counts every token, bos included":
            expected_beam_search(*args, max_tokens=max_len + 1),
        "the last hypothesis of the beam is returned instead of the one with the highest score":
            expected_beam_search(*args, pick_last=True),
    }


def as_token_list(got: object, what: str) -> list[int]:
    """``got`` as a list of Python ints; fail with a clear message if it is not a sequence of token ids."""
    if isinstance(got, Tensor):
        if got.dim() != 1 or got.dtype.is_floating_point:
            raise AssertionError(f"{what}: expected a list of token ids, got a tensor of shape {tuple(got.shape)} "
                                 f"and dtype {got.dtype}")
        return [int(t) for t in got.tolist()]
    if not isinstance(got, (list, tuple)):
        raise AssertionError(f"{what}: expected a list of token ids, got {type(got).__name__}: {got!r:.200}")
    out = []
    for t in got:
        if isinstance(t, Tensor) and t.numel() == 1 and not t.dtype.is_floating_point:
            t = int(t)
        if isinstance(t, bool) or not isinstance(t, numbers.Integral):
            raise AssertionError(f"{what}: expected a list of int token ids, found {t!r} ({type(t).__name__})")
        out.append(int(t))
    return out


def expect_valid_sequence(tokens: list[int], bos_id: int, eos_id: int, max_len: int, what: str) -> None:
    """Fail unless ``tokens`` starts with bos, has at most ``max_len`` tokens and ``eos_id`` only at the end."""
    if not tokens or tokens[0] != bos_id:
        raise AssertionError(f"{what}: the sequence must start with bos_id={bos_id}, got {tokens}")
    if len(tokens) > max_len:
        raise AssertionError(f"{what}: got {len(tokens)} tokens ({tokens}) but max_len={max_len}. Hint: max_len counts "
                             "every token, bos included, so at most max_len - 1 tokens are generated.")
    if eos_id in tokens[1:-1]:
        raise AssertionError(f"{what}: eos_id={eos_id} appears inside the sequence {tokens}. Hint: a hypothesis that "
                             "ends in eos is finished: it must not be extended any further.")


def expect_same_sequence(
    got: object,
    expected: list[int],
    what: str,
    score: Callable[[Sequence[int]], float],
    hints: Mapping[str, list[int]] | Callable[[], Mapping[str, list[int]]] | None = None,
    hint: str = "",
) -> list[int]:
    """Fail unless ``got`` is the token list ``expected``; the message shows both with their log-probabilities."""
    tokens = as_token_list(got, what)
    if tokens == list(expected):
        return tokens
    message = (f"{what}: expected {list(expected)} (total log-probability {score(expected):.4f}), "
               f"got {tokens} (total log-probability {score(tokens):.4f}).")
    for explanation, mistake in _resolve(hints).items():
        if list(mistake) == tokens:
            raise AssertionError(f"{message}\nHint: this is what happens when {explanation}.")
    raise AssertionError(f"{message}\nHint: {hint}" if hint else message)


# ----------------------------------------------------------------------------------------------
# the reference must not do the work


#: The reference functions each task must not call.
REFERENCE_FUNCTIONS = {
    "softmax_with_temperature": (_reference.softmax_with_temperature,),
    "top_k_filter": (_reference.top_k_filter,),
    "top_p_filter": (_reference.top_p_filter,),
    "sample_next_token": (_reference.sample_next_token, _reference.top_k_filter, _reference.top_p_filter,
                          _reference.softmax_with_temperature),
    "gumbel_max_sample": (_reference.gumbel_max_sample, _reference.sample_next_token),
    "beam_search": (_reference.beam_search, _reference.exhaustive_search),
}


#: Error messages this chapter's mistakes produce, and what they probably mean.
_ERROR_HINTS = {
    "selected index k out of range": "torch.topk(x, k) needs k <= the vocabulary size: when k >= V, return the "
    "logits unchanged.",
    "probability tensor contains either `inf`, `nan` or element < 0": "torch.multinomial got invalid "
    "probabilities: did a row end up with every logit -inf, or did you pass logits instead of probabilities?",
    "invalid multinomial distribution (sum of probabilities <= 0)": "every token of some row was removed: "
    "the filters must always keep at least the most probable token.",
    "prob_dist must be 1 or 2 dim": "torch.multinomial takes (B, V) probabilities.",
}


#: :func:`llm_foundations.checks.core.call`, with this chapter's hints for known errors.
call = core.hinted_call(_ERROR_HINTS)


def scorer(step_fn: Callable[[Tensor], Tensor]) -> Callable[[Sequence[int]], float]:
    """``tokens -> total log-probability of tokens[1:]`` under ``step_fn`` (one call per token)."""

    def score(tokens: Sequence[int]) -> float:
        tokens = [int(t) for t in tokens]
        return float(sum(float(step_fn(torch.tensor([tokens[:t]]))[0, tokens[t]]) for t in range(1, len(tokens))))

    return score


#: Fail if the code in the block calls the reference answer to ``task`` (a key of
#: :data:`REFERENCE_FUNCTIONS`) or one of this module's helpers that compute answers.
forbid_reference = core.reference_guard(REFERENCE_FUNCTIONS, helpers=(
    sampling_distribution, greedy_search, expected_beam_search, _top_p_variant, _keep_topk_indices,
    expected_softmax, expected_top_k, expected_top_p))
