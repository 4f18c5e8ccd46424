"""Reference implementation of every component built in "Under the Hood of the Transformer".

One module per concept, in the order the course builds them:

- :mod:`llm_foundations.device` and :mod:`llm_foundations.seed`: where tensors live, reproducibility.
- :mod:`llm_foundations.attention`: scaled dot-product attention and multi-head attention (chapter 4).

Exercise notebooks ask students to write these same names; the hidden tests compare the
students' versions with the ones here and with PyTorch's own modules.
"""

from llm_foundations.device import get_device
from llm_foundations.seed import set_seed

__all__ = ["get_device", "set_seed"]
__version__ = "0.1.0"
