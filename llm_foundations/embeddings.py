"""From token ids to vectors: the embedding layer, similarity, and skip-gram training (chapter 2).

Dimension letters used in the shapes below:

- ``V``: vocabulary size; ``d`` or ``d_model``: embedding width
- ``N``: number of vectors compared; ``k``: number of neighbours asked for
- ``B``: batch size (number of (center, context) pairs); ``K``: negative samples per pair
- ``P``: number of skip-gram pairs in a corpus
- ``...``: any number of leading dimensions

Cosine similarity of zero vectors. :func:`cosine_similarity_matrix` divides each vector by
``max(||x||, eps)`` (as :func:`torch.nn.functional.cosine_similarity` does), so a zero vector has
similarity 0 with every vector, itself included, and never produces NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TokenEmbedding(nn.Module):
    r"""Token embedding scaled by :math:`\sqrt{d_\text{model}}` (Vaswani et al., 2017, §3.4).

    .. math:: \mathrm{Embed}(i) = \sqrt{d_\text{model}}\; W_{i,:}

    A lookup of row ``i`` equals the product of the one-hot vector of ``i`` with ``W``, without
    building the one-hot vector. ``W`` starts as :math:`\mathcal{N}(0, 1/d_\text{model})`: the
    scale an output layer that shares this matrix wants (its logits :math:`h \cdot W_i` then have
    about unit variance for a unit-variance :math:`h`), and the factor
    :math:`\sqrt{d_\text{model}}` brings the embedded vectors back to unit variance per
    component, the same size as the positional encodings added to them (chapter 3).

    Args:
        vocab_size: number of token ids ``V``.
        d_model: embedding width.

    Attributes:
        weight: the embedding matrix, a parameter of shape ``(V, d_model)``.

    Shape:
        - ids: any shape ``(...)``, integer dtype, values in ``0..V-1``
        - output: ``(..., d_model)``
    """

    def __init__(self, vocab_size: int, d_model: int):
        super().__init__()
        if vocab_size <= 0 or d_model <= 0:
            raise ValueError(f"vocab_size and d_model must be positive, got {vocab_size} and {d_model}")
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.weight = nn.Parameter(torch.randn(vocab_size, d_model) / math.sqrt(d_model))

    def forward(self, ids: Tensor) -> Tensor:
        if not isinstance(ids, Tensor) or ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
            raise TypeError(
                "token ids must be an integer tensor (e.g. torch.long), got "
                + (f"dtype {ids.dtype}" if isinstance(ids, Tensor) else type(ids).__name__)
            )
        return self.weight[ids] * math.sqrt(self.d_model)  # (..., d_model)

    def extra_repr(self) -> str:
        return f"{self.vocab_size}, {self.d_model}"


def cosine_similarity_matrix(x: Tensor, eps: float = 1e-8) -> Tensor:
    r"""Cosine similarity of every pair of rows: :math:`S_{ij} = \frac{x_i \cdot x_j}{\max(\|x_i\|, \epsilon)\,\max(\|x_j\|, \epsilon)}`.

    Args:
        x: one vector per row.
        eps: smallest norm divided by; a zero row has similarity 0 with every row (itself too).

    Shape:
        - x: ``(N, d)`` (or ``(..., N, d)``: one matrix per leading index)
        - output: ``(N, N)``, symmetric, with 1 on the diagonal for every non-zero row

    Returns:
        The similarity matrix, entries in ``[-1, 1]``.
    """
    if x.dim() < 2:
        raise ValueError(f"expected one vector per row, shape (N, d), got {tuple(x.shape)}")
    unit = x / x.norm(dim=-1, keepdim=True).clamp_min(eps)  # (..., N, d)
    return unit @ unit.transpose(-2, -1)  # (..., N, N)


def nearest_neighbors(embeddings: Tensor, index: int, k: int) -> Tensor:
    """The ``k`` rows most cosine-similar to row ``index``, most similar first, ``index`` excluded.

    Ties are broken towards the smaller row index (a stable sort). Row ``index`` is never
    returned, even when another row is identical to it.

    Args:
        embeddings: one vector per row.
        index: the row whose neighbours are wanted (negative values count from the end).
        k: how many neighbours, ``0 <= k <= N - 1``.

    Shape:
        - embeddings: ``(N, d)``
        - output: ``(k,)``, dtype ``torch.long``, on the device of ``embeddings``

    Raises:
        IndexError: ``index`` is not a row of ``embeddings``.
        ValueError: ``k`` is negative or larger than ``N - 1``.
    """
    if embeddings.dim() != 2:
        raise ValueError(f"embeddings must have shape (N, d), got {tuple(embeddings.shape)}")
    n = embeddings.size(0)
    if not -n <= index < n:
        raise IndexError(f"index {index} is out of range for {n} rows")
    if not 0 <= k <= n - 1:
        raise ValueError(f"k must be between 0 and N - 1 = {n - 1}, got {k}")
    index = index % n
    x = embeddings.detach()
    unit = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-8)  # (N, d)
    sims = unit @ unit[index]  # (N,)
    sims[index] = float("-inf")  # never the row itself
    order = torch.sort(sims, descending=True, stable=True).indices  # (N,)
    return order[:k]  # (k,)


def sgns_loss(center: Tensor, context: Tensor, negatives: Tensor) -> Tensor:
    r"""Skip-gram negative-sampling loss (Mikolov et al., 2013b, eq. 4), averaged over the batch.

    .. math::
        \ell = -\log \sigma(u_o \cdot v_c) - \sum_{k=1}^{K} \log \sigma(-u_k \cdot v_c)

    ``v_c`` is the center word's vector, ``u_o`` the vector of a word seen in its context, and the
    ``u_k`` those of ``K`` words drawn from a noise distribution. Computed with
    :func:`torch.nn.functional.logsigmoid`, which stays finite for dot products of any size
    (in float32 ``log(sigmoid(x))`` is ``-inf`` once ``x < -88``, where ``exp(-x)`` overflows).

    Args:
        center: center-word vectors ``v_c``.
        context: context-word vectors ``u_o``, one per center word.
        negatives: noise-word vectors ``u_k``, ``K`` per center word.

    Shape:
        - center: ``(B, d)``
        - context: ``(B, d)``
        - negatives: ``(B, K, d)``
        - output: scalar

    Returns:
        The mean of :math:`\ell` over the ``B`` pairs.
    """
    if center.dim() != 2 or context.shape != center.shape:
        raise ValueError(
            f"center and context must both be (B, d), got {tuple(center.shape)} and {tuple(context.shape)}"
        )
    if negatives.dim() != 3 or negatives.size(0) != center.size(0) or negatives.size(2) != center.size(1):
        raise ValueError(
            f"negatives must be (B, K, d) = ({center.size(0)}, K, {center.size(1)}), got {tuple(negatives.shape)}"
        )
    positive = (center * context).sum(-1)  # (B,)
    negative = (negatives @ center.unsqueeze(-1)).squeeze(-1)  # (B, K)
    loss = -F.logsigmoid(positive) - F.logsigmoid(-negative).sum(-1)  # (B,)
    return loss.mean()


def skipgram_pairs(sentences: Sequence[Tensor], window: int) -> Tensor:
    """Every (center, context) pair of word ids at most ``window`` positions apart within a sentence.

    Args:
        sentences: one 1-D LongTensor of word ids per sentence; windows never cross sentences.
        window: the largest distance between a center word and its context words (``>= 1``).

    Shape:
        - output: ``(P, 2)``: column 0 the center id, column 1 the context id.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if not sentences:
        return torch.empty(0, 2, dtype=torch.long)
    ids = torch.cat(list(sentences))  # (T,)
    sentence_of = torch.repeat_interleave(torch.arange(len(sentences)), torch.tensor([len(s) for s in sentences]))
    pairs = []
    for offset in range(1, window + 1):
        same = sentence_of[offset:] == sentence_of[:-offset]  # (T - offset,)
        left, right = ids[:-offset][same], ids[offset:][same]
        pairs += [torch.stack([left, right], 1), torch.stack([right, left], 1)]  # both directions
    return torch.cat(pairs)  # (P, 2)


def noise_distribution(counts: Tensor, power: float = 0.75) -> Tensor:
    r"""Word2vec's noise distribution for negative samples: :math:`P_n(w) \propto \mathrm{count}(w)^{3/4}`.

    Shape:
        - counts: ``(V,)``
        - output: ``(V,)``, summing to 1
    """
    weights = counts.double().clamp_min(0) ** power
    return (weights / weights.sum()).float()


class SkipGram(nn.Module):
    """The two embedding tables of skip-gram: ``center`` (the word vectors kept) and ``context``.

    Shape of :meth:`forward`:
        - center_ids: ``(B,)``; context_ids: ``(B,)``; negative_ids: ``(B, K)``
        - output: ``(center (B, d), context (B, d), negatives (B, K, d))``, the arguments of :func:`sgns_loss`
    """

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.center = nn.Embedding(vocab_size, dim)
        self.context = nn.Embedding(vocab_size, dim)
        nn.init.uniform_(self.center.weight, -0.5 / dim, 0.5 / dim)  # word2vec's initialisation
        nn.init.zeros_(self.context.weight)

    def forward(self, center_ids: Tensor, context_ids: Tensor, negative_ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.center(center_ids), self.context(context_ids), self.context(negative_ids)


def train_skipgram(
    pairs: Tensor,
    noise: Tensor,
    dim: int = 32,
    steps: int = 300,
    batch_size: int = 512,
    num_negatives: int = 5,
    lr: float = 0.02,
    loss_fn: Callable[[Tensor, Tensor, Tensor], Tensor] = sgns_loss,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> tuple[SkipGram, list[float]]:
    """Train :class:`SkipGram` with negative sampling, minimising ``loss_fn`` with Adam.

    Each step draws ``batch_size`` pairs uniformly from ``pairs`` and ``num_negatives`` noise words
    per pair from ``noise``, computes ``loss_fn``, and takes one Adam step (Kingma and Ba's update
    with the default betas (0.9, 0.999), written out here: it is what ``torch.optim.Adam`` does,
    without the second or two that creating the first PyTorch optimizer of a process costs). All
    randomness comes from a generator seeded with ``seed``, so a run is reproducible and leaves the
    global random state alone. On the CPU it runs on one thread, which is fastest for a model
    this small, and restores the thread count afterwards.

    Args:
        pairs: ``(P, 2)`` (center, context) ids, from :func:`skipgram_pairs`.
        noise: ``(V,)`` noise distribution, from :func:`noise_distribution`; its length is the vocabulary size.
        dim: embedding width.
        steps: optimisation steps.
        batch_size: pairs per step.
        num_negatives: negative samples ``K`` per pair.
        lr: Adam's learning rate.
        loss_fn: ``loss_fn(center (B, d), context (B, d), negatives (B, K, d)) -> scalar``.
        seed: seed of the initialisation and of the sampling.
        device: where to train; the CPU when None.

    Returns:
        ``(model, losses)``: the trained model (on ``device``) and the loss of every step.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SkipGram(noise.numel(), dim)
    model.to(device)
    params = list(model.parameters())
    first_moments = [torch.zeros_like(p) for p in params]
    second_moments = [torch.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    losses = []
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        for step in range(1, steps + 1):
            batch = pairs[torch.randint(len(pairs), (batch_size,), generator=generator)]  # (B, 2)
            negative_ids = torch.multinomial(noise, batch_size * num_negatives, replacement=True, generator=generator)
            batch, negative_ids = batch.to(device), negative_ids.view(batch_size, num_negatives).to(device)
            loss = loss_fn(*model(batch[:, 0], batch[:, 1], negative_ids))
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g, m, v in zip(params, grads, first_moments, second_moments):
                    m.mul_(beta1).add_(g, alpha=1 - beta1)
                    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    denominator = (v.sqrt() / math.sqrt(1 - beta2**step)).add_(eps)
                    p.addcdiv_(m, denominator, value=-lr / (1 - beta1**step))
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    return model, losses


def group_similarity(embeddings: Tensor, words: Sequence[str], groups: dict[str, Sequence[str]]) -> tuple[float, float]:
    """Mean cosine similarity of words within the same group, and of words from different groups.

    Args:
        embeddings: ``(V, d)``, row ``i`` the vector of ``words[i]``.
        words: the vocabulary.
        groups: ``{name: words}``; every listed word must be in ``words``.

    Returns:
        ``(within, across)``: the mean over pairs of distinct words of one group, and the mean over
        pairs of words from two different groups. Embeddings that cluster by group have
        ``within`` well above ``across``.
    """
    index = {w: i for i, w in enumerate(words)}
    members = [index[w] for g in groups.values() for w in g]  # (M,)
    label = torch.tensor([gi for gi, g in enumerate(groups.values()) for _ in g])  # (M,)
    sims = cosine_similarity_matrix(embeddings.detach()[members].float())  # (M, M)
    same = label[:, None] == label[None, :]  # (M, M)
    distinct = ~torch.eye(len(members), dtype=torch.bool)
    return sims[same & distinct].mean().item(), sims[~same].mean().item()
