"""The chapter-6 checks (llm_foundations.checks.ch06_residual_connections): the guards against built-in
norms and the reference, every named LayerNorm, feed-forward and residual mistake is that mistake (against
PyTorch's own modules), the PyTorch encoder layer the residual tests compare with, and the dropout check."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llm_foundations.layers import FeedForward, LayerNorm, ResidualSublayer
from llm_foundations.checks.ch06_residual_connections import (
    expect_dropout_on_hidden,
    feedforward_expected,
    feedforward_mistakes,
    forbid_builtin_norms,
    forbid_reference,
    layer_norm_mistakes,
    load_norm,
    own_code_only,
    pytorch_encoder_layer,
    residual_mistakes,
)
from mistakes import named


@pytest.mark.parametrize("route", [
    lambda x: F.layer_norm(x, (x.size(-1),)),
    lambda x: nn.LayerNorm(x.size(-1))(x),
    lambda x: torch.layer_norm(x, (x.size(-1),)),
    lambda x: torch.native_layer_norm(x, [x.size(-1)], None, None, 1e-5)[0],
    lambda x: torch.ops.aten.layer_norm(x, [x.size(-1)]),
    lambda x: F.group_norm(x.reshape(-1, x.size(-1), 1), 1).reshape(x.shape),
    lambda x: F.rms_norm(x - x.mean(-1, keepdim=True), (x.size(-1),)),
], ids=["F.layer_norm", "nn.LayerNorm", "torch.layer_norm", "native_layer_norm", "aten.layer_norm", "group_norm",
        "rms_norm"])
def test_forbid_builtin_norms_catches_every_route(route):
    x = torch.randn(3, 8)
    with pytest.raises(AssertionError, match="built-in normalisation"):
        with forbid_builtin_norms("LayerNorm"):
            route(x)


def test_guards_let_hand_written_code_through_and_catch_the_reference():
    x = torch.randn(3, 8)
    with own_code_only("hand-written"):
        mean = x.mean(-1, keepdim=True)
        var, _ = torch.var_mean(x, -1, keepdim=True, correction=0)
        (x - mean) * torch.rsqrt(var + 1e-5)

    class Subclass(LayerNorm):
        pass

    with pytest.raises(AssertionError, match="reference code"):
        with forbid_reference("a subclass of the reference"):
            Subclass(8)(x)


def test_mistake_tables_differ_from_the_right_answers():
    x = torch.randn(2, 3, 8) * 2 + 1
    w, b = torch.rand(8) + 0.5, torch.randn(8)
    ref = nn.LayerNorm(8, eps=0.1)
    with torch.no_grad():
        ref.weight.copy_(w)
        ref.bias.copy_(b)
    right = ref(x).double()
    for why, wrong in layer_norm_mistakes(x, w, b, eps=0.1).items():
        assert wrong.shape == x.shape and not torch.allclose(wrong, right, atol=1e-4), why
    ffn = FeedForward(8, 16).eval()
    for why, wrong in feedforward_mistakes(ffn, x).items():
        assert not torch.allclose(wrong, feedforward_expected(ffn, x), atol=1e-4), why
    for norm_first in (True, False):
        layer, attention, feed_forward = pytorch_encoder_layer(8, 2, 16, norm_first, seed=1)
        with torch.no_grad():
            right = layer(x)
        for why, wrong in residual_mistakes(x, [(attention, layer.norm1), (feed_forward, layer.norm2)],
                                            norm_first).items():
            assert not torch.allclose(wrong, right, atol=1e-4), why


class _DropoutOnInput(FeedForward):
    def forward(self, x):
        return self.linear2(torch.relu(self.linear1(self.dropout(x))))


class _DropoutOnOutput(FeedForward):
    def forward(self, x):
        return self.dropout(self.linear2(torch.relu(self.linear1(x))))


class _NoDropout(FeedForward):
    def forward(self, x):
        return self.linear2(torch.relu(self.linear1(x)))


class _DropoutBeforeRelu(FeedForward):  # equivalent: relu(m * h / (1 - p)) = m * relu(h) / (1 - p)
    def forward(self, x):
        return self.linear2(torch.relu(self.dropout(self.linear1(x))))


@pytest.mark.parametrize("cls,passes", [(FeedForward, True), (_DropoutBeforeRelu, True), (_DropoutOnInput, False),
                                        (_DropoutOnOutput, False), (_NoDropout, False)])
def test_expect_dropout_on_hidden(cls, passes):
    torch.manual_seed(1)
    ffn = cls(24, 12, dropout=0.5)
    x = torch.randn(8, 25, 24)
    if passes:
        expect_dropout_on_hidden(ffn, x, 0.5, "ffn")
    else:
        with pytest.raises(AssertionError, match="training mode"):
            expect_dropout_on_hidden(ffn, x, 0.5, "ffn")


def test_each_layer_norm_mistake_is_the_mistake_it_names():
    x = (torch.randn(3, 4, 6) * 2 + 1).double()
    w, b = torch.rand(6, dtype=torch.float64) + 0.5, torch.randn(6, dtype=torch.float64)
    m = layer_norm_mistakes(x, w, b, eps=0.1)
    right = F.layer_norm(x, (6,), w, b, eps=0.1)
    torch.testing.assert_close(named(m, "the weight (gamma) is not applied"), F.layer_norm(x, (6,), None, b, eps=0.1))
    torch.testing.assert_close(named(m, "the bias (beta) is not added"), F.layer_norm(x, (6,), w, None, eps=0.1))
    torch.testing.assert_close(named(m, "neither the weight"), F.layer_norm(x, (6,), eps=0.1))
    torch.testing.assert_close(named(m, "the bias is multiplied by the weight"), (F.layer_norm(x, (6,), eps=0.1) + b) * w)
    torch.testing.assert_close(named(m, "the eps argument is ignored"), F.layer_norm(x, (6,), w, b))
    torch.testing.assert_close(named(m, "the statistics are taken over the whole tensor"),
                               F.layer_norm(x, x.shape, eps=0.1) * w + b)
    by_batch = F.layer_norm(x.movedim(0, -1), (3,), eps=0.1).movedim(-1, 0) * w + b
    torch.testing.assert_close(named(m, "the statistics are taken over dim 0"), by_batch)
    centred = x - x.mean(-1, keepdim=True)
    torch.testing.assert_close(named(m, "the variance divides by d - 1"),
                               centred / (centred.pow(2).sum(-1, keepdim=True) / 5 + 0.1).sqrt() * w + b)
    torch.testing.assert_close(named(m, "eps is added outside the square root"),
                               centred / (x.std(-1, correction=0, keepdim=True) + 0.1) * w + b)
    torch.testing.assert_close(named(m, "the mean is not subtracted"),
                               x / (centred.pow(2).mean(-1, keepdim=True) + 0.1).sqrt() * w + b)
    for why, wrong in m.items():
        assert wrong.shape == x.shape and not torch.allclose(wrong, right, atol=1e-4), why
    # what cannot happen is not listed: no batch axis, one feature, the default eps
    assert not any(word in why for why in layer_norm_mistakes(torch.randn(6)) for word in ("dim 0", "whole", "eps arg"))
    assert not any("d - 1" in why for why in layer_norm_mistakes(torch.randn(4, 1)))


def test_each_feedforward_mistake_is_the_mistake_it_names():
    ffn = FeedForward(6, 10).double().eval()
    x = torch.randn(2, 3, 6, dtype=torch.float64)
    torch.testing.assert_close(feedforward_expected(ffn, x), ffn(x))
    m = feedforward_mistakes(ffn, x)
    torch.testing.assert_close(named(m, "the activation is GELU"), ffn.linear2(F.gelu(ffn.linear1(x))))
    torch.testing.assert_close(named(m, "there is no activation"), ffn.linear2(ffn.linear1(x)))
    torch.testing.assert_close(named(m, "a ReLU is applied after linear2 as well"), torch.relu(ffn(x)))
    no_bias = F.linear(torch.relu(F.linear(x, ffn.linear1.weight)), ffn.linear2.weight)
    torch.testing.assert_close(named(m, "the biases of the linear layers are not used"), no_bias)


@pytest.mark.parametrize("norm_first", [True, False])
def test_pytorch_encoder_layer_is_two_residual_sublayers(norm_first):
    layer, attention, feed_forward = pytorch_encoder_layer(8, 2, 16, norm_first, seed=3)
    assert not layer.training and isinstance(layer, nn.TransformerEncoderLayer)
    assert not torch.allclose(layer.norm1.weight, torch.ones(8))  # random norms, so that their place shows
    x = torch.randn(2, 5, 8)
    first, second = ResidualSublayer(8, norm_first=norm_first), ResidualSublayer(8, norm_first=norm_first)
    load_norm(first.norm, layer.norm1)
    load_norm(second.norm, layer.norm2)
    assert torch.equal(second.norm.bias, layer.norm2.bias)
    with torch.no_grad():
        torch.testing.assert_close(second(first(x, attention), feed_forward), layer(x), atol=1e-5, rtol=1e-4)
    again, _, _ = pytorch_encoder_layer(8, 2, 16, norm_first, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(layer.parameters(), again.parameters()))


def test_residual_mistakes_are_the_mistakes_they_name():
    x = torch.randn(2, 4, 8)
    pre, attention, feed_forward = pytorch_encoder_layer(8, 2, 16, True, seed=1)
    post, _, _ = pytorch_encoder_layer(8, 2, 16, False, seed=1)  # the same weights, the other order
    sublayers = [(attention, pre.norm1), (feed_forward, pre.norm2)]
    with torch.no_grad():
        torch.testing.assert_close(named(residual_mistakes(x, sublayers, True), "pre-LN and post-LN are swapped"),
                                   post(x), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(named(residual_mistakes(x, sublayers, False), "pre-LN and post-LN are swapped"),
                                   pre(x), atol=1e-5, rtol=1e-4)
        one = [(feed_forward, pre.norm1)]
        m = residual_mistakes(x, one, True)
        torch.testing.assert_close(named(m, "the residual is missing"), feed_forward(pre.norm1(x)))
        torch.testing.assert_close(named(m, "the LayerNorm is skipped"), x + feed_forward(x))
        m = residual_mistakes(x, one, False)
        torch.testing.assert_close(named(m, "the residual is missing"), pre.norm1(feed_forward(x)))
        torch.testing.assert_close(named(m, "the sublayer reads norm(x) as well"), pre.norm1(x + feed_forward(pre.norm1(x))))


def test_expect_dropout_on_hidden_messages_name_the_fault():
    class Unscaled(FeedForward):  # drops units but does not scale the kept ones
        def forward(self, x):
            h = torch.relu(self.linear1(x))
            return self.linear2(h * (torch.rand_like(h) > 0.5) if self.training else h)

    class TooLittle(FeedForward):  # scales by 1 / (1 - p) but drops only a tenth of the units
        def forward(self, x):
            h = torch.relu(self.linear1(x))
            return self.linear2(h * (torch.rand_like(h) > 0.1) / 0.5 if self.training else h)

    x = torch.randn(8, 25, 24)
    with pytest.raises(AssertionError, match=r"scaled by 1 / \(1 - p\)"):
        expect_dropout_on_hidden(Unscaled(24, 12, dropout=0.5), x, 0.5, "ffn")
    with pytest.raises(AssertionError, match=r"about 50% of the hidden units should be zeroed, but 1\d% were"):
        expect_dropout_on_hidden(TooLittle(24, 12, dropout=0.5), x, 0.5, "ffn")
    with pytest.raises(ValueError, match="d_model >= d_ff"):
        expect_dropout_on_hidden(FeedForward(4, 12, dropout=0.5), torch.randn(2, 4), 0.5, "ffn")


def test_forbid_reference_catches_a_direct_call_and_a_wrapper():
    x = torch.randn(3, 8)

    def wrapper(x):
        return FeedForward(8, 4)(x) * 1.0

    for name, run in [("direct", lambda: LayerNorm(8)(x)), ("wrapper", lambda: wrapper(x))]:
        with pytest.raises(AssertionError, match="calls the course's reference code"):
            with forbid_reference(name):
                run()
    with pytest.raises(AssertionError, match="built-in normalisation"):
        with own_code_only("LayerNorm"):
            F.layer_norm(x, (8,))
    with forbid_builtin_norms("a sublayer"):
        nn.Linear(8, 8)(x).relu()
