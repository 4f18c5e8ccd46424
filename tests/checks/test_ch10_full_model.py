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
