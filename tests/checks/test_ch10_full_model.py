"""The checking helpers of exercise 10 (llm_foundations.checks.ch10_full_model) agree with the reference
package, so that the exercise's tests compare students with the right thing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llm_foundations.attention import padding_mask
from llm_foundations.dates import BOS, EOS, PAD
from llm_foundations.model import Transformer, greedy_decode
from llm_foundations.overview import transformer_parameter_count
from llm_foundations.checks.ch10_full_model import (
    copy_weights,
    course_transformer,
    date_split,
    eos_scenario,
    expect_greedy_equal,
    forbid_reference,
    greedy_reference,
    reference_seq2seq_loss,
    seq2seq_loss_mistakes,
    transformer_mistakes,
    transformer_param_count,
)


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("share", [True, False])
def test_parameter_count_matches_the_model_and_chapter_one(norm_first, share):
    vocab_t = 11 if share else 13
    model = Transformer(11, vocab_t, 16, 4, 24, 2, norm_first=norm_first, share_embeddings=share)
    assert sum(p.numel() for p in model.parameters()) == transformer_param_count(11, vocab_t, 16, 24, 2, norm_first, share)
    assert transformer_param_count(50, 50, 32, 64, 3, True, True) == transformer_parameter_count(50, 32, 4, 64, 3)


def test_copy_weights_makes_an_identical_model_and_explains_a_generator_bias():
    course = course_transformer(9, 9, 16, 4, 32, 1, share_embeddings=True, seed=3)
    other = Transformer(9, 9, 16, 4, 32, 1, share_embeddings=True).eval()
    copy_weights(course, other)
    src, tgt = torch.randint(1, 9, (2, 5)), torch.randint(0, 9, (2, 4))
    torch.testing.assert_close(other(src, tgt), course(src, tgt))
    other.generator = torch.nn.Linear(16, 9)
    with pytest.raises(AssertionError, match="bias=False"):
        copy_weights(course, other)


def test_greedy_reference_equals_the_cached_reference_decoding():
    for seed in range(4):
        model = course_transformer(8, 8, 16, 2, 32, 2, norm_first=bool(seed % 2), seed=seed).double()
        src = torch.randint(3, 8, (5, 6), generator=torch.Generator().manual_seed(seed))
        src[2:, 4:] = PAD
        mask = padding_mask(src, PAD)
        for max_len in (1, 3, 12):
            assert torch.equal(greedy_reference(model, src, BOS, EOS, max_len, mask),
                               greedy_decode(model, src, BOS, EOS, max_len, mask))


def test_eos_scenarios_show_what_they_promise():
    model, src, mask = eos_scenario("all_early")
    out = greedy_reference(model, src, BOS, EOS, 12, mask)
    assert out.size(1) < 12 and bool((out == EOS).any(1).all())
    model, src, mask = eos_scenario("mixed")
    out = greedy_reference(model, src, BOS, EOS, 12, mask)
    finished = (out == EOS).any(1)
    assert out.size(1) == 12 and 0 < int(finished.sum()) < len(out)


def test_greedy_comparison_explains_common_differences():
    expected = torch.tensor([[1, 4, 2, 2], [1, 5, 6, 2]])
    with pytest.raises(AssertionError, match="off-by-one"):
        expect_greedy_equal(torch.cat([expected, torch.full((2, 1), 2)], 1), expected, "ids", 1, 2, 4)
    with pytest.raises(AssertionError, match="hold eos_id"):
        expect_greedy_equal(torch.tensor([[1, 4, 2, 3], [1, 5, 6, 2]]), expected, "ids", 1, 2, 4)
    with pytest.raises(AssertionError, match="starts with bos_id"):
        expect_greedy_equal(expected[:, 1:], expected, "ids", 1, 2, 4)
    expect_greedy_equal(expected.clone(), expected, "ids", 1, 2, 4)


def test_reference_loss_is_the_mean_cross_entropy_over_non_pad_targets_and_mistakes_differ():
    model = course_transformer(10, 10, 16, 2, 32, 1, seed=5)
    src = torch.tensor([[4, 5, 6, 7], [4, 5, 0, 0]])
    tgt = torch.tensor([[1, 4, 5, 6, 2], [1, 7, 2, 0, 0]])
    logits = model(src, tgt[:, :-1], padding_mask(src, PAD))
    expected = F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=PAD)
    loss = reference_seq2seq_loss(model, (src, tgt))
    torch.testing.assert_close(loss, expected)
    for explanation, value in seq2seq_loss_mistakes(model, (src, tgt)).items():
        assert abs(float(value) - float(loss.detach())) > 1e-4, explanation


def test_transformer_mistakes_differ_from_the_right_logits():
    model = course_transformer(10, 10, 16, 2, 32, 2, seed=6)
    src = torch.tensor([[4, 5, 6, 7], [4, 5, 0, 0]])
    tgt = torch.randint(0, 10, (2, 5), generator=torch.Generator().manual_seed(0))
    right = model(src, tgt, padding_mask(src, PAD))
    for explanation, logits in transformer_mistakes(model, src, tgt, padding_mask(src, PAD)).items():
        assert not torch.allclose(logits, right, atol=1e-5), explanation


def test_date_split_keeps_held_out_sources_out_of_training():
    training, held_out = date_split(3000, 400, 1, 2)
    assert len(training) == 3000 and len(held_out) == 400
    assert not {s for s, _ in training} & {s for s, _ in held_out}


def test_forbid_reference_catches_the_reference_but_allows_its_parts():
    model = course_transformer(8, 8, 16, 2, 32, 1, seed=1)
    src = torch.randint(3, 8, (2, 4))
    with pytest.raises(AssertionError, match="reference"), forbid_reference("greedy_decode", "greedy_decode"):
        greedy_decode(model, src, BOS, EOS, 5)
    with forbid_reference("a loop of one's own", "greedy_decode"):  # the course's model itself may be called
        model(src, torch.full((2, 1), BOS))
    with pytest.raises(AssertionError, match="reference"), forbid_reference("Transformer", "Transformer"):
        Transformer(8, 8, 16, 2, 32, 1)


# --------------------------------------------------------------------------------------------
# the student's GPT (Tasks 2-7)

import math  # noqa: E402

from torch import nn  # noqa: E402

from llm_foundations import sampling  # noqa: E402
from llm_foundations.checks import ch10_full_model as ch10  # noqa: E402


class _Attention(nn.Module):
    """An exercise-layout attention (fused qkv) written here, independently of the course's."""

    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.w_qkv, self.w_o = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)

    def forward(self, x, cache=None):
        b, n, d = x.shape
        q, k, v = (t.view(b, n, self.n_heads, -1).transpose(1, 2) for t in self.w_qkv(x).split(d, -1))
        past = cache["k"].size(2) if cache else 0
        if cache is not None:
            if cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.n_heads)
        keep = torch.ones(n, past + n, dtype=torch.bool).tril(past)
        out = scores.masked_fill(~keep, float("-inf")).softmax(-1) @ v
        return self.w_o(out.transpose(1, 2).reshape(b, n, d))


class _Block(nn.Module):
    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = _Attention(d_model, n_heads)
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x, cache=None):
        x = x + self.attn(self.norm1(x), cache)
        return x + self.linear2(F.gelu(self.linear1(self.norm2(x)), approximate="tanh"))


class _GPT(nn.Module):
    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers, max_len):
        super().__init__()
        self.max_len = max_len
        self.embedding, self.positions = nn.Embedding(vocab_size, d_model), nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads, d_ff) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.embedding.weight
        for p in self.parameters():  # small weights: an initial loss near ln V
            if p.dim() > 1:
                nn.init.normal_(p, std=0.02)

    def new_caches(self):
        return [{} for _ in self.blocks]

    def forward(self, ids, caches=None):
        past = caches[0]["k"].size(2) if caches and caches[0] else 0
        x = self.embedding(ids) + self.positions(torch.arange(past, past + ids.size(1)))
        for i, block in enumerate(self.blocks):
            x = block(x, caches[i] if caches else None)
        return self.head(self.norm(x))


def test_copy_gpt_weights_gives_the_course_logits_in_the_exercise_layout():
    course = ch10.course_gpt(11, 16, 4, 24, 2, 9, seed=1)
    model = _GPT(11, 16, 4, 24, 2, 9)
    ch10.copy_gpt_weights(course, model)
    model.double().eval()
    ids = torch.randint(0, 11, (3, 9), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(model(ids), course(ids))
    caches = model.new_caches()
    pieces = torch.cat([model(ids[:, :5], caches), model(ids[:, 5:], caches)], 1)
    torch.testing.assert_close(pieces, course(ids))


def test_copy_gpt_weights_names_missing_and_extra_parameters():
    course = ch10.course_gpt(7, 8, 2, 16, 1, 4)
    model = _GPT(7, 8, 2, 16, 1, 4)
    model.extra = nn.Linear(2, 2)
    del model.blocks[0].norm2
    with pytest.raises(AssertionError, match=r"blocks\.0\.norm2\.weight.*extra\.weight"):
        ch10.copy_gpt_weights(course, model)


def test_course_gpt_has_weights_of_order_one_and_random_norms():
    course = ch10.course_gpt(7, 16, 2, 32, 1, 8)
    assert course.layers[0].self_attn.w_q.weight.std() > 0.1
    assert not torch.allclose(course.norm.weight, torch.ones(16, dtype=torch.float64))
    assert course.embedding.weight.dtype == torch.float64 and not course.training


def test_every_gpt_mistake_differs_from_the_right_logits():
    course = ch10.course_gpt(13, 16, 4, 32, 2, 10, seed=5)
    ids = torch.randint(0, 13, (3, 10), generator=torch.Generator().manual_seed(6))
    mistakes = ch10.gpt_mistakes(course, ids)
    assert len(mistakes) >= 10
    right = course(ids)
    for explanation, logits in mistakes.items():
        assert not torch.allclose(logits, right, atol=1e-4), explanation


def test_reference_lm_loss_is_cross_entropy_of_the_next_token_and_mistakes_differ():
    course = ch10.course_gpt(12, 16, 4, 32, 1, 16, seed=9).float()
    ids = torch.randint(0, 12, (3, 9), generator=torch.Generator().manual_seed(10))
    expected = F.cross_entropy(course(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
    torch.testing.assert_close(ch10.reference_lm_loss(course, ids), expected)
    for explanation, value in ch10.lm_loss_mistakes(course, ids).items():
        assert not torch.isclose(value, expected, atol=1e-4), explanation


def test_call_recorder_sees_the_course_generate_use_the_cache():
    course = ch10.course_gpt(9, 8, 2, 16, 1, 5)
    recorder = ch10.CallRecorder(course)
    course_tokens = course.generate(torch.zeros(1, 2, dtype=torch.long), 6, temperature=0)
    caches, cached = None, 0
    ids = torch.zeros(1, 2, dtype=torch.long)
    for _ in range(6):  # the rule the exercise states, written out
        if caches is not None and cached < recorder.max_len:
            logits, cached = recorder(ids[:, -1:], caches=caches), cached + 1
        else:
            caches = recorder.new_caches()
            logits = recorder(ids[:, -recorder.max_len:], caches=caches)
            cached = min(ids.size(1), recorder.max_len)
        ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(ids, course_tokens)
    assert recorder.lengths == [2, 1, 1, 1, 5, 5] and all(recorder.cached)


def test_expect_tokens_equal_explains_rows_and_positions():
    ch10.expect_tokens_equal(torch.tensor([1, 2]), torch.tensor([1, 2]), "x")
    with pytest.raises(AssertionError, match="differ in rows"):
        ch10.expect_tokens_equal(torch.tensor([1, 3]), torch.tensor([1, 2]), "x")
    with pytest.raises(AssertionError, match="row 1 differs first at position 2"):
        ch10.expect_tokens_equal(torch.tensor([[1, 2, 3], [1, 2, 3]]), torch.tensor([[1, 2, 3], [1, 2, 4]]), "x")
    with pytest.raises(AssertionError, match="torch.long"):
        ch10.expect_tokens_equal(torch.tensor([1.0]), torch.tensor([1]), "x")


def test_gpt_guard_stops_the_course_gpt_sampling_and_pytorch_attention_but_not_honest_code():
    course = ch10.course_gpt(7, 8, 2, 16, 1, 4)
    ids = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(AssertionError, match="reference"), ch10.forbid_gpt_reference("x", "GPT"):
        course(ids)
    with pytest.raises(AssertionError, match="reference"), ch10.forbid_gpt_reference("x", "sample_next_token"):
        sampling.sample_next_token(torch.randn(2, 5))
    q = torch.randn(1, 1, 3, 4)
    with pytest.raises(AssertionError, match="built-in attention"), ch10.forbid_gpt_reference("x", "GPT"):
        F.scaled_dot_product_attention(q, q, q)
    with ch10.forbid_gpt_reference("x", "generate"):  # generate's tests run it on the course GPT
        course(ids)
    model = _GPT(7, 8, 2, 16, 1, 4)
    with ch10.forbid_gpt_reference("x", "GPT"):
        model(ids)


def test_gpt_training_run_learns_within_the_stated_loss():
    loss, losses, _ = ch10.gpt_training_run(_GPT, settings={"steps": 60, "n_layers": 1, "d_model": 32, "d_ff": 64})
    assert losses[-1] < losses[0] and loss < math.log(65)
