"""llm_foundations.training: the learning-rate schedule, the loss, and the training loop."""

import math

import pytest
import torch
from torch import nn

from llm_foundations.training import learning_rate, sequence_loss, train


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread only adds waiting on a busy machine
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def test_learning_rate_warms_up_linearly():
    rates = [learning_rate(step, peak=1.0, warmup=10, total=100) for step in range(10)]
    assert rates == pytest.approx([(s + 1) / 10 for s in range(10)])


def test_learning_rate_decays_as_a_cosine_to_the_floor():
    peak, floor, warmup, total = 3e-3, 3e-4, 20, 220
    rates = [learning_rate(step, peak, warmup, total, floor) for step in range(warmup, total + 1)]
    assert rates[0] == pytest.approx(peak)
    assert all(a >= b for a, b in zip(rates, rates[1:])), "the decay must never go up"
    assert rates[len(rates) // 2] == pytest.approx((peak + floor) / 2)  # half-way: the cosine's midpoint
    assert rates[-1] == pytest.approx(floor)
    assert learning_rate(total + 50, peak, warmup, total, floor) == pytest.approx(floor)  # stays there
    assert learning_rate(120, 1.0, 20, 220) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def test_learning_rate_without_warmup_after_step_zero():
    assert learning_rate(0, 1.0, warmup=1, total=10) == pytest.approx(1.0)
    assert learning_rate(0, 1.0, warmup=0, total=10) == pytest.approx(1.0)


def test_sequence_loss_is_the_mean_token_cross_entropy_and_skips_ignored_targets():
    logits, targets = torch.randn(2, 5, 7), torch.randint(0, 7, (2, 5))
    expected = nn.functional.cross_entropy(logits.reshape(10, 7), targets.reshape(10))
    torch.testing.assert_close(sequence_loss(logits, targets), expected)
    masked = torch.cat([targets[:1], torch.full((1, 5), -100)])  # the second row carries no loss
    torch.testing.assert_close(sequence_loss(logits, masked), nn.functional.cross_entropy(logits[0], targets[0]))
    threes = torch.cat([targets[:1], torch.full((1, 5), 3)])
    torch.testing.assert_close(sequence_loss(logits, threes, ignore_index=3),
                               nn.functional.cross_entropy(logits[0], targets[0], ignore_index=3))


def _toy_problem():
    """Classify 2-D points by the sign of x0 * x1 (XOR-like): a small MLP learns it, a line cannot."""
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
    generator = torch.Generator().manual_seed(0)

    def batches():
        while True:
            x = torch.randn(64, 2, generator=generator)
            yield x, (x[:, 0] * x[:, 1] > 0).long()

    def loss_fn(model, batch):
        x, y = batch
        return nn.functional.cross_entropy(model(x), y)

    return model, loss_fn, batches()


def test_train_reduces_the_loss_and_leaves_the_model_training():
    model, loss_fn, batches = _toy_problem()
    losses = train(model, loss_fn, batches, steps=100, lr=2e-2, warmup=10, progress=False)
    assert len(losses) == 100 and all(isinstance(x, float) for x in losses)
    assert sum(losses[-30:]) / 30 < 0.5 * sum(losses[:10]) / 10
    assert model.training


def test_train_stops_at_max_seconds():
    model, loss_fn, batches = _toy_problem()
    losses = train(model, loss_fn, batches, steps=10_000, max_seconds=0.0, progress=False)
    assert len(losses) == 1, "with no time left the loop must stop after the step it is in"
    losses = train(model, loss_fn, batches, steps=1_000_000, max_seconds=0.3, progress=False)
    assert 1 <= len(losses) < 1_000_000


def test_train_does_not_decay_biases():
    model, loss_fn, batches = _toy_problem()
    frozen = {name: p.detach().clone() for name, p in model.named_parameters()}

    def zero_loss(model, batch):  # a zero gradient everywhere: only weight decay moves anything
        return sum(p.sum() for p in model.parameters()) * 0.0

    train(model, zero_loss, batches, steps=5, lr=0.1, warmup=1, weight_decay=0.5, progress=False)
    for name, p in model.named_parameters():
        if p.dim() < 2:
            assert torch.equal(p, frozen[name]), f"{name} (one dimension) must not be decayed"
        else:
            assert p.abs().sum() < frozen[name].abs().sum(), f"{name} (a matrix) must be decayed"
