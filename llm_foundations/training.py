"""A small training loop for the models of chapter 10: AdamW, warm-up then cosine decay, progress bar.

It does what every training loop of the course needs and nothing else: it moves batches to
the model's device, uses mixed precision (bfloat16 autocast) on a CUDA GPU, clips the gradient
norm, follows :func:`learning_rate` and records the loss of every step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["learning_rate", "sequence_loss", "train"]


def learning_rate(step: int, peak: float, warmup: int, total: int, floor: float = 0.0) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine decay to ``floor`` at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


def sequence_loss(logits: Tensor, targets: Tensor, ignore_index: int = -100) -> Tensor:
    """Mean next-token cross-entropy of ``logits`` ``(B, L, V)`` against ``targets`` ``(B, L)``."""
    return nn.functional.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=ignore_index)


def train(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, tuple[Tensor, ...]], Tensor],
    batches: Iterator[tuple[Tensor, ...]],
    steps: int,
    lr: float = 1e-3,
    warmup: int = 100,
    min_lr: float | None = None,
    weight_decay: float = 0.01,
    grad_clip: float = 1.0,
    betas: tuple[float, float] = (0.9, 0.98),
    max_seconds: float | None = None,
    progress: bool = True,
    desc: str = "training",
) -> list[float]:
    """Train ``model`` for ``steps`` steps (or until ``max_seconds``) and return the loss of each step.

    Args:
        model: on the device to train on; left in train mode.
        loss_fn: ``loss_fn(model, batch)`` -> scalar loss, the batch already on the model's device.
        batches: yields tuples of tensors.
        steps: optimisation steps (the learning-rate schedule's length).
        lr, warmup, min_lr: :func:`learning_rate`'s peak, warm-up and floor (default ``lr / 10``).
        weight_decay: AdamW's decoupled weight decay, applied to matrices only (not to biases,
            LayerNorm gains or positions tables of one dimension).
        grad_clip: maximum gradient norm.
        betas: AdamW's betas.
        max_seconds: stop early after this many seconds of training (a time budget).
        progress: show a tqdm progress bar with the running loss.
    """
    device = next(model.parameters()).device
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas)
    floor = lr / 10 if min_lr is None else min_lr
    use_autocast = device.type == "cuda"
    model.train()
    losses: list[float] = []
    started = time.perf_counter()
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=1.0)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, lr, warmup, steps, floor)
        batch = tuple(t.to(device, non_blocking=True) for t in next(batches))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_autocast):
            loss = loss_fn(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            break
    bar.close()
    return losses
