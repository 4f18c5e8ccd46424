"""Each benchmark script runs end to end with --quick (tiny settings; the timings are not judged here).

The scripts run inside this process (``runpy``), so PyTorch is imported once, not once per
script: the five quick runs then take a few seconds instead of half a minute.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

# script -> lines its --quick output must contain (checks that do not depend on the machine's speed)
EXPECTED = {
    "parameter_count.py": ["built == transformer_parameter_count for every size: PASS"],
    "attention.py": ["ref/math", "reference within 3x of the math path"],
    "kv_cache.py": ["identical tokens with and without the cache: PASS"],
    "date_model.py": ["exact match", "quick run: the targets are not checked"],
    "gpt_char.py": ["val loss", "not compared with nanoGPT"],
}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_benchmark_runs_quickly(script, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import their shared `common` module
    monkeypatch.setattr(sys, "argv", [script, "--quick", "--device", "cpu", "--threads", "1"])
    threads = torch.get_num_threads()
    try:
        runpy.run_path(str(BENCHMARKS / script), run_name="__main__")
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert out.startswith("machine: ")
    for line in EXPECTED[script]:
        assert line in out, f"{script} --quick did not print {line!r}:\n{out}"


def test_every_benchmark_script_is_smoke_tested():
    scripts = {p.name for p in BENCHMARKS.glob("*.py")} - {"common.py", "grading.py"}
    assert scripts == set(EXPECTED)
