"""llm_foundations.model: the encoder–decoder Transformer, its decoding, and the decoder-only GPT."""

import math

import pytest
import torch

from llm_foundations.attention import padding_mask, split_heads
from llm_foundations.model import GPT, Transformer, beam_decode, greedy_decode
from llm_foundations.overview import transformer_parameter_count
from llm_foundations.positional import apply_rope

V, PAD, BOS, EOS = 23, 0, 1, 2


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    # Tiny tensors gain nothing from a second thread, and on a busy machine its barrier waits
    # make every operation many times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def _model(**kwargs) -> Transformer:
    sizes = dict(d_model=16, n_heads=4, d_ff=32, n_layers=2, dropout=0.0, max_len=32)
    return Transformer(V, V, **(sizes | kwargs)).eval()


def _source(batch: int = 3, length: int = 7) -> torch.Tensor:
    return torch.randint(3, V, (batch, length))  # no PAD, BOS or EOS inside


def test_transformer_shapes_and_attributes():
    model = Transformer(V, 31, d_model=16, n_heads=4, d_ff=32, n_layers=2, dropout=0.0, max_len=32)
    src, tgt = _source(3, 7), torch.randint(0, 31, (3, 5))
    assert model(src, tgt).shape == (3, 5, 31)
    assert model.encode(src).shape == (3, 7, 16)
    assert model.decode(tgt, model.encode(src)).shape == (3, 5, 16)
    assert model.generator.bias is None and model.generator.weight.shape == (31, 16)
    assert len(model.encoder.layers) == len(model.decoder.layers) == 2


def test_transformer_is_causal_in_the_target():
    model, src = _model(), _source()
    tgt = torch.randint(3, V, (3, 6))
    changed = tgt.clone()
    changed[:, 4] = (changed[:, 4] + 1 - 3) % (V - 3) + 3  # another token at position 4
    before, after = model(src, tgt), model(src, changed)
    torch.testing.assert_close(before[:, :4], after[:, :4])  # positions before 4 cannot see it
    assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_padded_source_with_its_mask_gives_the_same_logits():
    model, src = _model(), _source(2, 5)
    tgt = torch.randint(3, V, (2, 4))
    padded = torch.cat([src, torch.full((2, 3), PAD)], dim=1)  # (2, 8): three padding positions
    expected = model(src, tgt)
    torch.testing.assert_close(model(padded, tgt, src_mask=padding_mask(padded, PAD)), expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(model(padded, tgt), expected, atol=1e-5)  # without the mask the padding leaks in


def test_the_source_matters():
    model, src = _model(), _source(2, 5)
    tgt = torch.randint(3, V, (2, 4))
    assert not torch.allclose(model(src, tgt), model(src.flip(1), tgt))


@pytest.mark.parametrize("vocab, d_model, n_heads, d_ff, n_layers", [
    (23, 16, 4, 32, 2), (50, 8, 2, 16, 1), (11, 24, 3, 40, 3), (100, 32, 8, 128, 1)])
def test_shared_embeddings_are_one_matrix_and_the_count_is_the_closed_form(vocab, d_model, n_heads, d_ff, n_layers):
    model = Transformer(vocab, vocab, d_model, n_heads, d_ff, n_layers, share_embeddings=True)
    ptr = model.encoder.embedding.weight.data_ptr()
    assert model.decoder.embedding.weight.data_ptr() == ptr and model.generator.weight.data_ptr() == ptr
    assert model.decoder.embedding.weight is model.encoder.embedding.weight is model.generator.weight
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)  # parameters() lists a tied one once
    assert count == transformer_parameter_count(vocab, d_model, n_heads, d_ff, n_layers)


def test_untied_embeddings_are_separate():
    model = Transformer(V, V, 16, 4, 32, 1)
    assert model.decoder.embedding.weight is not model.encoder.embedding.weight
    assert model.generator.weight.data_ptr() != model.encoder.embedding.weight.data_ptr()


def test_sharing_embeddings_needs_one_vocabulary():
    with pytest.raises(ValueError, match="share_embeddings"):
        Transformer(20, 21, 16, 4, 32, 1, share_embeddings=True)


def _naive_greedy(model, src, steps):
    """Greedy decoding without any cache: the whole prefix through the decoder at every step."""
    ids = torch.full((src.size(0), 1), BOS)
    for _ in range(steps):
        next_id = model(src, ids)[:, -1].argmax(-1)
        ids = torch.cat([ids, next_id[:, None]], dim=1)
    return ids


def test_greedy_decode_matches_an_uncached_loop():
    model, src = _model(), _source(4, 6)
    expected = _naive_greedy(model, src, 9)
    out = greedy_decode(model, src, BOS, eos_id=V + 5, max_len=10)  # an id never produced: no early stop
    assert out.shape == (4, 10) and out.dtype == torch.long
    assert torch.equal(out, expected)


def test_greedy_decode_stops_at_eos_and_pads_finished_rows_with_it():
    model, src = _model(), _source(4, 6)
    free = greedy_decode(model, src, BOS, eos_id=V + 5, max_len=12)
    eos = int(free[0, 3])  # pretend the token row 0 produces third is the end of sequence
    out = greedy_decode(model, src, BOS, eos_id=eos, max_len=12)
    assert out.size(1) <= 12 and torch.all(out[:, 0] == BOS)
    for row, full in zip(out, free):
        hits = (full[1:] == eos).nonzero()
        if len(hits) == 0:  # never produced eos: identical to the free run
            assert torch.equal(row, full[: len(row)])
            continue
        stop = int(hits[0]) + 1  # index of the first eos
        assert torch.equal(row[: stop + 1], full[: stop + 1])
        assert torch.all(row[stop:] == eos), "a finished row must only repeat EOS"
    ends = [int((full[1:] == eos).nonzero()[0]) + 2 if (full[1:] == eos).any() else 12 for full in free]
    assert out.size(1) == max(ends), "decoding must stop once every row has produced EOS, not before"


def test_greedy_decode_max_len_counts_bos():
    model, src = _model(), _source(2, 5)
    assert greedy_decode(model, src, BOS, EOS, max_len=1).tolist() == [[BOS], [BOS]]
    assert greedy_decode(model, src, BOS, V + 5, max_len=4).shape == (2, 4)
    with pytest.raises(ValueError):
        greedy_decode(model, src, BOS, EOS, max_len=0)


def test_greedy_decode_restores_training_mode():
    model = _model(dropout=0.1).train()
    greedy_decode(model, _source(1, 5), BOS, EOS, max_len=4)
    assert model.training


def test_beam_decode_with_one_beam_is_greedy():
    model, src = _model(), _source(3, 6)
    free = greedy_decode(model, src, BOS, eos_id=V + 5, max_len=8)
    eos = int(free[1, 2])
    greedy = greedy_decode(model, src, BOS, eos, max_len=8)
    beams = beam_decode(model, src, BOS, eos, max_len=8, beam_size=1)
    assert len(beams) == 3
    for row, beam in zip(greedy.tolist(), beams):
        expected = row[: row.index(eos, 1) + 1] if eos in row[1:] else row
        assert beam == expected


def test_beam_decode_scores_at_least_as_well_as_greedy():
    model, src = _model(), _source(2, 6)
    for row in range(2):
        one = src[row : row + 1]
        greedy = beam_decode(model, one, BOS, EOS, max_len=6, beam_size=1)[0]
        wide = beam_decode(model, one, BOS, EOS, max_len=6, beam_size=4)[0]

        @torch.no_grad()
        def score(tokens):
            logits = model(one, torch.tensor([tokens[:-1]]))[0].log_softmax(-1)
            return sum(float(logits[i, t]) for i, t in enumerate(tokens[1:]))

        if len(wide) == len(greedy):  # without length normalisation only equal lengths compare fairly
            assert score(wide) >= score(greedy) - 1e-5


POSITIONAL = pytest.mark.parametrize("positional", ["learned", "rope"])


def _gpt(**kwargs) -> GPT:
    return GPT(**(dict(vocab_size=V, d_model=16, n_heads=4, d_ff=32, n_layers=2, max_len=24) | kwargs)).eval()


@POSITIONAL
def test_gpt_shapes_tied_head_and_causality(positional):
    model = _gpt(positional=positional)
    ids = torch.randint(0, V, (2, 9))
    logits = model(ids)
    assert logits.shape == (2, 9, V)
    assert model.head.weight is model.embedding.weight
    changed = ids.clone()
    changed[:, 6] = (changed[:, 6] + 1) % V
    torch.testing.assert_close(model(changed)[:, :6], logits[:, :6])


@POSITIONAL
def test_gpt_cached_forward_matches_the_full_forward(positional):
    model = _gpt(positional=positional)
    ids = torch.randint(0, V, (2, 10))
    caches = model.new_caches()
    first = model(ids[:, :6], caches=caches)
    rest = model(ids[:, 6:], caches=caches)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), model(ids), atol=1e-5, rtol=1e-4)


@POSITIONAL
@pytest.mark.parametrize("sampling", [
    dict(), dict(temperature=0.0), dict(temperature=0.7, top_k=5), dict(temperature=1.3, top_p=0.8),
    dict(temperature=0.9, top_k=8, top_p=0.9)], ids=repr)
def test_gpt_generate_with_and_without_cache_gives_the_same_tokens(sampling, positional):
    model = _gpt(positional=positional)
    prompt = torch.randint(0, V, (3, 4))
    cached = model.generate(prompt, 15, generator=torch.Generator().manual_seed(1), use_cache=True, **sampling)
    uncached = model.generate(prompt, 15, generator=torch.Generator().manual_seed(1), use_cache=False, **sampling)
    assert cached.shape == (3, 19) and torch.equal(cached[:, :4], prompt)
    assert torch.equal(cached, uncached)


def test_gpt_generate_is_reproducible_and_random():
    model = _gpt()
    prompt = torch.zeros(1, 1, dtype=torch.long)
    one = model.generate(prompt, 20, generator=torch.Generator().manual_seed(0))
    assert torch.equal(one, model.generate(prompt, 20, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(one, model.generate(prompt, 20, generator=torch.Generator().manual_seed(1)))


def _cropping_loop(model, ids, steps):
    """Greedy generation written out: the last max_len tokens through the whole model at every step."""
    for _ in range(steps):
        next_id = model(ids[:, -model.max_len:])[:, -1].argmax(-1)
        ids = torch.cat([ids, next_id[:, None]], dim=1)
    return ids


@POSITIONAL
def test_gpt_generate_crops_the_context_past_max_len(positional):
    model = _gpt(max_len=12, positional=positional)
    prompt = torch.randint(0, V, (2, 5))
    expected = _cropping_loop(model, prompt, 20)  # 25 tokens: the window slides 13 times
    for use_cache in (True, False):
        out = model.generate(prompt, 20, temperature=0, use_cache=use_cache)
        assert out.shape == (2, 25), f"generate must run past max_len=12 by cropping, got shape {tuple(out.shape)}"
        assert torch.equal(out, expected), f"use_cache={use_cache}: each step must read the last max_len tokens"
    long_prompt = torch.randint(0, V, (1, 30))  # longer than the window from the start
    assert torch.equal(model.generate(long_prompt, 4, temperature=0), _cropping_loop(model, long_prompt, 4))
    with pytest.raises(ValueError):
        model(torch.zeros(1, 13, dtype=torch.long))  # one forward pass still cannot see more than max_len


@POSITIONAL
def test_gpt_sampling_past_the_window_is_the_same_with_and_without_the_cache(positional):
    model = _gpt(max_len=10, positional=positional)
    prompt = torch.randint(0, V, (3, 4))
    runs = [model.generate(prompt, 25, temperature=0.9, top_k=8, generator=torch.Generator().manual_seed(3),
                           use_cache=use_cache) for use_cache in (True, False)]
    assert torch.equal(*runs)


@pytest.mark.parametrize("vocab", [65, 500])
def test_gpt_starts_near_the_loss_of_a_uniform_guess(vocab):
    """GPT-2's initialisation, no sqrt(d) embedding scale with the tied head: the first loss is about ln V."""
    torch.manual_seed(1)
    model = GPT(vocab, d_model=128, n_heads=4, d_ff=512, n_layers=4, max_len=64, bias=False)
    ids = torch.randint(0, vocab, (8, 65))
    loss = torch.nn.functional.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten()).item()
    assert abs(loss - math.log(vocab)) < 0.15, (
        f"initial loss {loss:.2f}, expected about ln {vocab} = {math.log(vocab):.2f}: "
        "with a tied head, embeddings scaled by sqrt(d) or initialised large make confident wrong guesses")


def test_rope_gpt_rotates_queries_and_keys_and_has_no_position_table():
    torch.manual_seed(0)
    fused = _gpt(positional="rope", n_layers=1)
    assert fused.positions is None and fused.rotary is not None
    assert not any("position" in name for name in fused.state_dict()), "RoPE has no parameters and no saved tables"
    plain = _gpt(positional="rope", n_layers=1, fused=False)
    plain.load_state_dict(fused.state_dict())
    ids = torch.randint(0, V, (2, 11))
    torch.testing.assert_close(plain(ids), fused(ids), atol=1e-5, rtol=1e-4)  # chapter 4's code = the fused kernel
    block = plain.layers[0]
    x = fused.embedding(ids)  # no table added: the block sees the embeddings themselves
    h = block.sublayers[0].norm(x)
    attn = block.self_attn
    q, k = (apply_rope(split_heads(w(h), attn.n_heads)) for w in (attn.w_q, attn.w_k))
    expected = (q @ k.transpose(-1, -2) / math.sqrt(attn.d_head)).masked_fill(
        ~torch.ones(11, 11, dtype=torch.bool).tril(), float("-inf")).softmax(-1)
    block(x, None)
    torch.testing.assert_close(attn.attn_weights, expected, atol=1e-5, rtol=1e-4)


def test_gpt_rejects_a_bad_positional_and_contexts_past_its_window():
    with pytest.raises(ValueError, match="positional"):
        _gpt(positional="sinusoidal")
    model = _gpt(positional="rope", max_len=8)
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_gpt_initialisation_is_gpt2s():
    torch.manual_seed(0)
    n_layers = 8
    model = GPT(100, d_model=256, n_heads=4, d_ff=1024, n_layers=n_layers, max_len=128)
    std = lambda t: t.detach().float().std().item()  # noqa: E731
    assert abs(std(model.embedding.weight) - 0.02) < 0.002 and abs(std(model.positions.weight) - 0.02) < 0.002
    for block in model.layers:
        for linear in (block.self_attn.w_q, block.self_attn.w_k, block.self_attn.w_v, block.ffn.linear1):
            assert abs(std(linear.weight) - 0.02) < 0.002 and torch.all(linear.bias == 0)
        for residual in (block.self_attn.w_o, block.ffn.linear2):  # write into the residual stream
            assert abs(std(residual.weight) - 0.02 / math.sqrt(2 * n_layers)) < 0.0005
    assert torch.all(model.norm.weight == 1) and torch.all(model.norm.bias == 0)


def test_gpt_embeddings_are_not_scaled_by_sqrt_d():
    model = _gpt(n_layers=0)  # no blocks: logits = LN(E[ids] + P) E^T
    ids = torch.randint(0, V, (2, 7))
    x = model.embedding.weight[ids] + model.positions.weight[:7]
    torch.testing.assert_close(model(ids), model.norm(x) @ model.embedding.weight.T)


@pytest.mark.parametrize("activation, fn", [
    ("relu", torch.relu), ("gelu", lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))),
    ("gelu_tanh", lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))))])
def test_gpt_feed_forward_activations(activation, fn):
    block = _gpt(activation=activation).layers[0]
    x = torch.randn(2, 5, 16)
    expected = block.ffn.linear2(fn(block.ffn.linear1(x)))
    torch.testing.assert_close(block.ffn(x), expected, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="activation"):
        _gpt(activation="swish")


def test_gpt_without_biases_has_none_and_the_expected_parameter_count():
    d, d_ff, n_layers, max_len = 16, 32, 2, 24
    model = _gpt(bias=False)
    names = [name for name, _ in model.named_parameters()]
    assert not any(name.endswith("bias") for name in names), f"bias=False left biases: {names}"
    per_block = 4 * d * d + 2 * d * d_ff + 2 * d  # four projections, two FFN matrices, two LayerNorm gains
    expected = V * d + max_len * d + n_layers * per_block + d  # tied head: counted once; final LayerNorm gain
    assert sum(p.numel() for p in model.parameters()) == expected
    ids = torch.randint(0, V, (2, 6))
    assert model(ids).shape == (2, 6, V)


@pytest.mark.parametrize("options", [dict(), dict(bias=False, activation="relu"), dict(dropout=0.1)], ids=repr)
def test_gpt_fused_kernels_compute_chapters_4_and_6s_numbers(options):
    fused = _gpt(**options)
    plain = _gpt(fused=False, **options)
    plain.load_state_dict(fused.state_dict())
    ids = torch.randint(0, V, (3, 11))
    torch.testing.assert_close(fused(ids), plain(ids), atol=1e-5, rtol=1e-4)
    caches = fused.new_caches()
    steps = torch.cat([fused(ids[:, :4], caches=caches), fused(ids[:, 4:], caches=caches)], dim=1)
    torch.testing.assert_close(steps, plain(ids), atol=1e-5, rtol=1e-4)
    plain(ids)
    assert plain.layers[0].self_attn.attn_weights.shape == (3, 4, 11, 11)  # the chapter-4 path keeps them


def test_gpt_generate_restores_training_mode():
    model = _gpt(dropout=0.1).train()
    model.generate(torch.zeros(1, 1, dtype=torch.long), 3)
    assert model.training
