"""GPT-2's published weights in the course's own :class:`~llm_foundations.model.GPT` (chapter 10).

GPT-2 (Radford et al., 2019) is the course's decoder-only model at a larger size: learned
positions, pre-LN blocks, GELU, a final LayerNorm and an output layer tied to the token
embedding. Only the storage differs, and :func:`gpt_from_huggingface` translates it:

- Hugging Face keeps each projection as a ``Conv1D`` whose weight is ``(in, out)`` and computes
  ``x @ W + b``; an ``nn.Linear`` keeps ``(out, in)`` and computes ``x @ W.T + b``: every matrix is
  transposed;
- the query, key and value projections are one ``(d, 3d)`` matrix ``c_attn``, split here into
  the course's ``w_q``, ``w_k``, ``w_v`` (in that order, each ``d`` output features);
- the activation is GELU's tanh approximation (``"gelu_new"``), LayerNorm's epsilon ``1e-5``;
- ``lm_head`` is the token embedding itself (tied), as in the course's model.

:func:`load_gpt2` downloads the weights and GPT-2's tokenizer files with ``huggingface_hub``
(where there is a network: Colab) and returns the model and a
:class:`~llm_foundations.tokenizers.ByteLevelBPE` that reads them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import torch
from torch import Tensor

from llm_foundations.model import GPT

__all__ = ["gpt_from_huggingface", "load_gpt2"]

_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}


def _strip(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The weights under GPT2Model's names (``wte.weight``, ``h.0.attn.c_attn.weight``, ...).

    A ``GPT2LMHeadModel`` prefixes them with ``transformer.``; the files on the Hub often do not.
    The causal-mask buffers some versions save (``h.N.attn.bias``, ``h.N.attn.masked_bias``) are
    not weights and are dropped.
    """
    stripped = {}
    for key, value in state.items():
        key = key.removeprefix("transformer.")
        if re.fullmatch(r"h\.\d+\.attn\.(bias|masked_bias)", key):
            continue
        stripped[key] = value
    return stripped


@torch.no_grad()
def gpt_from_huggingface(model_or_state_dict, n_heads: int | None = None, norm_eps: float | None = None,
                         activation: str | None = None) -> GPT:
    """The course :class:`~llm_foundations.model.GPT` holding the weights of a Hugging Face GPT-2.

    Args:
        model_or_state_dict: a ``transformers.GPT2LMHeadModel`` (or ``GPT2Model``), or its state
            dict (with or without the ``transformer.`` prefix).
        n_heads: attention heads; read from the model's config, else ``d_model // 64`` (every
            published GPT-2 has heads of 64 features: 12 for ``gpt2``, 16, 20, 25 for the larger).
        norm_eps: the LayerNorms' epsilon (config ``layer_norm_epsilon``; GPT-2: 1e-5).
        activation: the course name of the activation (from config ``activation_function``;
            GPT-2: ``"gelu_new"``, the tanh approximation: ``"gelu_tanh"``).

    Returns:
        A GPT in eval mode, on the CPU, in float32, whose logits equal the Hugging Face model's.

    Raises:
        ValueError: the weights are not GPT-2's layout, or the output layer is not tied.
    """
    config = getattr(model_or_state_dict, "config", None)
    state = model_or_state_dict.state_dict() if hasattr(model_or_state_dict, "state_dict") else model_or_state_dict
    state = {k: v.detach().to("cpu", torch.float32) for k, v in _strip(state).items()}
    if "wte.weight" not in state or "wpe.weight" not in state:
        raise ValueError(f"not a GPT-2 state dict: no wte.weight / wpe.weight among {sorted(state)[:6]}...")
    vocab_size, d_model = state["wte.weight"].shape
    max_len = state["wpe.weight"].size(0)
    n_layers = 1 + max((int(k.split(".")[1]) for k in state if k.startswith("h.")), default=-1)
    d_ff = state["h.0.mlp.c_fc.weight"].size(1) if n_layers else 4 * d_model
    if config is not None:
        n_heads = n_heads or config.n_head
        norm_eps = config.layer_norm_epsilon if norm_eps is None else norm_eps
        activation = activation or _ACTIVATIONS.get(config.activation_function)
        if activation is None:
            raise ValueError(f"activation {config.activation_function!r} has no course equivalent")
    n_heads = n_heads or max(1, d_model // 64)
    norm_eps = 1e-5 if norm_eps is None else norm_eps
    activation = activation or "gelu_tanh"
    head = state.pop("lm_head.weight", None)
    if head is not None and not torch.equal(head, state["wte.weight"]):
        raise ValueError("lm_head.weight differs from wte.weight: the course GPT ties its output layer to the embedding")

    gpt = GPT(vocab_size, d_model, n_heads, d_ff, n_layers, max_len, dropout=0.0, activation=activation,
              bias=True, norm_eps=norm_eps)
    ours = {"embedding.weight": state.pop("wte.weight"), "positions.weight": state.pop("wpe.weight"),
            "norm.weight": state.pop("ln_f.weight"), "norm.bias": state.pop("ln_f.bias")}
    for i in range(n_layers):
        def take(name: str) -> Tensor:
            return state.pop(f"h.{i}.{name}")

        q, k, v = take("attn.c_attn.weight").t().chunk(3, dim=0)  # Conv1D (d, 3d) -> three Linear (d, d)
        bq, bk, bv = take("attn.c_attn.bias").chunk(3)
        block = f"layers.{i}."
        ours |= {
            block + "sublayers.0.norm.weight": take("ln_1.weight"), block + "sublayers.0.norm.bias": take("ln_1.bias"),
            block + "self_attn.w_q.weight": q, block + "self_attn.w_q.bias": bq,
            block + "self_attn.w_k.weight": k, block + "self_attn.w_k.bias": bk,
            block + "self_attn.w_v.weight": v, block + "self_attn.w_v.bias": bv,
            block + "self_attn.w_o.weight": take("attn.c_proj.weight").t(), block + "self_attn.w_o.bias": take("attn.c_proj.bias"),
            block + "sublayers.1.norm.weight": take("ln_2.weight"), block + "sublayers.1.norm.bias": take("ln_2.bias"),
            block + "ffn.linear1.weight": take("mlp.c_fc.weight").t(), block + "ffn.linear1.bias": take("mlp.c_fc.bias"),
            block + "ffn.linear2.weight": take("mlp.c_proj.weight").t(), block + "ffn.linear2.bias": take("mlp.c_proj.bias"),
        }
    if state:
        raise ValueError(f"weights the course GPT has no place for: {sorted(state)}")
    ours["head.weight"] = ours["embedding.weight"]
    gpt.load_state_dict({k: v.contiguous() for k, v in ours.items()}, strict=True)
    return gpt.eval()


def load_gpt2(name: str = "gpt2"):
    """Download a published GPT-2 (``"gpt2"``, ``"gpt2-medium"``, ``"gpt2-large"``, ``"gpt2-xl"``).

    Needs a network and the ``huggingface_hub`` and ``safetensors`` packages (both on Colab);
    the files are cached by ``huggingface_hub`` (``~/.cache/huggingface``) for next time.

    Returns:
        ``(gpt, tokenizer)``: the course :class:`~llm_foundations.model.GPT` with the weights
        (eval mode, CPU, float32: move it with ``.to(device)``) and a
        :class:`~llm_foundations.tokenizers.ByteLevelBPE` built from GPT-2's ``vocab.json`` and
        ``merges.txt``.
    """
    from huggingface_hub import hf_hub_download
    from safetensors.torch import load_file

    from llm_foundations.tokenizers import ByteLevelBPE

    with open(hf_hub_download(name, "config.json"), encoding="utf-8") as file:
        config = json.load(file)
    state = load_file(hf_hub_download(name, "model.safetensors"))
    gpt = gpt_from_huggingface(state, n_heads=config["n_head"], norm_eps=config.get("layer_norm_epsilon", 1e-5),
                               activation=_ACTIVATIONS.get(config.get("activation_function", "gelu_new")))
    tokenizer = ByteLevelBPE.from_gpt2_files(hf_hub_download(name, "vocab.json"), hf_hub_download(name, "merges.txt"))
    return gpt, tokenizer
