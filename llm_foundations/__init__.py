"""Reference implementation of every component built in "Under the Hood of the Transformer".

One module per concept, in the order the course builds them:

- :mod:`~llm_foundations.device`, :mod:`~llm_foundations.seed`: where tensors live, reproducibility.
- :mod:`~llm_foundations.overview` (chapter 1): an RNN step by step, attention in one step,
  the Transformer's parameter count; :mod:`~llm_foundations.diagrams`: the course map.
- :mod:`~llm_foundations.tokenizers`, :mod:`~llm_foundations.embeddings`,
  :mod:`~llm_foundations.corpus` (chapter 2): characters and byte-level BPE, token embeddings,
  skip-gram with negative sampling on a generated corpus.
- :mod:`~llm_foundations.positional` (chapter 3): sinusoidal, learned, relative and rotary positions.
- :mod:`~llm_foundations.attention` (chapters 4-5): scaled dot-product and multi-head attention,
  masks, additive attention, the KV cache.
- :mod:`~llm_foundations.layers` (chapter 6): LayerNorm, feed-forward network, residual sublayers.
- :mod:`~llm_foundations.sampling` (chapter 7), :mod:`~llm_foundations.encoder` (chapter 8),
  :mod:`~llm_foundations.decoder` (chapter 9), as they are published.
- :mod:`~llm_foundations.plotting`: the figures chapters share.
- :mod:`~llm_foundations.glue`: measured numbers inserted into a chapter's prose by the site build.
- :mod:`~llm_foundations.checks`: the checks the exercises' test cells use, ``core`` for every chapter and one module per assignment (``checks.ch04_self_attention``, ...).
- :mod:`~llm_foundations.interop` (PyTorch twins of the course's modules) and :mod:`~llm_foundations.timing` (one way to time code).

Exercise notebooks ask students to write these same names; the hidden tests compare the
students' versions with the ones here and with PyTorch's own modules.
"""

from llm_foundations.device import get_device
from llm_foundations.seed import set_seed

__all__ = ["get_device", "set_seed"]
__version__ = "0.1.0"
