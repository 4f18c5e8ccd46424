"""A character-level GPT at nanoGPT's CPU "shakespeare_char" settings: validation loss and wall time.

    .venv/bin/python benchmarks/gpt_char.py --corpus input.txt [--device cpu] [--quick]

The settings are those nanoGPT's README gives for a CPU (a laptop): 4 layers, 4 heads,
128 dims (feed-forward 512, GELU), no biases, context 64, batch 12, 2,000 iterations, no dropout; AdamW with
betas (0.9, 0.99) and weight decay 0.1, gradient clipping at 1.0; learning rate 1e-3 after 100
warm-up iterations, cosine decay to 1e-4 at iteration 2,000; the first 90% of the text trains,
the last 10% validates. The published result is a validation loss of about 1.88 after about
3 minutes. The model is :class:`llm_foundations.model.GPT` (pre-LN, tied output layer, GPT-2's
initialisation, ``bias=False`` as nanoGPT) with rotary positions (``--positional rope``, the
default: chapter 3's RoPE) or nanoGPT's learned table (``--positional learned``), trained by
:func:`llm_foundations.training.train`. To compare on one machine, run nanoGPT's own command
(its README's CPU line) right before or after this script, with the same number of threads.

On a machine shared with other work, ``--threads 1 --clock cpu`` compares CPU seconds instead
of wall time: what one idle core would take. The validation loss here is the mean over *every* non-overlapping 64-character block of the
validation text (nanoGPT averages 20 random batches: the same quantity, with more noise).

``--corpus`` is the tiny Shakespeare file (1,115,394 characters). This benchmark never
downloads it. Without ``--corpus`` it reads the local copy
:func:`llm_foundations.text.find_local_corpus` finds (``$LLM_FOUNDATIONS_CORPUS``, the download
cache, ``shared/data/tinyshakespeare.txt``), when there is one, else the course's offline
corpus, and then says that the number cannot be compared with nanoGPT's.
Not a test: the time depends on the machine.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from common import add_common_arguments, clock, setup, verdict

from llm_foundations import set_seed
from llm_foundations.model import GPT
from llm_foundations.tokenizers import CharTokenizer
from llm_foundations.training import sequence_loss, train

PUBLISHED_LOSS, PUBLISHED_SECONDS = 1.88, 180.0
SHAKESPEARE_CHARS, SHAKESPEARE_VOCAB = 1_115_394, 65


def load_text(path: str | None) -> tuple[str, str]:
    """The text and where it came from; never uses the network."""
    if path:
        return Path(path).read_text(encoding="utf-8"), path
    from llm_foundations.text import find_local_corpus, offline_corpus

    local = find_local_corpus()
    if local is not None:
        return local.read_text(encoding="utf-8"), str(local)
    return offline_corpus(), "llm_foundations.text.offline_corpus(), the offline corpus"


def random_blocks(data: torch.Tensor, block: int, batch: int, generator: torch.Generator):
    """Endless ``(x, y)`` batches of random windows; ``y`` is ``x`` shifted by one character."""
    offsets = torch.arange(block + 1)  # (block + 1,)
    while True:
        starts = torch.randint(len(data) - block, (batch, 1), generator=generator)  # (batch, 1)
        windows = data[starts + offsets]  # (batch, block + 1)
        yield windows[:, :-1], windows[:, 1:]


@torch.no_grad()
def mean_loss(model: GPT, data: torch.Tensor, block: int, device: torch.device, batch: int = 256) -> float:
    """Mean next-character loss over every non-overlapping ``block`` of ``data``."""
    model.eval()
    n = (len(data) - 1) // block
    x = data[: n * block].view(n, block)  # (n, block)
    y = data[1 : n * block + 1].view(n, block)
    total = 0.0
    for start in range(0, n, batch):
        xb, yb = x[start : start + batch].to(device), y[start : start + batch].to(device)
        total += sequence_loss(model(xb), yb).item() * len(xb)
    model.train()
    return total / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, "a tiny model for 20 iterations on 50,000 characters: checks the script runs")
    parser.add_argument("--corpus", default=None, help="path of the text file (tiny Shakespeare)")
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--positional", choices=("rope", "learned"), default="rope",
                        help="rotary positions (chapter 3; default) or a learned table (nanoGPT's and GPT-2's)")
    args = parser.parse_args()
    device = setup(args)
    text, source = load_text(args.corpus)
    comparable = (len(text) == SHAKESPEARE_CHARS and len(set(text)) == SHAKESPEARE_VOCAB and not args.quick
                  and args.iters == 2000)
    if args.quick:
        text = text[:50_000]
    tokenizer = CharTokenizer(text)
    data = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    split = int(0.9 * len(data))
    train_data, val_data = data[:split], data[split:]
    sizes = dict(d_model=32, n_heads=2, d_ff=64, n_layers=1) if args.quick else \
        dict(d_model=128, n_heads=4, d_ff=512, n_layers=4)
    iters = 20 if args.quick else args.iters
    block, batch = 64, 12
    print(f"corpus: {source}, {len(text):,} characters, {tokenizer.vocab_size} distinct")
    if not comparable:
        print("!" * 100)
        print("!!! NOT the tiny Shakespeare file at nanoGPT's settings: the loss below cannot be compared with "
              "nanoGPT's 1.88. Pass --corpus PATH.")
        print("!" * 100)

    set_seed(args.seed)
    model = GPT(tokenizer.vocab_size, max_len=block, dropout=0.0, bias=False, activation="gelu",
                positional=args.positional, **sizes).to(device)
    initial_loss = mean_loss(model, val_data[: 64 * 256 + 1], block, device)  # about ln V with GPT-2's initialisation
    batches = random_blocks(train_data, block, batch, torch.Generator().manual_seed(args.seed))

    def loss_fn(model: GPT, xy: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = xy
        return sequence_loss(model(x), y)

    timer = clock(args)  # what the comparison with nanoGPT's time counts: wall, or CPU seconds with --clock cpu
    started, wall_started, cpu_started = timer(), time.perf_counter(), time.process_time()
    losses = train(model, loss_fn, batches, iters, lr=1e-3, warmup=min(100, iters // 5), min_lr=1e-4,
                   weight_decay=0.1, grad_clip=1.0, betas=(0.9, 0.99), progress=not args.quick, desc="gpt")
    train_seconds, train_cpu = time.perf_counter() - wall_started, time.process_time() - cpu_started
    val_loss = mean_loss(model, val_data, block, device)
    total_seconds = timer() - started  # training and the validation pass
    train_loss = mean_loss(model, train_data[: len(val_data)], block, device)  # a same-size slice, for the gap

    n_params = sum(p.numel() for p in model.parameters())
    print(f"GPT {sizes}, {args.positional} positions ({n_params:,} parameters), context {block}, batch {batch}, {len(losses)} iterations")
    print(f"initial loss {initial_loss:.3f} (ln {tokenizer.vocab_size} = {math.log(tokenizer.vocab_size):.3f})")
    print(f"{'':>16} {'val loss':>9} {'seconds':>8}  ({args.clock} time of training + validation)")
    print(f"{'nanoGPT (README)':>16} {PUBLISHED_LOSS:9.2f} {PUBLISHED_SECONDS:8.0f}")
    print(f"{'this run':>16} {val_loss:9.3f} {total_seconds:8.1f}   (training {train_seconds:.1f} s wall, "
          f"{train_cpu:.1f} s CPU; train-slice loss {train_loss:.3f})")
    if comparable:
        print(f"val loss <= {PUBLISHED_LOSS} in <= {PUBLISHED_SECONDS:.0f} s: "
              f"{verdict(val_loss <= PUBLISHED_LOSS and total_seconds <= PUBLISHED_SECONDS)} "
              f"(loss {verdict(val_loss <= PUBLISHED_LOSS)}, time {verdict(total_seconds <= PUBLISHED_SECONDS)})")
    else:
        print("not compared with nanoGPT: another corpus" + (" (--quick)" if args.quick else ""))


if __name__ == "__main__":
    main()
