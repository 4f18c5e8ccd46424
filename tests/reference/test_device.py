import random

import numpy as np
import pytest
import torch

from llm_foundations import get_device, set_seed


def test_get_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")


def test_get_device_explicit_choice_and_errors(monkeypatch):
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="not available"):
        get_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        get_device("tpu")


def test_set_seed_makes_all_generators_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    gen = set_seed(123)
    first, first_gen = draw(), torch.rand(1, generator=gen).item()
    gen = set_seed(123)
    assert draw() == first
    assert torch.rand(1, generator=gen).item() == first_gen
    with pytest.raises(TypeError):
        set_seed(1.5)
