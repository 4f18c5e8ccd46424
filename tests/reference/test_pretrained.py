"""llm_foundations.pretrained: a Hugging Face GPT-2 becomes the course's GPT, with the same outputs.

Offline: the GPT-2 here is a small one built from a GPT2Config with random weights (nothing is
downloaded); the conversion does not depend on the size.
"""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from llm_foundations.model import GPT  # noqa: E402
from llm_foundations.pretrained import gpt_from_huggingface  # noqa: E402

V = 97


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _hf_gpt2(n_layer: int = 3, n_head: int = 4, n_embd: int = 48, n_positions: int = 40) -> "transformers.GPT2LMHeadModel":
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=V, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                                     n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # GPT-2's LayerNorms start as the identity and its biases at zero: make them matter
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model


def test_the_converted_model_gives_the_same_logits():
    hf = _hf_gpt2()
    gpt = gpt_from_huggingface(hf)
    assert isinstance(gpt, GPT) and not gpt.training
    assert gpt.head.weight is gpt.embedding.weight, "GPT-2's output layer is its token embedding"
    ids = torch.randint(0, V, (3, 25))
    with torch.no_grad():
        expected = hf(ids).logits
        got = gpt(ids)
    assert got.shape == expected.shape == (3, 25, V)
    assert (got - expected).abs().max().item() <= 1e-5, (
        f"largest difference {(got - expected).abs().max().item():.2e}: Conv1D weights must be transposed, "
        "c_attn split into q, k, v, GELU the tanh approximation, eps 1e-5")


def test_a_state_dict_converts_too_with_or_without_the_transformer_prefix():
    hf = _hf_gpt2(n_layer=2, n_head=2, n_embd=128)  # d_model 128 = 2 heads of 64, GPT-2's head width
    ids = torch.randint(0, V, (2, 12))
    with torch.no_grad():
        expected = hf(ids).logits
        from_state = gpt_from_huggingface(hf.state_dict())
        bare = {k.removeprefix("transformer."): v for k, v in hf.state_dict().items() if k != "lm_head.weight"}
        from_bare = gpt_from_huggingface(bare, n_heads=2)
        torch.testing.assert_close(from_state(ids), expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(from_bare(ids), expected, atol=1e-5, rtol=0)
    assert len(from_state.layers) == 2 and from_state.layers[0].self_attn.n_heads == 2
    assert from_state.max_len == 40


def test_greedy_generation_is_the_same_with_and_without_either_cache():
    hf = _hf_gpt2()
    gpt = gpt_from_huggingface(hf)
    prompt = torch.randint(0, V, (2, 6))
    with torch.no_grad():
        expected = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=20, do_sample=False,
                               use_cache=True, pad_token_id=0)
        uncached_hf = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=20, do_sample=False,
                                  use_cache=False, pad_token_id=0)
    assert torch.equal(expected, uncached_hf)
    for use_cache in (True, False):
        got = gpt.generate(prompt, 20, temperature=0, use_cache=use_cache)
        assert torch.equal(got, expected), f"use_cache={use_cache}: the course GPT wrote other tokens than GPT-2"


def test_the_kv_cache_of_both_models_gives_the_same_step_logits():
    hf = _hf_gpt2()
    gpt = gpt_from_huggingface(hf)
    ids = torch.randint(0, V, (2, 15))
    caches = gpt.new_caches()
    with torch.no_grad():
        out = hf(ids[:, :9], use_cache=True)
        step = hf(ids[:, 9:], cache=out.past_key_values, use_cache=True).logits
        ours = [gpt(ids[:, :9], caches=caches), gpt(ids[:, 9:], caches=caches)]
    torch.testing.assert_close(ours[0], out.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours[1], step, atol=1e-5, rtol=0)


def test_untied_or_foreign_weights_are_refused():
    hf = _hf_gpt2(n_layer=1)
    state = dict(hf.state_dict())
    state["lm_head.weight"] = state["lm_head.weight"] + 1
    with pytest.raises(ValueError, match="ties"):
        gpt_from_huggingface(state, n_heads=4)
    with pytest.raises(ValueError, match="GPT-2"):
        gpt_from_huggingface({"embeddings.weight": torch.zeros(3, 4)})
    state = dict(hf.state_dict())
    state["transformer.h.0.attn.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="no place"):
        gpt_from_huggingface(state, n_heads=4)
