"""The chapter-9 checks (llm_foundations.checks.ch09_decoder): the PyTorch twins reproduce the reference
layer, the counts, the independent stack and cached decoding agree with the reference decoder, every
named mistake differs from the answer, the work records, and the guard against the reference and PyTorch."""

import pytest
import torch
from torch import nn

import llm_foundations.checks.ch09_decoder as ch09
from llm_foundations.attention import KVCache, MultiHeadAttention, padding_mask
from llm_foundations.decoder import Decoder, DecoderLayer, causal_mask
from llm_foundations.checks.ch09_decoder import (
    CachedDecoding,
    causal_mask_mistakes,
    count_new_tokens,
    course_caches,
    course_decoder,
    course_step_and_cache,
    decoder_layer_mistakes,
    decoder_layer_norms,
    decoder_layer_param_count,
    decoder_mistakes,
    decoder_param_count,
    decoder_reference,
    expect_close_or_hint,
    expect_one_token_per_step,
    forbid_reference,
    greedy_reference,
    leak_matrix,
    pytorch_decoder_layer_output,
    pytorch_decoder_layer_twin,
    randomize_norms,
    reference_causal_mask,
    reference_decode_step,
)
from mistakes import named


def _layer(norm_first=True, d_model=16, seed=0):
    torch.manual_seed(seed)
    layer = DecoderLayer(d_model, 4, 24, norm_first=norm_first).eval()
    randomize_norms(layer, d_model, torch.Generator().manual_seed(seed + 1))
    return layer


def _inputs():
    x, memory = torch.randn(2, 4, 16), torch.randn(2, 5, 16)
    src = torch.tensor([[1, 2, 3, 4, 5], [1, 2, 3, 0, 0]])
    return x, memory, src != 0, padding_mask(src, 0)


@pytest.mark.parametrize("norm_first", [True, False])
def test_the_twin_reproduces_the_reference_layer(norm_first):
    layer = _layer(norm_first)
    x, memory, keep, memory_mask = _inputs()
    causal = reference_causal_mask(4)
    ours = layer(x, memory, causal, memory_mask)
    twin = pytorch_decoder_layer_twin(layer, norm_first)
    assert isinstance(twin, nn.TransformerDecoderLayer) and twin.norm_first == norm_first
    theirs = twin(x, memory, tgt_mask=~causal, memory_key_padding_mask=~keep)
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(pytorch_decoder_layer_output(layer, x, memory, causal, keep, norm_first), ours,
                               atol=1e-5, rtol=1e-4)
    # a layer that registered its norms in another order: the output closest to its own is found
    swapped = pytorch_decoder_layer_twin(layer, norm_first, (2, 1, 0))(x, memory, tgt_mask=~causal,
                                                                       memory_key_padding_mask=~keep).detach()
    assert not torch.allclose(swapped, ours, atol=1e-3)
    found = pytorch_decoder_layer_output(layer, x, memory, causal, keep, norm_first, got=swapped)
    torch.testing.assert_close(found, swapped)


def test_norms_counts_and_the_causal_mask():
    layer = _layer()
    assert decoder_layer_norms(layer, 16) == [sub.norm for sub in layer.sublayers]
    assert decoder_layer_param_count(16, 24) == sum(p.numel() for p in layer.parameters())
    assert decoder_layer_param_count(16, 24) == sum(p.numel() for p in nn.TransformerDecoderLayer(16, 4, 24).parameters())
    for norm_first in (True, False):
        decoder = Decoder(30, 16, 4, 24, 2, norm_first=norm_first)
        assert decoder_param_count(30, 16, 24, 2, norm_first) == sum(p.numel() for p in decoder.parameters())
    layer.sublayers[2].norm = layer.sublayers[0].norm
    with pytest.raises(AssertionError, match="needs three LayerNorms of width 16 .* found 2"):
        pytorch_decoder_layer_twin(layer, True)
    for n in (0, 1, 5):
        assert torch.equal(reference_causal_mask(n), causal_mask(n))
        assert torch.equal(reference_causal_mask(n), ~nn.Transformer.generate_square_subsequent_mask(n).isinf())
    right = reference_causal_mask(4).float()
    m = causal_mask_mistakes(4)
    assert torch.equal(named(m, "the mask is upper triangular"), torch.ones(4, 4).triu())
    for why, wrong in m.items():
        assert not torch.equal(wrong, right), why


@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_layer_mistakes_differ_from_the_answer(norm_first):
    layer = _layer(norm_first).double()
    x, memory, _, memory_mask = (t.double() if t.is_floating_point() else t for t in _inputs())
    causal = reference_causal_mask(4)
    right = layer(x, memory, causal, memory_mask)
    m = decoder_layer_mistakes(layer, x, memory, causal, memory_mask, norm_first)
    assert len(m) >= 4
    for why, wrong in m.items():
        assert wrong.shape == right.shape and not torch.allclose(wrong, right, atol=1e-4), why


@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_reference_is_the_decoder_and_the_mistakes_differ(norm_first):
    decoder = course_decoder(30, 16, 4, 24, 2, norm_first=norm_first)
    assert not decoder.training
    ids = torch.randint(1, 30, (2, 6))
    _, memory, _, memory_mask = _inputs()
    right = decoder(ids, memory, None, memory_mask)
    torch.testing.assert_close(decoder_reference(decoder, ids, memory, None, memory_mask, 30, 16, norm_first), right)
    for why, wrong in decoder_mistakes(decoder, ids, memory, None, memory_mask, 30, 16, norm_first).items():
        assert not torch.allclose(wrong, right, atol=1e-4), why
    # causal: output i depends on the tokens j <= i only
    leaks = leak_matrix(lambda t: decoder(t, memory[:1]), ids, 30)
    assert torch.equal(leaks, reference_causal_mask(6))


def test_cached_decoding_matches_the_whole_sequence_and_its_mistakes_differ():
    decoder = course_decoder(30, 16, 4, 24, 2)
    ids = torch.randint(1, 30, (2, 6))
    _, memory, _, memory_mask = _inputs()
    whole = decoder(ids, memory, None, memory_mask)
    cached = CachedDecoding(decoder, memory, memory_mask)
    torch.testing.assert_close(cached.run(ids, [3, 1, 1, 1]), whole, atol=1e-5, rtol=1e-4)
    caches = course_caches(decoder)
    assert len(caches) == 2 and all(isinstance(c, KVCache) and len(c) == 0 for c in caches)
    steps = [reference_decode_step(decoder, ids[:, :3], memory, caches, memory_mask)]
    steps += [reference_decode_step(decoder, ids[:, t : t + 1], memory, caches, memory_mask) for t in range(3, 6)]
    torch.testing.assert_close(torch.cat(steps, 1), whole, atol=1e-5, rtol=1e-4)
    mistakes = cached.mistakes(ids, [3, 1, 1, 1])
    assert len(mistakes) == 3
    for why, wrong in mistakes.items():
        assert not torch.allclose(wrong, whole, atol=1e-4), why


def test_greedy_reference_and_the_work_records():
    decoder = course_decoder(30, 16, 4, 24, 2)
    memory = torch.randn(1, 3, 16)
    head = nn.Linear(16, 30)
    ids = greedy_reference(lambda t: decoder(t, memory), head, 1, 0, 4)
    assert ids.shape == (1, 5) and ids[0, 0] == 0
    for t in range(1, 5):
        assert ids[0, t] == head(decoder(ids[:, :t], memory)[:, -1]).argmax(-1)
    with count_new_tokens(decoder) as records:
        caches = course_caches(decoder)
        for t in range(4):
            reference_decode_step(decoder, ids[:, t : t + 1], memory, caches)
    assert records == [[1, 1, 1, 1], [1, 1, 1, 1]]
    expect_one_token_per_step(records, 4, "greedy_generate")
    with count_new_tokens(decoder) as records:
        for t in range(1, 5):
            decoder(ids[:, :t], memory)
    with pytest.raises(AssertionError, match="the whole prefix is recomputed at every step"):
        expect_one_token_per_step(records, 4, "greedy_generate")
    with pytest.raises(AssertionError, match="layer 0 of the decoder was never run"):
        with count_new_tokens(decoder) as records:
            pass
        expect_one_token_per_step(records, 4, "greedy_generate")


def test_course_step_and_cache_swaps_the_names_and_puts_them_back():
    namespace = {"decode_step": "mine"}
    with course_step_and_cache(namespace):
        assert namespace["decode_step"] is reference_decode_step and namespace["LayerCache"] is KVCache
    assert namespace == {"decode_step": "mine"}


def test_expect_close_or_hint_computes_the_mistakes_only_when_wrong():
    calls = []

    def mistakes():
        calls.append(1)
        return {"the signs are flipped": -torch.ones(2)}

    expect_close_or_hint(torch.ones(2), torch.ones(2), "x", mistakes)
    assert calls == []
    with pytest.raises(AssertionError, match="this is what happens when the signs are flipped"):
        expect_close_or_hint(-torch.ones(2), torch.ones(2), "x", mistakes)
    with pytest.raises(AssertionError, match="Hint: look again"):  # a failing mistake table gives no hint
        expect_close_or_hint(torch.zeros(2), torch.ones(2), "x", lambda: 1 / 0, hint="look again")


def test_forbid_reference_catches_the_reference_a_subclass_the_helpers_and_pytorch():
    x, memory = torch.randn(1, 3, 8), torch.randn(1, 2, 8)

    def wrapper(n):
        return causal_mask(n) & True

    class Subclass(DecoderLayer):
        pass

    for task, run in [("causal_mask", lambda: wrapper(3)), ("DecoderLayer", lambda: Subclass(8, 2, 8)(x, memory)),
                      ("Decoder", lambda: course_decoder(10, 8, 2, 8, 1))]:
        with pytest.raises(AssertionError, match="reference code"):
            with forbid_reference(task, task):
                run()
    with pytest.raises(AssertionError, match="PyTorch's own decoder"):
        with forbid_reference("causal_mask", "causal_mask"):
            nn.Transformer.generate_square_subsequent_mask(3)
    with pytest.raises(AssertionError, match="PyTorch's own decoder"):
        with forbid_reference("DecoderLayer", "DecoderLayer"):
            nn.TransformerDecoderLayer(8, 2, 8, batch_first=True)(x, memory)
    with forbid_reference("DecoderLayer", "DecoderLayer"):  # the chapter's building blocks stay allowed
        MultiHeadAttention(8, 2)(x, memory, memory)
        torch.ones(3, 3, dtype=torch.bool).tril()


def test_call_turns_known_errors_into_hints(expect_hint_table):
    expect_hint_table(ch09.call, ch09._ERROR_HINTS)
    with pytest.raises(AssertionError, match="LayerCache needs a __len__ method"):
        ch09.call(len, object(), what="len(cache)")
