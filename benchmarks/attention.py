"""The course's reference attention against ``F.scaled_dot_product_attention``, side by side.

    .venv/bin/python benchmarks/attention.py [--device cpu] [--backward] [--quick]

Three ways to compute the same attention, each timed at several sizes ``(B, H, L, d_head)``,
with no mask and with a causal mask:

- ``reference``: :func:`llm_foundations.attention.scaled_dot_product_attention`, written to be
  read (it also returns the weights);
- ``math``: PyTorch's ``F.scaled_dot_product_attention`` held to its plain "math" backend
  (``sdpa_kernel(SDPBackend.MATH)``): the same computation in C++, no fused kernel;
- ``fastest``: ``F.scaled_dot_product_attention`` free to pick its fused kernel (flash or
  memory-efficient attention where the device has one).

The target: the reference stays within 3x of the math path. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from common import add_common_arguments, clock, setup, time_side_by_side, verdict

from llm_foundations.attention import scaled_dot_product_attention

TARGET = 3.0
SIZES = [(8, 8, 64, 64), (8, 8, 256, 64), (4, 8, 512, 64), (2, 8, 1024, 64)]
QUICK_SIZES = [(2, 4, 32, 16), (2, 4, 64, 16)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, "two small sizes, one round: checks the script runs")
    parser.add_argument("--backward", action="store_true", help="time forward + backward instead of forward only")
    parser.add_argument("--dtype", default=None, help="float32 (CPU default) or bfloat16 (GPU default)")
    args = parser.parse_args()
    device = setup(args)
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    sizes, rounds = (QUICK_SIZES, 1) if args.quick else (SIZES, 5)
    print(f"{'forward + backward' if args.backward else 'forward'}, {dtype}, {args.clock} seconds per call: "
          f"best of {rounds} rounds")
    print(f"{'B, H, L, d_head':>18} {'mask':>6} {'reference':>10} {'math':>10} {'fastest':>10} "
          f"{'ref/math':>9} {'ref/fastest':>11}")
    worst = 0.0
    for size in sizes:
        q, k, v = (torch.randn(*size, device=device, dtype=dtype, requires_grad=args.backward) for _ in range(3))
        length = size[2]
        for mask in (None, torch.ones(length, length, dtype=torch.bool, device=device).tril()):

            def reference():
                return scaled_dot_product_attention(q, k, v, mask)[0]

            def pytorch():
                return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

            def math_path():
                with sdpa_kernel(SDPBackend.MATH):
                    return pytorch()

            candidates = {"reference": reference, "math": math_path, "fastest": pytorch}
            if args.backward:
                candidates = {name: _with_backward(fn) for name, fn in candidates.items()}
            torch.testing.assert_close(reference().float(), pytorch().float(), atol=2e-2, rtol=2e-2)
            seconds = time_side_by_side(candidates, device, rounds=rounds, timer=clock(args))
            ratio = seconds["reference"] / seconds["math"]
            worst = max(worst, ratio)
            print(f"{str(size)[1:-1]:>18} {'causal' if mask is not None else 'none':>6} "
                  f"{seconds['reference']:10.2e} {seconds['math']:10.2e} {seconds['fastest']:10.2e} "
                  f"{ratio:8.2f}x {seconds['reference'] / seconds['fastest']:10.2f}x")
    print(f"reference within {TARGET:g}x of the math path at every size (worst {worst:.2f}x): {verdict(worst <= TARGET)}")


def _with_backward(forward):
    def run():
        forward().sum().backward()
    return run


if __name__ == "__main__":
    main()
