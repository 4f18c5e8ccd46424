"""llm_foundations.decoder against nn.TransformerDecoderLayer, causality and the KV cache."""

import pytest
import torch
from torch import nn

from llm_foundations.attention import padding_mask
from llm_foundations.decoder import Decoder, DecoderLayer, causal_mask, kv_cache_bytes
from llm_foundations.interop import to_pytorch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_causal_mask_is_lower_triangular():
    mask = causal_mask(4)
    assert mask.dtype == torch.bool and mask.tolist() == [
        [True, False, False, False], [True, True, False, False], [True, True, True, False], [True, True, True, True]]
    assert causal_mask(0).shape == (0, 0)
    with pytest.raises(ValueError):
        causal_mask(-1)


def _twin(layer: DecoderLayer, norm_first: bool) -> nn.TransformerDecoderLayer:
    return to_pytorch(layer, norm_first=norm_first).eval()


@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_layer_matches_pytorch(norm_first):
    layer = DecoderLayer(16, 4, 32, norm_first=norm_first).eval()
    with torch.no_grad():
        for sub in layer.sublayers:  # non-trivial norms, so a swapped norm would show
            sub.norm.weight.uniform_(0.5, 1.5), sub.norm.bias.uniform_(-0.5, 0.5)
    ref = _twin(layer, norm_first)
    x, memory = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    keep = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    ours = layer(x, memory, causal_mask(5), keep[:, None, None, :])
    theirs = ref(x, memory, tgt_mask=~causal_mask(5), memory_key_padding_mask=~keep)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_decoder_is_causal_and_ignores_masked_source_padding():
    decoder = Decoder(20, 16, 4, 32, 2).eval()
    memory = torch.randn(1, 6, 16)
    tgt = torch.randint(0, 20, (1, 8))
    out = decoder(tgt, memory)
    changed = tgt.clone()
    changed[0, 5:] = (changed[0, 5:] + 1) % 20
    torch.testing.assert_close(decoder(changed, memory)[:, :5], out[:, :5])
    src = torch.tensor([[4, 5, 6, 0, 0, 0]])
    longer = torch.cat([memory, torch.randn(1, 3, 16)], dim=1)
    src_longer = torch.cat([src, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(decoder(tgt, memory, memory_mask=padding_mask(src, 0)),
                               decoder(tgt, longer, memory_mask=padding_mask(src_longer, 0)))


def test_a_given_tgt_mask_is_combined_with_the_causal_mask_not_substituted():
    decoder = Decoder(20, 16, 4, 32, 2).eval()
    memory = torch.randn(2, 4, 16)
    tgt = torch.tensor([[3, 4, 5, 6, 0, 0], [7, 8, 9, 10, 11, 12]])
    pad = padding_mask(tgt, 0)  # (B, 1, 1, L_t): only the target padding, no causal part
    out = decoder(tgt, memory, tgt_mask=pad)
    changed = tgt.clone()
    changed[1, 3:] = (changed[1, 3:] + 1) % 20
    again = decoder(changed, memory, tgt_mask=padding_mask(changed, 0))
    torch.testing.assert_close(again[1, :3], out[1, :3], msg="a padding-only tgt_mask must keep the decoder causal")
    explicit = decoder(tgt, memory, tgt_mask=causal_mask(6) & pad)
    torch.testing.assert_close(out, explicit, msg="decoder(tgt_mask=m) must equal decoder(tgt_mask=causal & m)")
    everything = torch.ones(6, 6, dtype=torch.bool)
    torch.testing.assert_close(decoder(tgt, memory, everything), decoder(tgt, memory),
                               msg="an all-True tgt_mask adds nothing to the causal mask")


def test_causal_false_lets_every_position_see_the_future():
    decoder = Decoder(20, 16, 4, 32, 2).eval()
    memory = torch.randn(1, 4, 16)
    tgt = torch.randint(0, 20, (1, 6))
    changed = tgt.clone()
    changed[0, 5] = (changed[0, 5] + 1) % 20
    first = decoder(tgt, memory, causal=False)[:, 0]
    assert not torch.allclose(first, decoder(changed, memory, causal=False)[:, 0]), \
        "with causal=False position 0 must read the last token"


def test_kv_cache_decoding_equals_full_decoding():
    decoder = Decoder(30, 16, 2, 32, 3).eval()
    memory = torch.randn(2, 5, 16)
    tgt = torch.randint(0, 30, (2, 9))
    full = decoder(tgt, memory)
    caches = decoder.new_caches()
    parts = [decoder(tgt[:, :4], memory, caches=caches)]  # prefill
    parts += [decoder(tgt[:, t : t + 1], memory, caches=caches) for t in range(4, 9)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-4)
    assert all(len(c) == 9 for c in caches)


def test_decoder_rejects_too_long_targets_and_cache_memory_formula():
    decoder = Decoder(10, 8, 2, 16, 1, max_len=4)
    with pytest.raises(ValueError, match="max_len=4"):
        decoder(torch.zeros(1, 5, dtype=torch.long), torch.randn(1, 2, 8))
    assert kv_cache_bytes(n_layers=12, batch=1, seq_len=1024, d_model=768, bytes_per_value=2) == 2 * 12 * 1024 * 768 * 2
