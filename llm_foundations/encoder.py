"""The Transformer encoder (chapter 8): the encoder layer, the encoder stack, and BERT's masking.

The encoder reads a whole sequence at once and returns one vector per token. Every token may
attend to every other token, before and after it, so each output depends on the whole input:
the encoder is *bidirectional*. Its pieces come from earlier chapters:

- :class:`~llm_foundations.embeddings.TokenEmbedding` (chapter 2) turns ids into vectors scaled
  by ``sqrt(d_model)``;
- :class:`~llm_foundations.positional.SinusoidalPositionalEncoding` (chapter 3) adds the
  positions, then applies dropout to the sum (Vaswani et al., 2017, §5.4);
- :class:`~llm_foundations.attention.MultiHeadAttention` (chapter 4) is the self-attention;
- :class:`~llm_foundations.layers.FeedForward`, :class:`~llm_foundations.layers.ResidualSublayer`
  and :class:`~llm_foundations.layers.LayerNorm` (chapter 6) are the rest of each layer.

:func:`mask_tokens` implements the masked-language-model corruption of BERT (Devlin et al.,
2019, §3.1), which lets a bidirectional encoder be trained on plain text.

Dimension letters used in the shapes below:

- ``B``: batch size; ``L``: sequence length
- ``H``: number of heads
- ``d_model``: model width; ``d_ff``: hidden width of the feed-forward network
- ``V``: vocabulary size
- ``...``: any number of leading dimensions

Masks are boolean and **True means "this query may attend to this key"**, as everywhere in the
course. For padding, pass ``padding_mask(src_ids, pad_id)`` (shape ``(B, 1, 1, L)``).
:class:`torch.nn.TransformerEncoderLayer` takes the opposite: its ``src_key_padding_mask`` is
True at the padding, so pass it ``~keep`` where ``keep`` is the ``(B, L)`` mask of real tokens.

Attribute names. An :class:`EncoderLayer` holds ``.self_attn`` (the attention), ``.ffn`` (the
feed-forward network) and ``.sublayers``, an ``nn.ModuleList`` of two
:class:`~llm_foundations.layers.ResidualSublayer`: ``sublayers[0]`` wraps the attention and
``sublayers[1]`` the feed-forward network, and each holds its own LayerNorm in ``.norm``. In
:class:`torch.nn.TransformerEncoderLayer` these are ``norm1`` and ``norm2``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from llm_foundations.attention import MultiHeadAttention
from llm_foundations.embeddings import TokenEmbedding
from llm_foundations.layers import FeedForward, LayerNorm, ResidualSublayer
from llm_foundations.positional import SinusoidalPositionalEncoding

__all__ = ["IGNORE_INDEX", "Encoder", "EncoderLayer", "mask_tokens"]

#: The label of positions that carry no loss; :func:`torch.nn.functional.cross_entropy` skips
#: targets equal to its ``ignore_index``, whose default is -100.
IGNORE_INDEX = -100


class EncoderLayer(nn.Module):
    r"""One encoder layer (Vaswani et al., 2017, §3.1): self-attention, then a feed-forward network.

    Each sublayer sits inside a residual connection with a LayerNorm
    (:class:`~llm_foundations.layers.ResidualSublayer`):

    - pre-LN (``norm_first=True``, the default, most modern models):

      .. math:: h = x + \mathrm{MHA}(\mathrm{LN}_1(x)), \qquad y = h + \mathrm{FFN}(\mathrm{LN}_2(h))

    - post-LN (``norm_first=False``, the original paper):

      .. math:: h = \mathrm{LN}_1(x + \mathrm{MHA}(x)), \qquad y = \mathrm{LN}_2(h + \mathrm{FFN}(h))

    With ``dropout=0`` it computes exactly what
    ``nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0, batch_first=True,
    norm_first=norm_first)`` computes with the same weights.

    Args:
        d_model: model width; must be divisible by ``n_heads``.
        n_heads: number of attention heads.
        d_ff: hidden width of the feed-forward network (``4 * d_model`` in the paper).
        dropout: dropout probability on the attention weights, inside the feed-forward network,
            and on each sublayer's output before the residual sum (training only).
        norm_first: pre-LN when True, post-LN when False.

    Attributes:
        self_attn: :class:`~llm_foundations.attention.MultiHeadAttention` ``(d_model, n_heads)``.
        ffn: :class:`~llm_foundations.layers.FeedForward` ``(d_model, d_ff)``.
        sublayers: ``nn.ModuleList`` of two :class:`~llm_foundations.layers.ResidualSublayer`;
            ``sublayers[0]`` around the attention, ``sublayers[1]`` around the feed-forward network.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, norm_first: bool = True):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout=dropout)
        self.sublayers = nn.ModuleList(
            ResidualSublayer(d_model, dropout=dropout, norm_first=norm_first) for _ in range(2)
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Run the two sublayers.

        Args:
            x: the token vectors.
            mask: optional boolean mask, **True where a query may attend to a key**, broadcastable
                to ``(B, H, L, L)``; for padding use ``padding_mask(ids, pad_id)``, ``(B, 1, 1, L)``.
                ``None`` lets every token attend to every token (both directions).

        Shape:
            - x: ``(B, L, d_model)``
            - output: ``(B, L, d_model)``
        """
        x = self.sublayers[0](x, lambda h: self.self_attn(h, h, h, mask=mask))  # (B, L, d_model)
        return self.sublayers[1](x, self.ffn)  # (B, L, d_model)


class Encoder(nn.Module):
    r"""The encoder stack: embeddings, positions, ``n_layers`` encoder layers and a final LayerNorm.

    .. math::
        x_0 = \mathrm{Dropout}\big(\sqrt{d_\text{model}}\, E[\text{ids}] + PE\big), \qquad
        x_l = \mathrm{EncoderLayer}_l(x_{l-1}), \qquad
        \text{output} = \mathrm{LN}(x_N) \text{ (pre-LN) or } x_N \text{ (post-LN)}

    A pre-LN stack leaves its residual stream un-normalised (each layer only adds to it), so it
    ends with one more LayerNorm; a post-LN stack already ends with one, inside its last layer.

    Args:
        vocab_size: number of token ids ``V``.
        d_model: model width (even, for the sinusoidal positions).
        n_heads: number of attention heads per layer.
        d_ff: hidden width of each feed-forward network.
        n_layers: number of encoder layers ``N``.
        dropout: dropout probability on the embeddings after the positions are added
            (Vaswani et al., 2017, §5.4) and inside every layer (training only).
        max_len: the longest sequence accepted; longer inputs raise ``ValueError``.
        norm_first: pre-LN layers and a final LayerNorm when True; post-LN layers and no final
            LayerNorm when False.

    Attributes:
        embedding: :class:`~llm_foundations.embeddings.TokenEmbedding` ``(V, d_model)``.
        positions: :class:`~llm_foundations.positional.SinusoidalPositionalEncoding`, which adds
            the positions and applies the embedding dropout.
        layers: ``nn.ModuleList`` of ``n_layers`` independent :class:`EncoderLayer`.
        norm: the final :class:`~llm_foundations.layers.LayerNorm` when ``norm_first``, else ``None``.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        n_heads: int,
        d_ff: int,
        n_layers: int,
        dropout: float = 0.0,
        max_len: int = 512,
        norm_first: bool = True,
    ):
        super().__init__()
        if n_layers < 0 or max_len <= 0:
            raise ValueError(f"n_layers must be >= 0 and max_len > 0, got n_layers={n_layers}, max_len={max_len}")
        self.d_model = d_model
        self.max_len = max_len
        self.norm_first = norm_first
        self.embedding = TokenEmbedding(vocab_size, d_model)
        self.positions = SinusoidalPositionalEncoding(d_model, max_len=max_len, dropout=dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, n_heads, d_ff, dropout=dropout, norm_first=norm_first) for _ in range(n_layers)
        )
        self.norm = LayerNorm(d_model) if norm_first else None

    def forward(self, src_ids: Tensor, src_mask: Tensor | None = None) -> Tensor:
        """Encode a batch of token ids.

        Args:
            src_ids: the source token ids.
            src_mask: optional boolean mask, **True where a query may attend to a key**,
                broadcastable to ``(B, H, L, L)``; usually ``padding_mask(src_ids, pad_id)``,
                ``(B, 1, 1, L)``. ``None``: every token sees every token.

        Shape:
            - src_ids: ``(B, L)``, integer dtype, ``L <= max_len``
            - output: ``(B, L, d_model)``

        Raises:
            ValueError: ``src_ids`` is not 2-D, or ``L > max_len``.
        """
        if src_ids.dim() != 2:
            raise ValueError(f"src_ids must have shape (B, L), got {tuple(src_ids.shape)}")
        if src_ids.size(1) > self.max_len:
            raise ValueError(
                f"the sequence has {src_ids.size(1)} tokens, more than max_len={self.max_len}: build the "
                "Encoder with a larger max_len or truncate the input"
            )
        x = self.positions(self.embedding(src_ids))  # (B, L, d_model): dropout(sqrt(d) E[ids] + PE)
        for layer in self.layers:
            x = layer(x, src_mask)  # (B, L, d_model)
        return x if self.norm is None else self.norm(x)  # (B, L, d_model)


def mask_tokens(
    ids: Tensor,
    mask_id: int,
    vocab_size: int,
    mask_prob: float = 0.15,
    generator: torch.Generator | None = None,
    *,
    maskable: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """BERT's masked-language-model corruption (Devlin et al., 2019, §3.1 and appendix C.2).

    Each position is *selected* independently with probability ``mask_prob``. A selected
    position becomes ``mask_id`` with probability 0.8, a random id drawn uniformly from
    ``[0, vocab_size)`` with probability 0.1 (special ids included, as in BERT; the draw may
    even return the original id), and stays unchanged with probability 0.1. The model is
    trained to predict the original id at the selected positions only.

    Special tokens. As in the contract, every position may be selected. To protect padding or
    other special tokens, pass ``maskable`` (e.g. ``ids != pad_id``): positions where it is
    False are never selected.

    Randomness. Every draw uses ``generator`` (the global generator when None), so the same
    generator state gives the same result. The draws are made on the generator's device
    (``ids``' device when no generator is given) and moved to ``ids``' device.

    Args:
        ids: the original token ids (not modified).
        mask_id: the id of the ``[MASK]`` token.
        vocab_size: number of ids ``V``; random replacements come from ``[0, V)``.
        mask_prob: probability that a position is selected, in ``[0, 1]``.
        generator: the random number generator to draw from.
        maskable: optional boolean tensor of ``ids``' shape, True where a position may be selected.

    Shape:
        - ids: any shape ``(...)``, e.g. ``(B, L)``, integer dtype
        - inputs, labels: same shape as ``ids``; ``labels`` is ``torch.long``

    Returns:
        ``(inputs, labels)``: the corrupted ids to feed the model, and the targets: the original
        id at selected positions, -100 (:data:`IGNORE_INDEX`) elsewhere, ready for
        ``F.cross_entropy(logits.flatten(0, 1), labels.flatten())``.

    Raises:
        TypeError: ``ids`` is not an integer tensor, or ``maskable`` is not boolean.
        ValueError: ``mask_prob`` is outside ``[0, 1]``, ``vocab_size`` is not positive, or
            ``maskable`` has another shape.
    """
    if not isinstance(ids, Tensor) or ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"ids must be an integer tensor, got {getattr(ids, 'dtype', type(ids).__name__)}")
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob must be a probability in [0, 1], got {mask_prob}")
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    draw_device = generator.device if generator is not None else ids.device
    shape = ids.shape
    selected = torch.rand(shape, generator=generator, device=draw_device) < mask_prob  # (...)
    action = torch.rand(shape, generator=generator, device=draw_device)  # (...): which of the 80/10/10
    random_ids = torch.randint(vocab_size, shape, generator=generator, device=draw_device)  # (...)
    selected, action, random_ids = selected.to(ids.device), action.to(ids.device), random_ids.to(ids.device)
    if maskable is not None:
        if maskable.dtype != torch.bool:
            raise TypeError(f"maskable must be a boolean tensor (True = may be selected), got {maskable.dtype}")
        if maskable.shape != shape:
            raise ValueError(f"maskable must have the shape of ids {tuple(shape)}, got {tuple(maskable.shape)}")
        selected = selected & maskable.to(ids.device)
    to_mask = selected & (action < 0.8)  # 80% of the selected: [MASK]
    to_random = selected & (action >= 0.8) & (action < 0.9)  # 10%: a random id; the last 10% stay as they are
    inputs = ids.masked_fill(to_mask, mask_id)  # a new tensor: ids is left alone
    inputs = torch.where(to_random, random_ids.to(ids.dtype), inputs)
    labels = torch.where(selected, ids.long(), torch.full_like(ids, IGNORE_INDEX, dtype=torch.long))
    return inputs, labels
