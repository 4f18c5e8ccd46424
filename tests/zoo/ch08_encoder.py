"""Bug zoo for exercise 8 (encoder): classic mistakes that must lose points, and unusual but
correct answers that must keep full marks."""

from submissions import Answer

ASSIGNMENT = "08_encoder"

LAYER = "EncoderLayer"
ENC = "Encoder"
MASK = "mask_tokens"

_SUBLAYER = "ResidualSublayer(d_model, dropout, norm_first)"
_ATTN_CALL = "lambda h: self.self_attn(h, h, h, mask=mask)"
_FFN_LINE = "return self.sublayers[1](x, self.ffn)"
_ATTN_LINE = "        x = self.sublayers[0](x, lambda h: self.self_attn(h, h, h, mask=mask))  # (B, L, d_model)\n"
_MAX_LEN_CHECK = ("        if src_ids.size(1) > self.max_len:\n            raise ValueError(f\"a sequence of "
                  "{src_ids.size(1)} tokens is longer than max_len={self.max_len}\")\n")

MISTAKES = [
    # EncoderLayer
    Answer("pre_post_ln_swapped", "builds post-LN sublayers for norm_first=True and pre-LN ones for False",
           replace={LAYER: [(_SUBLAYER, "ResidualSublayer(d_model, dropout, not norm_first)")]}),
    Answer("no_ffn_residual", "forgets the residual connection around the feed-forward network",
           replace={LAYER: [(_FFN_LINE, "return self.ffn(self.sublayers[1].norm(x))")]}),
    Answer("layer_ignores_mask", "does not pass the mask to the self-attention",
           replace={LAYER: [(_ATTN_CALL, "lambda h: self.self_attn(h, h, h)")]}),
    Answer("layer_mask_inverted", "passes ~mask (PyTorch's True = blocked convention) to the self-attention",
           replace={LAYER: [(_ATTN_CALL, "lambda h: self.self_attn(h, h, h, mask=None if mask is None else ~mask)")]}),
    Answer("attention_on_unnormalised_input", "lets the attention read x instead of the normalised h",
           replace={LAYER: [(_ATTN_CALL, "lambda h: self.self_attn(x, x, x, mask=mask)")]}),
    Answer("causal_mask_in_encoder", "applies a causal mask, as in a decoder: the encoder is no longer bidirectional",
           replace={LAYER: [(_ATTN_LINE,
                             "        causal = torch.tril(torch.ones(x.size(1), x.size(1), dtype=torch.bool))\n"
                             "        mask = causal if mask is None else mask & causal\n" + _ATTN_LINE)]}),
    Answer("same_sublayer_twice", "uses sublayers[0] (and its norm) around the feed-forward network too",
           replace={LAYER: [(_FFN_LINE, "return self.sublayers[0](x, self.ffn)")]}),
    Answer("one_shared_sublayer", "repeats one ResidualSublayer ([block] * 2): both sublayers share one LayerNorm",
           replace={LAYER: [("""        self.sublayers = nn.ModuleList([
            ResidualSublayer(d_model, dropout, norm_first),  # around the attention
            ResidualSublayer(d_model, dropout, norm_first),  # around the feed-forward network
        ])""", "        self.sublayers = nn.ModuleList([ResidualSublayer(d_model, dropout, norm_first)] * 2)")]}),
    Answer("dropout_ignored", "never passes dropout on to the attention, the feed-forward network or the sublayers",
           replace={LAYER: [("MultiHeadAttention(d_model, n_heads, dropout)", "MultiHeadAttention(d_model, n_heads)"),
                            ("FeedForward(d_model, d_ff, dropout)", "FeedForward(d_model, d_ff)"),
                            (_SUBLAYER, "ResidualSublayer(d_model, norm_first=norm_first)")]}),
    Answer("wraps_pytorch_layer", "copies its weights into nn.TransformerEncoderLayer and runs that", source={LAYER: '''
class EncoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=True):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.sublayers = nn.ModuleList([ResidualSublayer(d_model, dropout, norm_first) for _ in range(2)])
        self.torch_layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout, batch_first=True,
                                                      norm_first=norm_first)

    def forward(self, x, mask=None):
        t, a = self.torch_layer, self.self_attn
        with torch.no_grad():
            t.self_attn.in_proj_weight.copy_(torch.cat([a.w_q.weight, a.w_k.weight, a.w_v.weight]))
            t.self_attn.in_proj_bias.copy_(torch.cat([a.w_q.bias, a.w_k.bias, a.w_v.bias]))
            t.self_attn.out_proj.weight.copy_(a.w_o.weight)
            t.self_attn.out_proj.bias.copy_(a.w_o.bias)
            t.linear1.load_state_dict(self.ffn.linear1.state_dict())
            t.linear2.load_state_dict(self.ffn.linear2.state_dict())
            t.norm1.load_state_dict(self.sublayers[0].norm.state_dict())
            t.norm2.load_state_dict(self.sublayers[1].norm.state_dict())
        if mask is None:
            return t(x)
        if mask.dim() == 4:
            return t(x, src_key_padding_mask=~mask[:, 0, 0, :])
        return t(x, src_mask=~mask)
'''}),
    # Encoder
    Answer("missing_final_norm", "has no final LayerNorm in the pre-LN stack",
           replace={ENC: [("self.norm = LayerNorm(d_model) if norm_first else None", "self.norm = None")]}),
    Answer("final_norm_always", "adds a final LayerNorm to the post-LN stack too",
           replace={ENC: [("self.norm = LayerNorm(d_model) if norm_first else None", "self.norm = LayerNorm(d_model)")]}),
    Answer("no_sqrt_scaling", "uses nn.Embedding, so the embeddings are not multiplied by sqrt(d_model)",
           replace={ENC: [("TokenEmbedding(vocab_size, d_model)", "nn.Embedding(vocab_size, d_model)")]}),
    Answer("positions_not_added", "never adds the positional encoding",
           replace={ENC: [("x = self.positions(self.embedding(src_ids))", "x = self.embedding(src_ids)")]}),
    Answer("positions_added_twice", "adds the positional encoding twice",
           replace={ENC: [("x = self.positions(self.embedding(src_ids))",
                           "x = self.positions(self.positions(self.embedding(src_ids)))")]}),
    Answer("encoder_ignores_mask", "does not pass src_mask on to the layers",
           replace={ENC: [("x = layer(x, src_mask)", "x = layer(x)")]}),
    Answer("encoder_mask_inverted", "passes ~src_mask to the layers",
           replace={ENC: [("x = layer(x, src_mask)", "x = layer(x, None if src_mask is None else ~src_mask)")]}),
    Answer("shared_layers", "repeats one layer object ([layer] * n_layers): all layers share their weights",
           replace={ENC: [("[EncoderLayer(d_model, n_heads, d_ff, dropout, norm_first) for _ in range(n_layers)]",
                           "[EncoderLayer(d_model, n_heads, d_ff, dropout, norm_first)] * n_layers")]}),
    Answer("no_max_len_check", "accepts sequences longer than max_len",
           replace={ENC: [(_MAX_LEN_CHECK, "")]}),
    # mask_tokens
    Answer("labels_everywhere", "gives every position a label (no -100)",
           replace={MASK: [("labels = torch.where(selected, ids, torch.full_like(ids, -100))", "labels = ids.clone()")]}),
    Answer("labels_zero_elsewhere", "uses 0 instead of -100 for the positions without a label",
           replace={MASK: [("torch.full_like(ids, -100)", "torch.zeros_like(ids)")]}),
    Answer("labels_from_inputs", "takes the labels from the corrupted inputs instead of the original ids",
           replace={MASK: [("labels = torch.where(selected, ids,", "labels = torch.where(selected, inputs,")]}),
    Answer("rule_on_all_positions", "applies the 80/10/10 rule to every position, not only the selected ones",
           replace={MASK: [("inputs[selected & (action < 0.8)] = mask_id", "inputs[action < 0.8] = mask_id"),
                           ("replace = selected & (action >= 0.8) & (action < 0.9)",
                            "replace = (action >= 0.8) & (action < 0.9)")]}),
    Answer("all_selected_masked", "turns every selected position into mask_id (no random, no unchanged)",
           replace={MASK: [("inputs[selected & (action < 0.8)] = mask_id", "inputs[selected] = mask_id"),
                           ("inputs[replace] = random_ids[replace].to(ids.dtype)", "pass")]}),
    Answer("random_twenty_percent", "replaces 20% by random ids and leaves none unchanged",
           replace={MASK: [("(action < 0.9)", "(action < 1.0)")]}),
    Answer("independent_random_draw", "draws the 10% random replacement independently, overwriting some [MASK]s",
           replace={MASK: [("replace = selected & (action >= 0.8) & (action < 0.9)",
                            "replace = selected & (torch.rand(ids.shape, generator=generator) < 0.1)")]}),
    Answer("random_ids_wrong_range", "draws random ids from [0, vocab_size - 1), missing the last id",
           replace={MASK: [("torch.randint(vocab_size, ids.shape", "torch.randint(vocab_size - 1, ids.shape")]}),
    Answer("selection_reversed", "selects a position when rand > mask_prob (85% selected)",
           replace={MASK: [("< mask_prob", "> mask_prob")]}),
    Answer("generator_ignored", "draws from the global generator instead of the one given",
           replace={MASK: [(", generator=generator)", ")")]}),
    Answer("modifies_ids_in_place", "writes the [MASK]s into ids itself (no copy)",
           replace={MASK: [("inputs = ids.clone()", "inputs = ids")]}),
    Answer("imports_the_reference", "imports the course's reference implementation", source={
        LAYER: "from llm_foundations.encoder import EncoderLayer\n",
        ENC: "from llm_foundations.encoder import Encoder\n",
        MASK: "from llm_foundations.encoder import mask_tokens\n",
    }),
    Answer("wraps_the_reference", "subclasses or wraps the reference implementation", source={
        LAYER: '''
import llm_foundations.encoder as lfe


class EncoderLayer(lfe.EncoderLayer):
    pass
''',
        ENC: '''
class Encoder(lfe.Encoder):
    pass
''',
        MASK: '''
def mask_tokens(ids, mask_id, vocab_size, mask_prob=0.15, generator=None):
    return lfe.mask_tokens(ids, mask_id, vocab_size, mask_prob, generator)
'''}),
]

ALTERNATIVES = [
    Answer("explicit_formulas", "an encoder layer written with its own LayerNorms and dropouts, no ResidualSublayer",
           source={LAYER: '''
class EncoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=True):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.drop1 = nn.Dropout(dropout)
        self.drop2 = nn.Dropout(dropout)

    def _sa(self, t, mask):
        return self.drop1(self.self_attn(t, t, t, mask))

    def forward(self, x, mask=None):
        if self.norm_first:
            x = x + self._sa(self.norm1(x), mask)
            x = x + self.drop2(self.ffn(self.norm2(x)))
        else:
            x = self.norm1(x + self._sa(x, mask))
            x = self.norm2(x + self.drop2(self.ffn(x)))
        return x
'''}),
    Answer("ffn_norm_registered_first", "registers the feed-forward network's sublayer before the attention's",
           source={LAYER: '''
class EncoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=True):
        super().__init__()
        self.ffn_block = ResidualSublayer(d_model, dropout, norm_first)
        self.attn_block = ResidualSublayer(d_model, dropout, norm_first)
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)

    def forward(self, x, mask=None):
        x = self.attn_block(x, lambda t: self.self_attn(t, t, t, mask=mask))
        return self.ffn_block(x, self.ffn)
'''}),
    Answer("embedding_buffer_and_reduce", "nn.Embedding times sqrt(d), a registered PE buffer, functools.reduce over "
           "the layers, nn.Identity as the post-LN norm", source={ENC: '''
import functools


class Encoder(nn.Module):
    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers, dropout=0.0, max_len=512, norm_first=True):
        super().__init__()
        self.scale = math.sqrt(d_model)
        self.tok = nn.Embedding(vocab_size, d_model)
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff, dropout, norm_first) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()

    def forward(self, src_ids, src_mask=None):
        length = src_ids.shape[-1]
        if length > self.pe.shape[0]:
            raise ValueError("sequence longer than max_len")
        x = self.drop(self.tok(src_ids) * self.scale + self.pe[:length])
        x = functools.reduce(lambda h, layer: layer(h, src_mask), self.layers, x)
        return self.norm(x)
'''}),
    Answer("single_uniform_draw", "one uniform number per position decides selection and action", source={MASK: '''
def mask_tokens(ids, mask_id, vocab_size, mask_prob=0.15, generator=None):
    u = torch.rand(ids.shape, generator=generator)
    noise = torch.randint(0, vocab_size, ids.shape, generator=generator)
    selected = u < mask_prob
    inputs = torch.where(u < 0.8 * mask_prob, torch.full_like(ids, mask_id), ids)
    inputs = torch.where((u >= 0.8 * mask_prob) & (u < 0.9 * mask_prob), noise.to(ids.dtype), inputs)
    labels = ids.masked_fill(~selected, -100)
    return inputs, labels
'''}),
    Answer("bernoulli_chain", "torch.bernoulli chains: 80% of the selected masked, half of the rest random",
           source={MASK: '''
def mask_tokens(ids, mask_id, vocab_size, mask_prob=0.15, generator=None):
    def coin(p):
        return torch.bernoulli(torch.full(ids.shape, float(p)), generator=generator).bool()

    selected = coin(mask_prob)
    masked = selected & coin(0.8)
    randomized = selected & ~masked & coin(0.5)
    words = torch.randint(vocab_size, ids.shape, generator=generator, dtype=ids.dtype)
    inputs = ids.clone()
    inputs[masked] = mask_id
    inputs[randomized] = words[randomized]
    labels = ids.clone()
    labels[~selected] = -100
    return inputs, labels
'''}),
    Answer("multinomial_actions", "draws each position's outcome from a 4-way categorical distribution",
           source={MASK: '''
def mask_tokens(ids, mask_id, vocab_size, mask_prob=0.15, generator=None):
    p = float(mask_prob)
    outcome_probs = torch.tensor([1 - p, 0.8 * p, 0.1 * p, 0.1 * p])  # keep, mask, random, unchanged-but-selected
    outcome = torch.multinomial(outcome_probs, ids.numel(), replacement=True, generator=generator).view(ids.shape)
    noise = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[outcome == 1] = mask_id
    inputs[outcome == 2] = noise[outcome == 2].to(ids.dtype)
    labels = torch.where(outcome > 0, ids, torch.tensor(-100, dtype=ids.dtype))
    return inputs, labels
'''}),
]


# Blind answers: written from the released student notebook alone (task text and visible tests),
# without the solution, the hidden tests or the checks (c/ch08_encoder.py). They join the
# alternatives as written: where one failed, the task text or the tests were fixed, never the answer.
BLIND = [
    Answer("blind_canonical", "textbook: two ResidualSublayers with lambdas, SinusoidalPositionalEncoding module, torch.rand + torch.where masking", source={
        "EncoderLayer": '''class EncoderLayer(nn.Module):
    """Self-attention and a feed-forward network, each in a residual sublayer; mask True = may attend."""

    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=True):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.sublayers = nn.ModuleList([ResidualSublayer(d_model, dropout, norm_first),
                                        ResidualSublayer(d_model, dropout, norm_first)])

    def forward(self, x, mask=None):
        h = self.sublayers[0](x, lambda t: self.self_attn(t, t, t, mask=mask))
        return self.sublayers[1](h, self.ffn)
''',
        "Encoder": '''class Encoder(nn.Module):
    """Embedding + positions, n_layers EncoderLayers, and a final LayerNorm when norm_first."""

    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers, dropout=0.0, max_len=512, norm_first=True):
        super().__init__()
        self.max_len = max_len
        self.embedding = TokenEmbedding(vocab_size, d_model)
        self.positions = SinusoidalPositionalEncoding(d_model, max_len, dropout)
        self.layers = nn.ModuleList([EncoderLayer(d_model, n_heads, d_ff, dropout, norm_first) for _ in range(n_layers)])
        self.norm = LayerNorm(d_model) if norm_first else None

    def forward(self, src_ids, src_mask=None):
        if src_ids.size(1) > self.max_len:
            raise ValueError(f"sequence of length {src_ids.size(1)} is longer than max_len={self.max_len}")
        x = self.positions(self.embedding(src_ids))
        for layer in self.layers:
            x = layer(x, src_mask)
        if self.norm is not None:
            x = self.norm(x)
        return x
''',
        "mask_tokens": '''def mask_tokens(ids, mask_id, vocab_size, mask_prob=0.15, generator=None):
    """BERT's masking: returns (inputs, labels); labels = original id where selected, -100 elsewhere."""
    selected = torch.rand(ids.shape, generator=generator) < mask_prob
    outcome = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator, dtype=ids.dtype)
    selected, outcome, random_ids = selected.to(ids.device), outcome.to(ids.device), random_ids.to(ids.device)
    to_mask = selected & (outcome < 0.8)
    to_random = selected & (outcome >= 0.8) & (outcome < 0.9)
    inputs = torch.where(to_mask, torch.full_like(ids, mask_id), ids)
    inputs = torch.where(to_random, random_ids, inputs)
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    return inputs, labels
''',
    }),
    Answer("blind_norm_attrs", "norm1/norm2 + own dropout and explicit pre/post-LN formulas; function PE + nn.Dropout, embedding named tok_embed; masked_fill on a clone", source={
        "EncoderLayer": '''class EncoderLayer(nn.Module):
    """Self-attention and a feed-forward network, each in a residual sublayer; mask True = may attend."""

    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=True):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.norm1 = LayerNorm(d_model)
        self.norm2 = LayerNorm(d_model)
        self.drop1 = nn.Dropout(dropout)
        self.drop2 = nn.Dropout(dropout)

    def _sa(self, t, mask):
        return self.drop1(self.self_attn(t, t, t, mask))

    def _ff(self, t):
        return self.drop2(self.ffn(t))

    def forward(self, x, mask=None):
        if self.norm_first:
            x = x + self._sa(self.norm1(x), mask)
            x = x + self._ff(self.norm2(x))
        else:
            x = self.norm1(x + self._sa(x, mask))
            x = self.norm2(x + self._ff(x))
        return x
''',
        "Encoder": '''class Encoder(nn.Module):
    """Embedding + positions, n_layers EncoderLayers, and a final LayerNorm when norm_first."""

    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers, dropout=0.0, max_len=512, norm_first=True):
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        self.tok_embed = TokenEmbedding(vocab_size, d_model)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff, dropout, norm_first) for _ in range(n_layers))
        self.norm = LayerNorm(d_model) if norm_first else None

    def forward(self, src_ids, src_mask=None):
        B, L = src_ids.shape
        if L > self.max_len:
            raise ValueError("input longer than max_len")
        x = self.tok_embed(src_ids)
        pe = sinusoidal_positional_encoding(L, self.d_model).to(device=x.device, dtype=x.dtype)
        x = self.drop(x + pe)
        for layer in self.layers:
            x = layer(x, mask=src_mask)
        return x if self.norm is None else self.norm(x)
''',
        "mask_tokens": '''def mask_tokens(ids, mask_id, vocab_size, mask_prob=0.15, generator=None):
    """BERT's masking: returns (inputs, labels); labels = original id where selected, -100 elsewhere."""
    u_select = torch.rand(ids.shape, generator=generator).to(ids.device)
    u_kind = torch.rand(ids.shape, generator=generator).to(ids.device)
    rnd = torch.randint(0, vocab_size, ids.shape, generator=generator).to(device=ids.device, dtype=ids.dtype)
    chosen = u_select < mask_prob
    labels = ids.clone().masked_fill(~chosen, -100)
    inputs = ids.clone()
    inputs = inputs.masked_fill(chosen & (u_kind < 0.8), mask_id)
    swap = chosen & (u_kind >= 0.8) & (u_kind < 0.9)
    inputs[swap] = rnd[swap]
    return inputs, labels
''',
    }),
    Answer("blind_partial_buffer", "functools.partial + zip over sublayers; PE table precomputed as a non-persistent buffer, attrs embed/pe; HF-style nested bernoulli draws", source={
        "EncoderLayer": '''import functools


class EncoderLayer(nn.Module):
    """Self-attention and a feed-forward network, each in a residual sublayer; mask True = may attend."""

    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=True):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.sublayers = nn.ModuleList(ResidualSublayer(d_model, dropout, norm_first) for _ in range(2))

    def _attend(self, t, mask):
        return self.self_attn(t, t, t, mask=mask)

    def forward(self, x, mask=None):
        functions = (functools.partial(self._attend, mask=mask), self.ffn)
        for sublayer, fn in zip(self.sublayers, functions):
            x = sublayer(x, fn)
        return x
''',
        "Encoder": '''class Encoder(nn.Module):
    """Embedding + positions, n_layers EncoderLayers, and a final LayerNorm when norm_first."""

    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers, dropout=0.0, max_len=512, norm_first=True):
        super().__init__()
        self.embed = TokenEmbedding(vocab_size, d_model)
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList()
        for _ in range(n_layers):
            self.layers.append(EncoderLayer(d_model, n_heads, d_ff, dropout, norm_first))
        if norm_first:
            self.norm = LayerNorm(d_model)
        else:
            self.norm = None

    def forward(self, src_ids, src_mask=None):
        n = src_ids.shape[-1]
        if n > self.pe.shape[0]:
            raise ValueError(f"got {n} tokens but max_len is {self.pe.shape[0]}")
        h = self.dropout(self.embed(src_ids) + self.pe[:n].to(self.embed.weight.dtype))
        for layer in self.layers:
            h = layer(h, src_mask)
        if self.norm is not None:
            h = self.norm(h)
        return h
''',
        "mask_tokens": '''def mask_tokens(ids, mask_id, vocab_size, mask_prob=0.15, generator=None):
    """BERT's masking: returns (inputs, labels); labels = original id where selected, -100 elsewhere."""
    shape = tuple(ids.shape)
    selected = torch.bernoulli(torch.full(shape, float(mask_prob)), generator=generator).bool()
    replaced = torch.bernoulli(torch.full(shape, 0.8), generator=generator).bool() & selected
    randomised = torch.bernoulli(torch.full(shape, 0.5), generator=generator).bool() & selected & ~replaced
    random_words = torch.randint(vocab_size, shape, generator=generator, dtype=torch.long)
    ids_cpu = ids.detach().cpu()
    labels = ids_cpu.clone()
    labels[~selected] = -100
    inputs = ids_cpu.clone()
    inputs[replaced] = mask_id
    inputs[randomised] = random_words[randomised].to(inputs.dtype)
    return inputs.to(ids.device), labels.to(ids.device)
''',
    }),
    Answer("blind_fullmask_multinomial", "mask=None turned into an explicit all-True (L, L) mask; PE module named pos_enc; outcomes from torch.multinomial over [0.8, 0.1, 0.1]", source={
        "EncoderLayer": '''class EncoderLayer(nn.Module):
    """Self-attention and a feed-forward network, each in a residual sublayer; mask True = may attend."""

    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=True):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        attn_block = ResidualSublayer(d_model, dropout, norm_first)
        ffn_block = ResidualSublayer(d_model, dropout, norm_first)
        self.sublayers = nn.ModuleList([attn_block, ffn_block])

    def forward(self, x, mask=None):
        if mask is None:  # bidirectional: everybody sees everybody
            L = x.size(1)
            mask = torch.ones(L, L, dtype=torch.bool, device=x.device)
        attn_block, ffn_block = self.sublayers

        def attention(q):
            return self.self_attn(q, q, q, mask)

        x = attn_block(x, attention)
        x = ffn_block(x, lambda q: self.ffn(q))
        return x
''',
        "Encoder": '''class Encoder(nn.Module):
    """Embedding + positions, n_layers EncoderLayers, and a final LayerNorm when norm_first."""

    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers, dropout=0.0, max_len=512, norm_first=True):
        super().__init__()
        self._max_len = int(max_len)
        self.word_embedding = TokenEmbedding(vocab_size, d_model)
        self.pos_enc = SinusoidalPositionalEncoding(d_model, max_len, dropout)
        layers = []
        for i in range(n_layers):
            layers.append(EncoderLayer(d_model, n_heads, d_ff, dropout=dropout, norm_first=norm_first))
        self.layers = nn.ModuleList(layers)
        self.norm = LayerNorm(d_model) if norm_first else None

    def forward(self, src_ids, src_mask=None):
        if src_ids.dim() != 2:
            raise ValueError("src_ids must be (B, L)")
        if src_ids.size(-1) > self._max_len:
            raise ValueError("too long: %d > max_len=%d" % (src_ids.size(-1), self._max_len))
        out = self.pos_enc(self.word_embedding(src_ids))
        for encoder_layer in self.layers:
            out = encoder_layer(out, mask=src_mask)
        if self.norm is not None:
            out = self.norm(out)
        return out
''',
        "mask_tokens": '''def mask_tokens(ids, mask_id, vocab_size, mask_prob=0.15, generator=None):
    """BERT's masking: returns (inputs, labels); labels = original id where selected, -100 elsewhere."""
    n = ids.numel()
    flat = ids.reshape(-1)
    selected = torch.rand(n, generator=generator) < mask_prob
    # 0 = [MASK], 1 = random id, 2 = unchanged, one draw per position
    kind = torch.multinomial(torch.tensor([0.8, 0.1, 0.1]), n, replacement=True, generator=generator)
    random_ids = torch.randint(vocab_size, (n,), generator=generator)
    selected, kind, random_ids = selected.to(ids.device), kind.to(ids.device), random_ids.to(ids.device, ids.dtype)
    new = torch.where(kind == 0, torch.full_like(flat, mask_id), torch.where(kind == 1, random_ids, flat))
    inputs = torch.where(selected, new, flat).reshape(ids.shape)
    labels = torch.where(selected, flat, torch.full_like(flat, -100)).reshape(ids.shape)
    return inputs, labels
''',
    }),
    Answer("blind_rowloop_f64", "nested def instead of lambda, reduce over layers, explicit python loop over rows with float64 draws drawn in one fixed order", source={
        "EncoderLayer": '''class EncoderLayer(nn.Module):
    """Self-attention and a feed-forward network, each in a residual sublayer; mask True = may attend."""

    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=True):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.sublayers = nn.ModuleList()
        self.sublayers.append(ResidualSublayer(d_model, dropout, norm_first))
        self.sublayers.append(ResidualSublayer(d_model, dropout, norm_first))

    def forward(self, x, mask=None):
        def self_attention(h):
            return self.self_attn(query=h, key=h, value=h, mask=mask)

        x = self.sublayers[0](x, self_attention)
        x = self.sublayers[1](x, self.ffn)
        return x
''',
        "Encoder": '''from functools import reduce


class Encoder(nn.Module):
    """Embedding + positions, n_layers EncoderLayers, and a final LayerNorm when norm_first."""

    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers, dropout=0.0, max_len=512, norm_first=True):
        super().__init__()
        self.max_len = max_len
        self.src_embedding = TokenEmbedding(vocab_size, d_model)
        self.positional = SinusoidalPositionalEncoding(d_model, max_len, dropout)
        self.layers = nn.ModuleList([EncoderLayer(d_model, n_heads, d_ff, dropout, norm_first) for _ in range(n_layers)])
        self.norm = LayerNorm(d_model) if norm_first else None

    def forward(self, src_ids, src_mask=None):
        if not src_ids.shape[1] <= self.max_len:
            raise ValueError("sequence exceeds max_len")
        x = self.positional(self.src_embedding(src_ids))
        x = reduce(lambda h, layer: layer(h, src_mask), self.layers, x)
        return self.norm(x) if self.norm is not None else x
''',
        "mask_tokens": '''def mask_tokens(ids, mask_id, vocab_size, mask_prob=0.15, generator=None):
    """BERT's masking: returns (inputs, labels); labels = original id where selected, -100 elsewhere."""
    rows_in, rows_lab = [], []
    flat = ids.reshape(-1, ids.shape[-1]) if ids.dim() > 0 else ids.reshape(1, 1)
    for row in flat:
        L = row.shape[0]
        pick = torch.rand(L, generator=generator, dtype=torch.float64)
        kind = torch.rand(L, generator=generator, dtype=torch.float64)
        rnd = torch.randint(vocab_size, (L,), generator=generator)
        new_row = row.detach().cpu().clone()
        lab_row = torch.full((L,), -100, dtype=row.dtype)
        for j in range(L):
            if pick[j] < mask_prob:
                lab_row[j] = new_row[j]
                if kind[j] < 0.8:
                    new_row[j] = mask_id
                elif kind[j] < 0.9:
                    new_row[j] = rnd[j]
        rows_in.append(new_row)
        rows_lab.append(lab_row)
    inputs = torch.stack(rows_in).reshape(ids.shape).to(ids.device)
    labels = torch.stack(rows_lab).reshape(ids.shape).to(ids.device)
    return inputs, labels
''',
    }),
]

ALTERNATIVES += BLIND
