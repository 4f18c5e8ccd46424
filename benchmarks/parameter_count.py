"""Parameter count: ``Transformer(..., share_embeddings=True)`` built and counted, against the closed form.

    .venv/bin/python benchmarks/parameter_count.py [--quick]

The closed form is chapter 1's :func:`~llm_foundations.overview.transformer_parameter_count`;
the sizes include the paper's base and big models (Vaswani et al., 2017, table 3: a shared
source–target vocabulary of 37,000 BPE tokens; the paper reports 65M and 213M parameters).
Not a test: it prints a table and PASS when every count agrees.
"""

from __future__ import annotations

import argparse

import torch

from common import add_common_arguments, setup, verdict

from llm_foundations.model import Transformer
from llm_foundations.overview import transformer_parameter_count

# (name, vocab_size, d_model, n_heads, d_ff, n_layers)
SIZES = [
    ("tiny", 50, 16, 2, 32, 1),
    ("dates", 60, 64, 4, 256, 2),
    ("odd heads", 101, 48, 3, 100, 3),
    ("base", 37000, 512, 8, 2048, 6),
    ("big", 37000, 1024, 16, 4096, 6),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, "only the small sizes (skips building the paper's base and big models)")
    args = parser.parse_args()
    setup(args)  # counting happens on the CPU whatever the device
    sizes = [s for s in SIZES if s[1] < 1000] if args.quick else SIZES
    print(f"{'model':>10} {'V':>6} {'d_model':>7} {'heads':>5} {'d_ff':>5} {'layers':>6} {'built':>12} {'formula':>12}")
    all_equal = True
    for name, vocab, d_model, heads, d_ff, layers in sizes:
        with torch.device("meta"):  # shapes only: the big model's 213M parameters need no memory
            model = Transformer(vocab, vocab, d_model, heads, d_ff, layers, share_embeddings=True)
        built = sum(p.numel() for p in model.parameters() if p.requires_grad)  # a tied matrix counts once
        formula = transformer_parameter_count(vocab, d_model, heads, d_ff, layers)
        all_equal &= built == formula
        print(f"{name:>10} {vocab:>6} {d_model:>7} {heads:>5} {d_ff:>5} {layers:>6} {built:>12,} {formula:>12,}"
              f"  {'=' if built == formula else '!='}")
    print(f"built == transformer_parameter_count for every size: {verdict(all_equal)}")


if __name__ == "__main__":
    main()
