"""Generation with and without the KV cache: the same tokens, and how much time the cache saves.

    .venv/bin/python benchmarks/kv_cache.py [--device cpu] [--quick]

A :class:`~llm_foundations.model.GPT` of nanoGPT's small CPU size (4 layers, 4 heads, 128 dims;
random weights: the timing does not depend on what the model learned) continues a one-token
prompt by 256, 512 and 1,024 sampled tokens, once with ``use_cache=True`` and once without,
from the same seeded generator. Without the cache every step runs the whole sequence through
the model again (quadratic work); with it only the new token (linear work).
The target: identical tokens, and at least 3x faster with the cache at 512 new tokens.
Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse

import torch

from common import add_common_arguments, clock, setup, synchronize, verdict

from llm_foundations.model import GPT

TARGET, TARGET_TOKENS = 3.0, 512


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, "a small model and 16, 32 new tokens: checks the script runs")
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024], help="new tokens to generate")
    parser.add_argument("--batch", type=int, default=1, help="sequences generated at once")
    args = parser.parse_args()
    device = setup(args)
    lengths = [16, 32] if args.quick else args.lengths
    sizes = dict(d_model=32, n_heads=2, d_ff=64, n_layers=2) if args.quick else \
        dict(d_model=128, n_heads=4, d_ff=512, n_layers=4)
    torch.manual_seed(0)
    model = GPT(vocab_size=65, max_len=max(lengths) + 1, **sizes).to(device).eval()
    prompt = torch.zeros(args.batch, 1, dtype=torch.long, device=device)
    timer = clock(args)
    model.generate(prompt, 8, generator=torch.Generator(device).manual_seed(0))  # warm-up
    print(f"GPT {sizes}, batch {args.batch}; {args.clock} seconds to generate")
    print(f"{'new tokens':>10} {'cached':>9} {'uncached':>9} {'speed-up':>9} {'same tokens':>11}")
    results = {}
    for length in lengths:
        seconds, tokens = {}, {}
        for use_cache in (True, False):
            generator = torch.Generator(device).manual_seed(1)
            synchronize(device)
            started = timer()
            tokens[use_cache] = model.generate(prompt, length, generator=generator, use_cache=use_cache)
            synchronize(device)
            seconds[use_cache] = timer() - started
        same = torch.equal(tokens[True], tokens[False])
        results[length] = (seconds[False] / seconds[True], same)
        print(f"{length:>10} {seconds[True]:9.2f} {seconds[False]:9.2f} {results[length][0]:8.1f}x {str(same):>11}")
    identical = all(same for _, same in results.values())
    print(f"identical tokens with and without the cache: {verdict(identical)}")
    if TARGET_TOKENS in results:
        speed_up = results[TARGET_TOKENS][0]
        print(f"speed-up at {TARGET_TOKENS} new tokens {speed_up:.1f}x >= {TARGET:g}x: {verdict(speed_up >= TARGET)}")


if __name__ == "__main__":
    main()
