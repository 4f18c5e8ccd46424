"""llm_foundations.embeddings against PyTorch's own embedding and similarity functions."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from llm_foundations.corpus import WORD_GROUPS, skipgram_training_data
from llm_foundations.embeddings import (
    SkipGram,
    TokenEmbedding,
    cosine_similarity_matrix,
    group_similarity,
    nearest_neighbors,
    noise_distribution,
    sgns_loss,
    skipgram_pairs,
    train_skipgram,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ----------------------------------------------------------------------------- TokenEmbedding


@pytest.mark.parametrize("shape", [(), (5,), (2, 7), (2, 3, 4)])
def test_token_embedding_is_a_scaled_lookup_for_any_id_shape(shape):
    emb = TokenEmbedding(11, 16)
    ids = torch.randint(11, shape)
    out = emb(ids)
    assert out.shape == (*shape, 16)
    torch.testing.assert_close(out, F.embedding(ids, emb.weight) * 4.0)


def test_token_embedding_equals_one_hot_times_matrix_and_nn_embedding():
    emb = TokenEmbedding(9, 25)
    ids = torch.randint(9, (3, 6))
    one_hot = F.one_hot(ids, 9).float()  # (3, 6, 9)
    torch.testing.assert_close(emb(ids), one_hot @ emb.weight * 5.0)
    ref = nn.Embedding(9, 25)
    with torch.no_grad():
        ref.weight.copy_(emb.weight)
    torch.testing.assert_close(emb(ids), ref(ids) * math.sqrt(25))


def test_token_embedding_parameters_gradient_and_scale():
    emb = TokenEmbedding(50, 64)
    assert isinstance(emb.weight, nn.Parameter) and emb.weight.shape == (50, 64)
    assert [p is emb.weight for p in emb.parameters()] == [True]
    ids = torch.tensor([[1, 2, 2], [3, 1, 1]])
    emb(ids).sum().backward()
    counts = torch.bincount(ids.flatten(), minlength=50).float()
    torch.testing.assert_close(emb.weight.grad, counts[:, None].expand(50, 64) * 8.0)
    # initialised at std 1/sqrt(d_model): the scaled output has about unit variance
    big = TokenEmbedding(1000, 256)
    assert abs(big.weight.std().item() - 1 / 16) < 0.005
    assert abs(big(torch.arange(1000)).std().item() - 1.0) < 0.05


def test_token_embedding_rejects_float_ids_and_bad_sizes():
    emb = TokenEmbedding(4, 2)
    with pytest.raises(TypeError, match="integer"):
        emb(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError):
        TokenEmbedding(0, 3)
    assert "4, 2" in repr(emb)


# ----------------------------------------------------------------------------- cosine similarity


@pytest.mark.parametrize("n,d", [(1, 1), (5, 3), (20, 64)])
def test_cosine_similarity_matrix_matches_pytorch(n, d):
    x = torch.randn(n, d) * torch.rand(n, 1) * 10
    expected = F.cosine_similarity(x[:, None, :], x[None, :, :], dim=-1)
    sims = cosine_similarity_matrix(x)
    torch.testing.assert_close(sims, expected)
    torch.testing.assert_close(sims, sims.T)
    torch.testing.assert_close(sims.diagonal(), torch.ones(n))


def test_cosine_similarity_of_zero_vectors_is_zero_not_nan():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [-6.0, -8.0]])
    sims = cosine_similarity_matrix(x)
    torch.testing.assert_close(sims, torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, -1.0], [0.0, -1.0, 1.0]]))
    torch.testing.assert_close(sims, F.cosine_similarity(x[:, None], x[None], dim=-1))


def test_cosine_similarity_batched_and_dtype():
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    sims = cosine_similarity_matrix(x)
    assert sims.shape == (3, 4, 4) and sims.dtype == torch.float64
    for b in range(3):
        torch.testing.assert_close(sims[b], cosine_similarity_matrix(x[b]))
    with pytest.raises(ValueError):
        cosine_similarity_matrix(torch.randn(4))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 12), st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_cosine_similarity_is_invariant_to_positive_scaling(n, d, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    scale = torch.rand(n, 1, generator=gen, dtype=torch.float64) * 100 + 0.01
    torch.testing.assert_close(cosine_similarity_matrix(x * scale), cosine_similarity_matrix(x))
    assert (cosine_similarity_matrix(x).abs() <= 1 + 1e-12).all()


# ----------------------------------------------------------------------------- nearest neighbours


def test_nearest_neighbors_order_and_exclusion():
    emb = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0], [10.0, 3.0]])
    result = nearest_neighbors(emb, 0, 3)
    assert result.dtype == torch.long and result.tolist() == [1, 4, 2]
    assert nearest_neighbors(emb, 0, 0).tolist() == []
    assert nearest_neighbors(emb, 0, 4).tolist() == [1, 4, 2, 3]
    assert nearest_neighbors(emb, -1, 1).tolist() == [1]


def test_nearest_neighbors_matches_a_sort_of_pytorch_cosines_and_never_returns_the_row():
    gen = torch.Generator().manual_seed(1)
    emb = torch.randn(30, 8, generator=gen) * torch.rand(30, 1, generator=gen) * 5
    emb[7] = emb[3] * 2  # a row parallel to row 3
    for index in (0, 3, 7, 29):
        sims = F.cosine_similarity(emb, emb[index][None], dim=-1)
        sims[index] = -2
        expected = sims.argsort(descending=True)[:10]
        got = nearest_neighbors(emb, index, 10)
        assert index not in got.tolist()
        assert got.tolist() == expected.tolist()
    assert nearest_neighbors(emb, 3, 1).tolist() == [7]


def test_nearest_neighbors_ties_go_to_the_smaller_index_and_bad_arguments_raise():
    emb = torch.tensor([[1.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    assert nearest_neighbors(emb, 2, 4).tolist() == [0, 1, 4, 3]
    with pytest.raises(ValueError, match="between 0"):
        nearest_neighbors(emb, 0, 5)
    with pytest.raises(IndexError):
        nearest_neighbors(emb, 5, 1)


# ----------------------------------------------------------------------------- SGNS loss


def test_sgns_loss_small_example_by_hand():
    center = torch.tensor([[1.0, 0.0]])
    context = torch.tensor([[2.0, 0.0]])
    negatives = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    expected = -math.log(1 / (1 + math.exp(-2))) - math.log(1 / (1 + math.exp(1))) - math.log(0.5)
    torch.testing.assert_close(sgns_loss(center, context, negatives), torch.tensor(expected))


@pytest.mark.parametrize("b,k,d", [(1, 1, 1), (4, 3, 8), (5, 5, 6), (16, 10, 32)])
def test_sgns_loss_matches_binary_cross_entropy_with_logits(b, k, d):
    center, context, negatives = torch.randn(b, d), torch.randn(b, d), torch.randn(b, k, d)
    pos_logits = (center * context).sum(-1)
    neg_logits = torch.einsum("bkd,bd->bk", negatives, center)
    expected = (
        F.binary_cross_entropy_with_logits(pos_logits, torch.ones(b), reduction="none")
        + F.binary_cross_entropy_with_logits(neg_logits, torch.zeros(b, k), reduction="none").sum(-1)
    ).mean()
    loss = sgns_loss(center, context, negatives)
    assert loss.shape == ()
    torch.testing.assert_close(loss, expected)


def test_sgns_loss_is_finite_for_huge_dot_products_and_has_finite_gradients():
    center = torch.full((3, 4), 30.0, requires_grad=True)
    context = torch.full((3, 4), -30.0)
    negatives = torch.full((3, 2, 4), 30.0)
    loss = sgns_loss(center, context, negatives)  # every dot product is +-3600
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, torch.tensor(3 * 3600.0))
    assert torch.isinf(-torch.log(torch.sigmoid(torch.tensor(-3600.0))))  # what the naive formula gives
    loss.backward()
    assert torch.isfinite(center.grad).all()


def test_sgns_loss_validates_shapes():
    with pytest.raises(ValueError, match=r"\(B, K, d\)"):
        sgns_loss(torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 3))
    with pytest.raises(ValueError, match="center and context"):
        sgns_loss(torch.randn(2, 3), torch.randn(3, 3), torch.randn(2, 1, 3))


# ----------------------------------------------------------------------------- skip-gram training


def test_skipgram_pairs_stay_inside_sentences():
    pairs = skipgram_pairs([torch.tensor([1, 2, 3]), torch.tensor([4, 5])], window=1)
    assert sorted(map(tuple, pairs.tolist())) == sorted([(1, 2), (2, 1), (2, 3), (3, 2), (4, 5), (5, 4)])
    pairs = skipgram_pairs([torch.tensor([1, 2, 3])], window=2)
    assert len(pairs) == 6 and (1, 3) in map(tuple, pairs.tolist())
    assert skipgram_pairs([], 2).shape == (0, 2)
    with pytest.raises(ValueError):
        skipgram_pairs([torch.tensor([1])], 0)


def test_noise_distribution_is_counts_to_the_three_quarters():
    noise = noise_distribution(torch.tensor([16, 1, 0]))
    torch.testing.assert_close(noise, torch.tensor([8 / 9, 1 / 9, 0.0]))


def test_skipgram_model_shapes():
    model = SkipGram(10, 4)
    c, u, n = model(torch.tensor([1, 2]), torch.tensor([3, 4]), torch.tensor([[5, 6, 7], [8, 9, 0]]))
    assert c.shape == (2, 4) and u.shape == (2, 4) and n.shape == (2, 3, 4)


def test_trained_skipgram_embeddings_cluster_by_word_group_and_training_is_reproducible():
    threads = torch.get_num_threads()
    words, pairs, noise = skipgram_training_data()
    model, losses = train_skipgram(pairs, noise, dim=16, steps=150, seed=0)
    assert torch.get_num_threads() == threads, "train_skipgram must restore the number of threads"
    assert losses[-1] < 0.6 * losses[0]
    within, across = group_similarity(model.center.weight, words, WORD_GROUPS)
    assert within - across > 0.5, (within, across)
    index = {w: i for i, w in enumerate(words)}
    for group in WORD_GROUPS.values():
        for word in group[:2]:
            neighbours = {words[i] for i in nearest_neighbors(model.center.weight, index[word], 3).tolist()}
            assert neighbours <= set(group), (word, neighbours)
    again, _ = train_skipgram(pairs, noise, dim=16, steps=150, seed=0)
    torch.testing.assert_close(again.center.weight, model.center.weight)


def test_a_wrong_loss_does_not_cluster():
    words, pairs, noise = skipgram_training_data()

    def plus_sign(center, context, negatives):
        pos = (center * context).sum(-1)
        neg = torch.einsum("bkd,bd->bk", negatives, center)
        return (-F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean()

    model, _ = train_skipgram(pairs, noise, dim=16, steps=150, seed=0, loss_fn=plus_sign)
    within, across = group_similarity(model.center.weight, words, WORD_GROUPS)
    assert within - across < 0.1


def test_train_skipgram_takes_the_same_steps_as_torch_optim_adam():
    words, pairs, noise = skipgram_training_data(300)
    ours, our_losses = train_skipgram(pairs, noise, dim=8, steps=20, batch_size=64, lr=0.05, seed=4)
    # the same loop with PyTorch's optimizer
    generator = torch.Generator().manual_seed(4)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        model = SkipGram(len(noise), 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(20):
        batch = pairs[torch.randint(len(pairs), (64,), generator=generator)]
        negative_ids = torch.multinomial(noise, 64 * 5, replacement=True, generator=generator).view(64, 5)
        loss = sgns_loss(*model(batch[:, 0], batch[:, 1], negative_ids))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    torch.testing.assert_close(torch.tensor(our_losses), torch.tensor(losses))
    torch.testing.assert_close(ours.center.weight, model.center.weight, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours.context.weight, model.context.weight, atol=1e-4, rtol=1e-4)
