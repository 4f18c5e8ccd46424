"""Turning a model's logits into tokens (chapter 7): temperature, top-k, top-p, sampling, the
Gumbel-max trick and beam search.

Dimension letters used in the shapes below:

- ``B``: batch size (one distribution per row)
- ``V``: vocabulary size; the last dimension of every logits tensor
- ``n``: number of live hypotheses handed to a beam search's ``step_fn``; ``t``: their length
- ``...``: any number of leading dimensions

Conventions, shared by every function here:

- *Logits* are unnormalised log-probabilities; ``-inf`` marks a token that may not be drawn
  (that is what the filters write). Every row must keep at least one finite logit.
- The filters return a **new** tensor and never modify their input.
- Randomness comes only from the ``generator`` argument when one is given (a
  :class:`torch.Generator` on the logits' device), so a fixed generator gives the same tokens on
  every run; ``generator=None`` uses PyTorch's global random state.
- Ties are broken towards the **lower token id** (``torch.argmax`` and stable sorts do this).
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable

import torch
from torch import Tensor

#: What :func:`beam_search` calls: token prefixes ``(n, t)`` in, log-probabilities ``(n, V)`` of
#: the next token out.
StepFn = Callable[[Tensor], Tensor]


def softmax_with_temperature(logits: Tensor, temperature: float) -> Tensor:
    r"""Probabilities from logits at a temperature, over the last dimension.

    .. math:: p_i = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)}

    ``T = 1`` is the plain softmax; ``T < 1`` sharpens the distribution (towards the argmax as
    ``T -> 0``), ``T > 1`` flattens it (towards uniform as ``T -> inf``). The logits are divided
    by ``T`` *before* the softmax; raising probabilities to ``1/T`` and renormalising is the same
    thing, raising them without renormalising is not.

    Args:
        logits: unnormalised scores; ``-inf`` entries get probability 0.
        temperature: ``T > 0``. Greedy decoding (``T = 0``) is not a distribution: see
            :func:`sample_next_token`.

    Shape:
        - logits: ``(..., V)``
        - output: ``(..., V)``, each row summing to 1

    Raises:
        ValueError: ``temperature`` is not a positive finite number.
    """
    _check_temperature(temperature, allow_zero=False)
    return torch.softmax(logits / temperature, dim=-1)  # (..., V)


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest logits of each row; set the others to ``-inf`` (Fan et al., 2018).

    A logit is kept when it is at least the ``k``-th largest value of its row, so **ties with the
    k-th value are all kept** and a row may keep more than ``k`` tokens (``[3, 1, 1, 0]`` with
    ``k=2`` keeps ``3, 1, 1``). Filtering by the indices ``torch.topk`` returns would drop some
    of the tied tokens, chosen arbitrarily. ``k >= V`` keeps every token.

    Args:
        logits: unnormalised scores.
        k: how many tokens to keep per row, ``k >= 1``.

    Shape:
        - logits: ``(..., V)``; output: same shape, a new tensor (the input is not modified)

    Raises:
        TypeError: ``k`` is not an integer.
        ValueError: ``k < 1``.
    """
    _check_int(k, "k")
    if k < 1:
        raise ValueError(f"k must be at least 1 (keep at least one token), got k={k}")
    if k >= logits.size(-1):
        return logits.clone()
    kth = logits.topk(k, dim=-1).values[..., -1:]  # (..., 1): the k-th largest value of each row
    return logits.masked_fill(logits < kth, float("-inf"))  # (..., V)


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    r"""Nucleus filtering (Holtzman et al., 2020): keep the most probable tokens whose mass reaches ``p``.

    Per row, sort the tokens by probability (largest first) and keep each token whose
    probability mass **ranked strictly before it** is below ``p``:

    .. math:: \text{keep token } (r) \iff \sum_{s < r} p_{(s)} < p

    which is the smallest set of top tokens with total probability :math:`\ge p`. The top token
    is always kept (nothing ranks before it); ``p = 1`` keeps every token (the row is returned
    unchanged, so rounding in the cumulative sum cannot drop a tiny tail). Tokens of equal
    probability are ranked by token id, lower first (a stable sort), so with four equal logits
    and ``p = 0.5`` tokens 0 and 1 are kept. The probabilities are those of ``logits`` as given:
    apply a temperature first if you want one.

    Args:
        logits: unnormalised scores; ``-inf`` entries have probability 0 and stay ``-inf``.
        p: the mass to reach, ``0 < p <= 1``.

    Shape:
        - logits: ``(..., V)``; output: same shape, a new tensor (the input is not modified)

    Raises:
        ValueError: ``p`` is not in ``(0, 1]``.
    """
    if not _is_real(p) or not 0 < p <= 1:
        raise ValueError(f"p must be a number in (0, 1], got p={p!r}")
    if p == 1:
        return logits.clone()
    probs = torch.softmax(logits.to(_float_type(logits)), dim=-1)  # (..., V)
    sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)  # (..., V) each
    # mass ranked strictly before each token: an exclusive cumulative sum
    cumulative = sorted_probs.cumsum(dim=-1)  # (..., V)
    before = torch.cat([torch.zeros_like(cumulative[..., :1]), cumulative[..., :-1]], dim=-1)  # (..., V)
    keep_sorted = before < p  # (..., V); the first column is always True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # back to token order
    return logits.masked_fill(~keep, float("-inf"))  # (..., V)


def sample_next_token(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw one token per row: temperature, then top-k, then top-p, then a sample.

    The steps, in this order (the order used by common generation libraries):

    1. divide the logits by ``temperature``;
    2. :func:`top_k_filter` with ``top_k`` (skipped when ``None``);
    3. :func:`top_p_filter` with ``top_p`` (skipped when ``None``), so the nucleus is measured on
       the *tempered, top-k-renormalised* distribution;
    4. softmax, and one draw per row with ``torch.multinomial(probs, 1, generator=generator)``.

    The order matters: a temperature changes which tokens make up the nucleus (it does not change
    the top k), and top-p after top-k measures mass among the k survivors only.

    ``temperature == 0`` is **greedy decoding**: the argmax of each row (lowest id on ties), with
    no randomness; ``top_k`` and ``top_p`` are still validated but cannot change the argmax.

    Args:
        logits: unnormalised next-token scores, one row per sequence.
        temperature: ``>= 0``; 0 means greedy.
        top_k: keep the k most likely tokens (ties with the k-th kept), or ``None``.
        top_p: keep the nucleus of mass ``top_p``, in ``(0, 1]``, or ``None``.
        generator: the source of randomness, on the logits' device; ``None`` uses the global one.

    Shape:
        - logits: ``(B, V)`` (any leading dimensions work: ``(..., V)``)
        - output: ``(B,)`` (``(...)``), dtype ``torch.long``, on the logits' device

    Raises:
        ValueError: a negative temperature, ``top_k < 1`` or ``top_p`` outside ``(0, 1]``.
    """
    _check_temperature(temperature, allow_zero=True)
    if top_k is not None:
        _check_int(top_k, "top_k")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1 or None, got top_k={top_k}")
    if top_p is not None and (not _is_real(top_p) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be a number in (0, 1] or None, got top_p={top_p!r}")
    if logits.dim() == 0:
        raise ValueError("logits must have a vocabulary dimension: shape (B, V)")
    if temperature == 0:
        return logits.argmax(dim=-1)  # (...,)
    scaled = logits.to(_float_type(logits)) / temperature  # (..., V)
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
    probs = torch.softmax(scaled, dim=-1).reshape(-1, logits.size(-1))  # (B, V)
    tokens = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
    return tokens.reshape(logits.shape[:-1])  # (...,)


def gumbel_max_sample(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""One sample per row of ``softmax(logits)``, by the Gumbel-max trick.

    .. math:: \arg\max_i \, (z_i + g_i), \qquad g_i = -\log(-\log u_i), \quad u_i \sim \mathrm{Uniform}(0, 1)

    The :math:`g_i` are independent standard Gumbel variables, and the argmax is distributed
    exactly as :math:`\mathrm{softmax}(z)`. The uniforms come from
    ``torch.rand(logits.shape, generator=generator)`` (in float32, or float64 for float64 logits)
    and are clamped to at least the smallest positive normal number, so ``u = 0`` cannot produce
    an infinite noise. Tokens with logit ``-inf`` are never drawn. Unlike
    :func:`sample_next_token`, the noise lives in logit space: this is the form that the
    Gumbel-softmax relaxation makes differentiable.

    Args:
        logits: unnormalised scores.
        generator: the source of randomness, on the logits' device; ``None`` uses the global one.

    Shape:
        - logits: ``(..., V)``
        - output: ``(...)``, dtype ``torch.long``
    """
    dtype = _float_type(logits)
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=dtype)  # (..., V)
    u = u.clamp_min(torch.finfo(dtype).tiny)
    gumbel = -torch.log(-torch.log(u))  # (..., V): standard Gumbel noise
    return (logits.to(dtype) + gumbel).argmax(dim=-1)  # (...,)


def beam_search(step_fn: StepFn, bos_id: int, eos_id: int, beam_size: int, max_len: int,
                length_penalty: float = 0.0) -> list[int]:
    """The most likely sequence that a beam of ``beam_size`` hypotheses finds.

    Start from ``[bos_id]`` with total log-probability 0. At each step every *unfinished*
    hypothesis is extended by every token of the vocabulary, its score growing by that token's
    log-probability; together with the *finished* hypotheses (those ending in ``eos_id``, kept
    unchanged), the ``beam_size`` candidates of highest total log-probability form the next beam.
    The search stops when every hypothesis in the beam is finished or has ``max_len`` tokens, and
    returns the best hypothesis of the last beam.

    Decisions worth knowing:

    - Finished hypotheses compete with unfinished ones **by total log-probability, with no length
      normalisation** by default. Since log-probabilities are ``<= 0``, this favours short
      sequences. ``length_penalty=alpha > 0`` ranks hypotheses by ``total / n ** alpha`` instead,
      ``n`` the number of tokens after ``bos_id`` (``alpha = 1``: the mean log-probability per
      token), the normalisation of Wu et al. (2016) without its constant 5 and of Hugging Face's
      ``length_penalty``. Extensions of the same step all have the same ``n``, so it only changes
      how finished hypotheses compare with longer ones, and which one is returned.
    - ``max_len`` counts every token, ``bos_id`` included: at most ``max_len - 1`` tokens are
      generated, and a sequence that reaches ``max_len`` without ``eos_id`` is returned as it is.
    - ``beam_size=1`` is greedy decoding (the argmax at each step, lowest id on ties).
    - With a beam as large as the number of candidates nothing is pruned, and the result is the
      best of all sequences (see :func:`exhaustive_search`).
    - Ties in score are broken towards finished hypotheses, then earlier beam entries, then
      lower token ids. ``[bos_id]`` alone never counts as finished, even if ``bos_id == eos_id``.

    Args:
        step_fn: called with the unfinished prefixes as a ``LongTensor`` of shape ``(n, t)`` on the
            CPU (every prefix of one call has the same length ``t``; a model on a GPU moves
            them there) and returns the next-token log-probabilities ``(n, V)``.
        bos_id: the token every sequence starts with.
        eos_id: the token that ends a sequence.
        beam_size: how many hypotheses to keep, ``>= 1``.
        max_len: the longest sequence returned, in tokens, ``>= 1``.
        length_penalty: ``alpha >= 0``; 0 (the default) compares total log-probabilities.

    Returns:
        The token ids of the best sequence: ``bos_id`` first, ``eos_id`` last if it was produced.

    Raises:
        ValueError: ``beam_size`` or ``max_len`` below 1, or ``step_fn`` returns the wrong shape.
    """
    for name, value in (("beam_size", beam_size), ("max_len", max_len)):
        _check_int(value, name)
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {name}={value}")
    if not _is_real(length_penalty) or length_penalty < 0:
        raise ValueError(f"length_penalty must be a finite number >= 0, got {length_penalty!r}")

    def rank(candidate: tuple[list[int], float]) -> float:  # what the beam is sorted by
        tokens, score = candidate
        return score if length_penalty == 0 or len(tokens) == 1 else score / (len(tokens) - 1) ** length_penalty

    def finished(tokens: list[int]) -> bool:
        return len(tokens) > 1 and tokens[-1] == eos_id

    beam: list[tuple[list[int], float]] = [([bos_id], 0.0)]  # (tokens, total log-probability), best first
    for _ in range(max_len - 1):
        alive = [(tokens, score) for tokens, score in beam if not finished(tokens)]
        if not alive:
            break
        prefixes = torch.tensor([tokens for tokens, _ in alive], dtype=torch.long)  # (n, t)
        log_probs = step_fn(prefixes)  # (n, V)
        if log_probs.dim() != 2 or log_probs.size(0) != len(alive):
            raise ValueError(
                f"step_fn must return log-probabilities of shape (n, V) = ({len(alive)}, V) for prefixes "
                f"of shape {tuple(prefixes.shape)}, got {tuple(log_probs.shape)}"
            )
        vocab = log_probs.size(-1)
        totals = torch.tensor([score for _, score in alive], dtype=torch.float64)[:, None] + log_probs.detach().to(
            "cpu", torch.float64
        )  # (n, V)
        best, where = totals.flatten().sort(descending=True, stable=True)  # (n * V,) each
        candidates = [(tokens, score) for tokens, score in beam if finished(tokens)]
        for score, index in zip(best[:beam_size].tolist(), where[:beam_size].tolist()):
            row, token = divmod(index, vocab)
            candidates.append((alive[row][0] + [token], score))
        # a stable sort keeps finished hypotheses (listed first) ahead on equal scores
        beam = sorted(candidates, key=rank, reverse=True)[:beam_size]
    return beam[0][0]


def sequence_log_prob(step_fn: StepFn, tokens: list[int]) -> float:
    """Total log-probability of ``tokens[1:]`` given ``tokens[0]`` under ``step_fn`` (one call per token)."""
    total = 0.0
    for t in range(1, len(tokens)):
        log_probs = step_fn(torch.tensor([tokens[:t]], dtype=torch.long))  # (1, V)
        total += float(log_probs[0, tokens[t]])
    return total


def exhaustive_search(step_fn: StepFn, bos_id: int, eos_id: int, vocab_size: int, max_len: int) -> tuple[list[int], float]:
    """The best sequence over *all* sequences, by brute force: what beam search approximates.

    A sequence starts with ``bos_id`` and ends at its first ``eos_id`` or at ``max_len`` tokens,
    whichever comes first; there are up to ``vocab_size ** (max_len - 1)`` of them, so keep both
    small. Ties go to the sequence found first (lower token ids first).

    Returns:
        ``(tokens, total log-probability)`` of the best sequence.
    """
    best: tuple[list[int], float] = ([bos_id], -math.inf)
    seen: set[tuple[int, ...]] = set()
    for tail in itertools.product(range(vocab_size), repeat=max_len - 1):
        tail = tail[: tail.index(eos_id) + 1] if eos_id in tail else tail  # cut after the first eos
        if tail in seen:
            continue
        seen.add(tail)
        tokens = [bos_id, *tail]
        score = sequence_log_prob(step_fn, tokens)
        if score > best[1]:
            best = (tokens, score)
    return best


def _float_type(t: Tensor) -> torch.dtype:
    return t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}")


def _check_temperature(temperature: object, allow_zero: bool) -> None:
    if not _is_real(temperature) or temperature < 0 or (temperature == 0 and not allow_zero):
        bound = ">= 0 (0 means greedy)" if allow_zero else "> 0"
        raise ValueError(f"temperature must be a finite number {bound}, got temperature={temperature!r}")


# ----------------------------------------------------------------------------------------------
# a toy language model for the chapter's demos

#: Hand-written next-word counts of the toy bigram model: ``{word: {next word: count}}``.
#: ``<s>`` starts a sentence and ``</s>`` ends it.
BIGRAM_COUNTS: dict[str, dict[str, int]] = {
    "<s>": {"the": 10, "a": 5, "my": 3},
    "the": {"cat": 6, "dog": 5, "bird": 2, "mat": 2, "garden": 2, "sun": 1},
    "a": {"cat": 4, "dog": 4, "bird": 3, "small": 3},
    "my": {"cat": 3, "dog": 3, "garden": 2},
    "small": {"cat": 3, "dog": 3, "bird": 4},
    "cat": {"sat": 5, "slept": 4, "saw": 4, "ran": 2, "</s>": 2},
    "dog": {"ran": 5, "saw": 4, "slept": 3, "sat": 2, "</s>": 2},
    "bird": {"sang": 6, "saw": 2, "</s>": 2},
    "sat": {"on": 8, "in": 3, "</s>": 2},
    "slept": {"on": 3, "in": 4, "</s>": 5},
    "ran": {"to": 5, "in": 3, "</s>": 3},
    "sang": {"in": 4, "</s>": 6},
    "saw": {"the": 8, "a": 5},
    "on": {"the": 8, "a": 3, "my": 2},
    "in": {"the": 8, "a": 2, "my": 3},
    "to": {"the": 7, "my": 3},
    "mat": {"</s>": 6, "and": 2},
    "garden": {"</s>": 6, "and": 2},
    "sun": {"</s>": 5, "and": 2},
    "and": {"the": 5, "a": 3, "slept": 2, "sang": 1},
    "</s>": {},
}


def toy_bigram_model(smoothing: float = 2.0) -> tuple[list[str], Tensor]:
    """A tiny word-level bigram language model, written by hand (no data, nothing downloaded).

    The next-word distribution after word ``w`` is proportional to
    ``BIGRAM_COUNTS[w][v] + smoothing * u(v)`` for every word ``v`` except ``<s>``, where ``u`` is
    the overall frequency of ``v`` (its total count plus one, normalised to sum to 1). The counts
    make the likely continuations; the smoothing gives every other word a small probability, the
    long unreliable tail that top-k and top-p cut off (about a tenth of the mass of each row).
    After ``</s>`` the model starts a new sentence (the row of ``<s>``).

    Returns:
        ``(words, logits)``: the vocabulary (``words[0] == "<s>"``, ``words[1] == "</s>"``) and
        next-word logits of shape ``(V, V)``, row ``i`` holding the logits after ``words[i]``
        (log-probabilities, so ``logits.exp()`` rows sum to 1; the ``<s>`` column is ``-inf``).
    """
    words = ["<s>", "</s>"] + sorted({w for row in BIGRAM_COUNTS.values() for w in row} - {"<s>", "</s>"})
    index = {w: i for i, w in enumerate(words)}
    counts = torch.zeros(len(words), len(words), dtype=torch.float64)  # (V, V)
    for word, row in BIGRAM_COUNTS.items():
        for following, count in row.items():
            counts[index[word], index[following]] += count
    counts[index["</s>"]] = counts[index["<s>"]]  # after the end of a sentence, a new one starts
    unigram = counts.sum(0) + 1.0  # (V,): how often each word follows anything
    unigram[index["<s>"]] = 0.0  # <s> is never generated
    weights = counts + smoothing * unigram / unigram.sum()  # (V, V)
    probs = weights / weights.sum(-1, keepdim=True)
    return words, probs.log().float()
