"""Bug zoo for exercise 9 (the decoder): classic mistakes that must lose points, and unusual but
correct answers that must keep full marks."""

from submissions import Answer

ASSIGNMENT = "09_decoder"

MASK = "causal_mask"
LAYER = "DecoderLayer"
DECODER = "Decoder"
CACHE = "LayerCache"
STEP = "decode_step"
GENERATE = "greedy_generate"

SELF_LINE = "        x = self.sublayers[0](x, lambda h: self.self_attn(h, h, h, mask=tgt_mask, cache=cache))  # (B, L_t, d_model)\n"
CROSS_LINE = ("        x = self.sublayers[1](x, lambda h: self.cross_attn(h, memory, memory, mask=memory_mask))"
              "  # (B, L_t, d_model)\n")
THREE_BLOCKS = '''nn.ModuleList([
            ResidualSublayer(d_model, dropout, norm_first),  # around the masked self-attention
            ResidualSublayer(d_model, dropout, norm_first),  # around the cross-attention
            ResidualSublayer(d_model, dropout, norm_first),  # around the feed-forward network
        ])'''

MISTAKES = [
    # Task 1: the causal mask
    Answer("causal_mask_triu", "uses torch.triu: the mask lets each position see the future, not the past",
           replace={MASK: [("torch.tril(", "torch.triu(")]}),
    Answer("causal_mask_without_diagonal", "excludes the diagonal (tril(-1)): a position may not see itself",
           replace={MASK: [("device=device))", "device=device), diagonal=-1)")]}),
    Answer("causal_mask_inverted", "inverts the mask (True = blocked, PyTorch's nn.MultiheadAttention convention)",
           replace={MASK: [("return torch.tril(", "return ~torch.tril(")]}),
    Answer("causal_mask_float", "returns a float 0/1 mask instead of a boolean one",
           replace={MASK: [("dtype=torch.bool, ", "")]}),
    # Task 2: the decoder layer
    Answer("cross_attention_from_memory", "swaps queries and keys in the cross-attention (attends from the memory)",
           replace={LAYER: [("self.cross_attn(h, memory, memory, mask=memory_mask)",
                             "self.cross_attn(memory, h, h, mask=memory_mask)")]}),
    Answer("cross_attention_reads_itself", "gives the cross-attention the decoder's own states as keys and values",
           replace={LAYER: [("self.cross_attn(h, memory, memory, mask=memory_mask)", "self.cross_attn(h, h, h)")]}),
    Answer("self_attention_unmasked", "forgets the mask in the self-attention",
           replace={LAYER: [("mask=tgt_mask, cache=cache", "cache=cache")]}),
    Answer("no_cross_attention_residual", "drops the residual connection around the cross-attention",
           replace={LAYER: [(CROSS_LINE, "        x = self.cross_attn(self.sublayers[1].norm(x), memory, memory, "
                                         "mask=memory_mask)\n")]}),
    Answer("cross_before_self", "runs the cross-attention before the masked self-attention",
           replace={LAYER: [(SELF_LINE + CROSS_LINE, CROSS_LINE + SELF_LINE)]}),
    Answer("masks_swapped", "gives memory_mask to the self-attention and tgt_mask to the cross-attention",
           replace={LAYER: [("mask=tgt_mask, cache=cache", "mask=memory_mask, cache=cache"),
                            ("mask=memory_mask))", "mask=tgt_mask))")]}),
    Answer("one_shared_norm", "repeats one ResidualSublayer three times, so one LayerNorm is shared",
           replace={LAYER: [(THREE_BLOCKS, "nn.ModuleList([ResidualSublayer(d_model, dropout, norm_first)] * 3)")]}),
    Answer("wraps_pytorch_decoder_layer", "copies its weights into nn.TransformerDecoderLayer and calls it", source={LAYER: '''
class DecoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=True):
        super().__init__()
        self.norm_first, self.dropout, self.d_ff = norm_first, dropout, d_ff
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2, self.norm3 = LayerNorm(d_model), LayerNorm(d_model), LayerNorm(d_model)

    def forward(self, x, memory, tgt_mask=None, memory_mask=None, cache=None):
        d_model = x.size(-1)
        ref = nn.TransformerDecoderLayer(d_model, self.self_attn.n_heads, self.d_ff, self.dropout, batch_first=True,
                                         norm_first=self.norm_first)
        ref.train(self.training)
        with torch.no_grad():
            for ours, theirs in ((self.self_attn, ref.self_attn), (self.cross_attn, ref.multihead_attn)):
                theirs.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))
                theirs.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))
                theirs.out_proj.load_state_dict(ours.w_o.state_dict())
            ref.linear1.load_state_dict(self.ffn.linear1.state_dict())
            ref.linear2.load_state_dict(self.ffn.linear2.state_dict())
            for ours, theirs in ((self.norm1, ref.norm1), (self.norm2, ref.norm2), (self.norm3, ref.norm3)):
                theirs.weight.copy_(ours.weight)
                theirs.bias.copy_(ours.bias)
        keep = None if memory_mask is None else ~memory_mask.reshape(memory_mask.size(0), -1)
        return ref(x, memory, tgt_mask=None if tgt_mask is None else ~tgt_mask, memory_key_padding_mask=keep)
'''}),
    # Task 3: the decoder stack
    Answer("shared_layer", "repeats one DecoderLayer n_layers times (shared weights)",
           replace={DECODER: [("[DecoderLayer(d_model, n_heads, d_ff, dropout, norm_first) for _ in range(n_layers)]",
                               "[DecoderLayer(d_model, n_heads, d_ff, dropout, norm_first)] * n_layers")]}),
    Answer("no_final_norm", "forgets the final LayerNorm of the pre-LN stack",
           replace={DECODER: [("        if self.norm is not None:\n            x = self.norm(x)\n", "")]}),
    Answer("no_default_causal_mask", "uses no mask when tgt_mask is None (the decoder reads the future)",
           replace={DECODER: [("tgt_mask = causal if tgt_mask is None else causal & tgt_mask",
                               "tgt_mask = tgt_mask")]}),
    Answer("given_mask_replaces_causal", "uses a given tgt_mask instead of the causal mask (a padding mask lets it "
           "read the future)", replace={DECODER: [("tgt_mask = causal if tgt_mask is None else causal & tgt_mask",
                                                   "tgt_mask = causal if tgt_mask is None else tgt_mask")]}),
    Answer("given_mask_ignored", "always uses the causal mask and drops the tgt_mask it is given",
           replace={DECODER: [("tgt_mask = causal if tgt_mask is None else causal & tgt_mask", "tgt_mask = causal")]}),
    Answer("embedding_without_scale", "uses nn.Embedding, without the sqrt(d_model) factor",
           replace={DECODER: [("self.embedding = TokenEmbedding(vocab_size, d_model)",
                               "self.embedding = nn.Embedding(vocab_size, d_model)")]}),
    Answer("memory_mask_not_passed", "does not pass memory_mask on to the layers",
           replace={DECODER: [("layer(x, memory, tgt_mask, memory_mask)", "layer(x, memory, tgt_mask)")]}),
    # Task 4: the cache
    Answer("cache_returns_only_new", "appends to the cache but hands back only the new keys and values",
           replace={CACHE: [("        return self.keys, self.values", "        return k, v")]}),
    Answer("cache_concatenates_heads", "appends along the heads axis instead of the sequence axis",
           replace={CACHE: [("self.keys, k], dim=-2)", "self.keys, k], dim=1)"),
                            ("self.values, v], dim=-2)", "self.values, v], dim=1)")]}),
    Answer("cache_len_counts_updates", "len(cache) counts calls of update, not cached positions", source={CACHE: '''
class LayerCache:
    def __init__(self):
        self.keys = None
        self.values = None
        self.calls = 0

    def __len__(self):
        return self.calls

    def update(self, k, v):
        self.calls += 1
        if self.keys is None:
            self.keys, self.values = k, v
        else:
            self.keys = torch.cat([self.keys, k], dim=-2)
            self.values = torch.cat([self.values, v], dim=-2)
        return self.keys, self.values
'''}),
    # Task 5: one decoding step
    Answer("positions_not_offset", "gives the new tokens positions 0, 1, ... again instead of T, T+1, ...",
           replace={STEP: [("decoder.positions(decoder.embedding(new_ids), offset=cached)",
                            "decoder.positions(decoder.embedding(new_ids))")]}),
    Answer("mask_not_shifted", "uses an unshifted causal mask over the cached and new keys",
           replace={STEP: [(".tril(diagonal=cached)", ".tril()")]}),
    Answer("step_without_final_norm", "forgets the decoder's final norm in the cached path",
           replace={STEP: [("    if decoder.norm is not None:\n        x = decoder.norm(x)\n", "")]}),
    # Task 6: generation
    Answer("generate_recomputes_everything", "runs the whole prefix with fresh caches at every step (no reuse)",
           replace={GENERATE: [("decode_step(decoder, ids[:, -1:], memory, caches, memory_mask)",
                                "decode_step(decoder, ids, memory, [LayerCache() for _ in decoder.layers], memory_mask)")]}),
    Answer("generate_without_cache", "calls the decoder on the whole prefix at every step",
           replace={GENERATE: [("decode_step(decoder, ids[:, -1:], memory, caches, memory_mask)",
                                "decoder(ids, memory, None, memory_mask)")]}),
    Answer("generate_feeds_prefix_to_cache", "feeds the whole prefix into the same caches at every step",
           replace={GENERATE: [("decode_step(decoder, ids[:, -1:], memory, caches, memory_mask)",
                                "decode_step(decoder, ids, memory, caches, memory_mask)")]}),
    Answer("imports_the_reference", "imports the course's reference implementation", source={
        MASK: "from llm_foundations.decoder import causal_mask\n",
        LAYER: "from llm_foundations.decoder import DecoderLayer\n",
        DECODER: "from llm_foundations.decoder import Decoder\n",
        CACHE: "from llm_foundations.attention import KVCache as LayerCache\n",
    }),
]

ALTERNATIVES = [
    Answer("causal_mask_by_comparison", "compares position indices instead of calling tril", source={MASK: '''
def causal_mask(seq_len, device=None):
    position = torch.arange(seq_len, device=device)
    return position.unsqueeze(1) >= position.unsqueeze(0)  # query i (row) may see key j (column) when j <= i
'''}),
    Answer("decoder_layer_explicit_formulas", "writes the three sublayers out with nn.LayerNorm, no ResidualSublayer",
           source={LAYER: '''
class DecoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=True):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, memory, tgt_mask=None, memory_mask=None, cache=None):
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.drop(self.self_attn(h, h, h, tgt_mask, cache=cache))
            x = x + self.drop(self.cross_attn(self.norm2(x), memory, memory, memory_mask))
            return x + self.drop(self.ffn(self.norm3(x)))
        x = self.norm1(x + self.drop(self.self_attn(x, x, x, tgt_mask, cache=cache)))
        x = self.norm2(x + self.drop(self.cross_attn(x, memory, memory, memory_mask)))
        return self.norm3(x + self.drop(self.ffn(x)))
'''}),
    Answer("cache_preallocated_buffer", "writes into a preallocated buffer that doubles when full, no torch.cat",
           source={CACHE: '''
class LayerCache:
    def __init__(self):
        self.k_buffer = None
        self.v_buffer = None
        self.length = 0

    def __len__(self):
        return self.length

    def update(self, k, v):
        new_length = self.length + k.size(2)
        if self.k_buffer is None or new_length > self.k_buffer.size(2):
            capacity = max(8, 2 * new_length)
            k_buffer = k.new_zeros(k.size(0), k.size(1), capacity, k.size(3))
            v_buffer = v.new_zeros(v.size(0), v.size(1), capacity, v.size(3))
            if self.k_buffer is not None:
                k_buffer[:, :, :self.length] = self.k_buffer[:, :, :self.length]
                v_buffer[:, :, :self.length] = self.v_buffer[:, :, :self.length]
            self.k_buffer, self.v_buffer = k_buffer, v_buffer
        self.k_buffer[:, :, self.length:new_length] = k
        self.v_buffer[:, :, self.length:new_length] = v
        self.length = new_length
        return self.k_buffer[:, :, :new_length], self.v_buffer[:, :, :new_length]
'''}),
    Answer("positions_by_hand", "adds the sinusoidal table itself in Decoder and decode_step, builds masks with arange",
           source={DECODER: '''
class Decoder(nn.Module):
    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers, dropout=0.0, max_len=512, norm_first=True):
        super().__init__()
        self.max_len, self.d_model = max_len, d_model
        self.embedding = TokenEmbedding(vocab_size, d_model)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(DecoderLayer(d_model, n_heads, d_ff, dropout, norm_first) for _ in range(n_layers))
        self.norm = LayerNorm(d_model) if norm_first else None

    def forward(self, tgt_ids, memory, tgt_mask=None, memory_mask=None):
        length = tgt_ids.shape[1]
        if length > self.max_len:
            raise ValueError("the target is longer than max_len")
        position = torch.arange(length, device=tgt_ids.device)
        causal = position[None, :] <= position[:, None]
        tgt_mask = causal if tgt_mask is None else torch.logical_and(tgt_mask, causal)
        pe = sinusoidal_positional_encoding(length, self.d_model, device=tgt_ids.device)
        x = self.dropout(self.embedding(tgt_ids) + pe)
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask)
        return x if self.norm is None else self.norm(x)
''', STEP: '''
def decode_step(decoder, new_ids, memory, caches, memory_mask=None):
    cached, length = len(caches[0]), new_ids.shape[1]
    x = decoder.embedding(new_ids)
    x = x + sinusoidal_positional_encoding(cached + length, x.shape[-1], device=x.device)[cached:]
    query_position = cached + torch.arange(length, device=x.device)
    key_position = torch.arange(cached + length, device=x.device)
    mask = None if length == 1 else key_position[None, :] <= query_position[:, None]  # one new token sees all
    for i, layer in enumerate(decoder.layers):
        x = layer(x, memory, tgt_mask=mask, memory_mask=memory_mask, cache=caches[i])
    if getattr(decoder, "norm", None) is not None:
        x = decoder.norm(x)
    return x
'''}),
    Answer("generate_with_token_list", "keeps the generated tokens in a list and concatenates once", source={GENERATE: '''
def greedy_generate(decoder, head, memory, bos_id, steps, memory_mask=None):
    caches = [LayerCache() for _ in range(len(decoder.layers))]
    token = torch.full((memory.shape[0], 1), bos_id, dtype=torch.long, device=memory.device)
    tokens = [token]
    for _ in range(steps):
        logits = head(decode_step(decoder, token, memory, caches, memory_mask=memory_mask))[:, -1]  # (B, V)
        token = logits.argmax(-1).unsqueeze(-1)
        tokens.append(token)
    return torch.cat(tokens, dim=1)
'''}),
]
