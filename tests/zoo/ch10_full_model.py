"""Bug zoo for exercise 10 (the full model and the student's own GPT): classic mistakes that must lose
points, and unusual but correct answers that must keep full marks."""

from submissions import Answer

ASSIGNMENT = "10_full_model"

MODEL = "Transformer"
ATTN = "CausalSelfAttention"
BLOCK = "Block"
GPT = "GPT"
LOSS = "lm_loss"
SAMPLE = "sample_next_token"
GENERATE = "generate"

#: The graded training run (about 20 CPU seconds) is left out for mistakes, which all lose points
#: elsewhere; the correct alternatives still run it.
SLOW_TESTS = {"test_training"}

FORWARD = "        return self.generator(self.decode(tgt_ids, memory, tgt_mask, src_mask))  # (B, L_t, V_t)\n"
TIE_DECODER = "            self.decoder.embedding.weight = self.encoder.embedding.weight\n"
TIE_GENERATOR = "            self.generator.weight = self.encoder.embedding.weight\n"
RAISE = ("        if share_embeddings and src_vocab_size != tgt_vocab_size:\n"
         "            raise ValueError(f\"tied embeddings need one vocabulary, got {src_vocab_size} and {tgt_vocab_size} tokens\")\n")
MASK = '        scores = scores.masked_fill(key_pos > query_pos, float("-inf"))  # no key after its query\n'
CACHE_K = '                k = torch.cat([cache["k"], k], dim=2)  # (B, H, T + L, d_head)\n'
CACHE_V = '                v = torch.cat([cache["v"], v], dim=2)\n'
FFN = '        return x + self.linear2(F.gelu(self.linear1(self.norm2(x)), approximate="tanh"))\n'
DRAW = "    probs = logits.softmax(dim=-1)\n    return torch.multinomial"
STEP = "            if use_cache and caches is not None and cached < model.max_len:\n"

MISTAKES = [
    # Task 1: the Transformer (the course's parts)
    Answer("generator_with_bias", "gives the generator a bias",
           replace={MODEL: [("nn.Linear(d_model, tgt_vocab_size, bias=False)", "nn.Linear(d_model, tgt_vocab_size)")]}),
    Answer("memory_mask_forgotten", "does not pass the source mask to the decoder's cross-attention",
           replace={MODEL: [(FORWARD, FORWARD.replace("tgt_mask, src_mask)", "tgt_mask)"))]}),
    Answer("tgt_mask_dropped", "does not pass a given tgt_mask on to the decoder",
           replace={MODEL: [("        return self.decoder(tgt_ids, memory, tgt_mask, memory_mask)",
                             "        return self.decoder(tgt_ids, memory, None, memory_mask)")]}),
    Answer("not_tied", "ignores share_embeddings (three separate matrices)",
           replace={MODEL: [(TIE_DECODER, "            pass\n"), (TIE_GENERATOR, "")]}),
    Answer("ties_by_copying", "copies the embedding's values instead of sharing the Parameter",
           replace={MODEL: [(TIE_DECODER, "            self.decoder.embedding.weight.data.copy_(self.encoder.embedding.weight.data)\n"),
                            (TIE_GENERATOR, "            self.generator.weight.data.copy_(self.encoder.embedding.weight.data)\n")]}),
    Answer("no_value_error", "ties embeddings of different vocabularies without raising ValueError",
           replace={MODEL: [(RAISE, "")]}),
    Answer("imports_the_reference", "imports the course's reference Transformer",
           source={MODEL: "from llm_foundations.model import Transformer\n"}),
    # Task 2: causal self-attention and its cache
    Answer("attention_not_causal", "forgets the causal mask", replace={ATTN: [(MASK, "")]}),
    Answer("mask_hides_diagonal", "masks key_pos >= query_pos (a token cannot see itself)",
           replace={ATTN: [(MASK, MASK.replace("key_pos > query_pos", "key_pos >= query_pos"))]}),
    Answer("mask_upper_triangle", "hides the earlier keys instead of the later ones",
           replace={ATTN: [(MASK, MASK.replace("key_pos > query_pos", "key_pos < query_pos"))]}),
    Answer("no_scale", "does not divide the scores by sqrt(d_head)",
           replace={ATTN: [(" / math.sqrt(d_head)  # (B, H, L, T + L)", "  # (B, H, L, T + L)")]}),
    Answer("scale_by_d_model", "divides the scores by sqrt(d_model) instead of sqrt(d_head)",
           replace={ATTN: [(" / math.sqrt(d_head)  # (B, H, L, T + L)", " / math.sqrt(d_model)")]}),
    Answer("softmax_over_queries", "takes the softmax over the queries (dim=-2)",
           replace={ATTN: [("scores.softmax(dim=-1)", "scores.softmax(dim=-2)")]}),
    Answer("cache_not_appended", "stores the new keys and values in the cache without the cached ones",
           replace={ATTN: [(CACHE_K, '                k = torch.cat([cache["k"], k], dim=2)[:, :, -length:]\n'),
                           (CACHE_V, '                v = torch.cat([cache["v"], v], dim=2)[:, :, -length:]\n'),
                           ("        query_pos = torch.arange(cached, cached + length", "        query_pos = torch.arange(length"),
                           ("        key_pos = torch.arange(cached + length", "        key_pos = torch.arange(length")]}),
    Answer("cache_positions_not_offset", "masks the new queries as if they were positions 0..L-1 under the cache",
           replace={ATTN: [("        query_pos = torch.arange(cached, cached + length", "        query_pos = torch.arange(length")]}),
    Answer("attention_calls_pytorch", "uses F.scaled_dot_product_attention", replace={ATTN: [
        ("        scores = q @ k.transpose(-2, -1) / math.sqrt(d_head)  # (B, H, L, T + L)\n", "        scores = None\n"),
        ("        out = scores.softmax(dim=-1) @ v  # (B, H, L, d_head)\n",
         "        out = F.scaled_dot_product_attention(q, k, v, attn_mask=~(key_pos > query_pos))\n"),
        (MASK, "")]}),
    # Task 3: the block and the model
    Answer("post_ln", "normalises after each residual sum (post-LN)", replace={BLOCK: [
        ("        x = x + self.attn(self.norm1(x), cache)\n", "        x = self.norm1(x + self.attn(x, cache))\n"),
        (FFN, '        return self.norm2(x + self.linear2(F.gelu(self.linear1(x), approximate="tanh")))\n')]}),
    Answer("relu_ffn", "uses ReLU in the feed-forward network",
           replace={BLOCK: [(FFN, "        return x + self.linear2(torch.relu(self.linear1(self.norm2(x))))\n")]}),
    Answer("head_not_tied", "leaves the head untied from the embedding",
           replace={GPT: [("        self.head.weight = self.embedding.weight  # tied: one Parameter\n", "")]}),
    Answer("no_final_norm", "applies the head without the final LayerNorm",
           replace={GPT: [("        return self.head(self.norm(x))  # (B, L, V)", "        return self.head(x)")]}),
    Answer("embedding_scaled", "multiplies the embedding by sqrt(d_model), as the original Transformer",
           replace={GPT: [("self.embedding(ids) + ", "self.embedding(ids) * math.sqrt(self.embedding.embedding_dim) + ")]}),
    Answer("positions_not_offset", "gives the new tokens positions 0..L-1 under the cache",
           replace={GPT: [("torch.arange(cached, cached + ids.size(1)", "torch.arange(ids.size(1)")]}),
    Answer("gpt_imports_reference", "subclasses the course's GPT", source={GPT: '''
import llm_foundations.model


class GPT(llm_foundations.model.GPT):
    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers, max_len):
        super().__init__(vocab_size, d_model, n_heads, d_ff, n_layers, max_len, activation="gelu_tanh")
'''}),
    # Task 4: the loss
    Answer("loss_not_shifted", "scores the logits of ids[:, :-1] on ids[:, :-1]",
           replace={LOSS: [("ids[:, 1:].flatten()", "ids[:, :-1].flatten()")]}),
    Answer("loss_reads_everything", "runs the model on all of ids and scores position t on token t",
           replace={LOSS: [("logits = model(ids[:, :-1])", "logits = model(ids)[:, 1:]")]}),
    Answer("loss_summed", "sums the token losses",
           replace={LOSS: [("ids[:, 1:].flatten())", "ids[:, 1:].flatten(), reduction=\"sum\")")]}),
    # Task 5: sampling
    Answer("temperature_after_softmax", "divides the probabilities by the temperature (after the softmax)",
           replace={SAMPLE: [("    logits = logits / temperature\n", ""),
                             (DRAW, "    probs = logits.softmax(dim=-1) / temperature\n    return torch.multinomial")]}),
    Answer("top_k_off_by_one", "keeps only the scores above the k-th (k - 1 tokens)",
           replace={SAMPLE: [("logits.masked_fill(logits < kth", "logits.masked_fill(logits <= kth")]}),
    Answer("top_p_inclusive", "drops a token once the mass up to and including it reaches p",
           replace={SAMPLE: [("drop_sorted = before >= top_p", "drop_sorted = sorted_probs.cumsum(dim=-1) >= top_p")]}),
    Answer("top_p_before_top_k", "applies top-p before top-k", replace={SAMPLE: [
        ("    if top_k is not None and top_k < logits.size(-1):\n        kth = logits.topk(top_k, dim=-1).values[..., -1:]  # (B, 1): the k-th largest score\n        logits = logits.masked_fill(logits < kth, float(\"-inf\"))\n", ""),
        (DRAW, "    if top_k is not None and top_k < logits.size(-1):\n        kth = logits.topk(top_k, dim=-1).values[..., -1:]\n"
               "        logits = logits.masked_fill(logits < kth, float(\"-inf\"))\n" + DRAW)]}),
    # Task 6: generate
    Answer("generate_no_crop", "never crops the context to max_len",
           replace={GENERATE: [("context = ids[:, -model.max_len:]", "context = ids")]}),
    Answer("generate_ignores_cache", "runs the whole window at every step (no cache)",
           replace={GENERATE: [(STEP, "            if False:\n")]}),
    Answer("generate_window_never_slides", "feeds one token through the cache even past max_len",
           replace={GENERATE: [(STEP, "            if use_cache and caches is not None:\n")]}),
    Answer("generate_first_position", "samples from the logits of the first position",
           replace={GENERATE: [("logits[:, -1]", "logits[:, 0]")]}),
    Answer("generate_mode_not_restored", "leaves the model in eval mode",
           replace={GENERATE: [("    model.train(was_training)\n", "")]}),
    Answer("generate_calls_chapter7", "samples with chapter 7's sample_next_token", replace={GENERATE: [
        ("    was_training = model.training\n", "    from llm_foundations.sampling import sample_next_token\n    was_training = model.training\n")]}),
]

ATTN_EINSUM = '''
class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads:
            raise ValueError("n_heads must divide d_model")
        self.h = n_heads
        self.w_qkv = nn.Linear(d_model, 3 * d_model)  # fused: q, k, v in this order
        self.w_o = nn.Linear(d_model, d_model)

    def forward(self, x, cache=None):
        b, n, d = x.shape
        q, k, v = self.w_qkv(x).split(d, dim=-1)
        q, k, v = (t.reshape(b, n, self.h, d // self.h).permute(0, 2, 1, 3) for t in (q, k, v))
        past = 0
        if cache is not None:
            if cache:
                past = cache["k"].shape[2]
                k, v = torch.cat((cache["k"], k), 2), torch.cat((cache["v"], v), 2)
            cache.update(k=k, v=v)
        s = torch.einsum("bhqd,bhkd->bhqk", q, k) * (d // self.h) ** -0.5
        allowed = torch.ones(n, past + n, dtype=torch.bool, device=x.device).tril(diagonal=past)
        s = torch.where(allowed, s, torch.tensor(float("-inf"), dtype=s.dtype, device=s.device))
        o = torch.einsum("bhqk,bhkd->bhqd", torch.softmax(s, -1), v)
        return self.w_o(o.permute(0, 2, 1, 3).reshape(b, n, d))
'''

ATTN_LOOP_F64 = '''
class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"{d_model} is not a multiple of {n_heads}")
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        for name in ("w_q", "w_k", "w_v", "w_o"):
            setattr(self, name, nn.Linear(d_model, d_model))

    def forward(self, x, cache=None):
        B, L, _ = x.shape
        split = lambda t: t.view(B, L, self.n_heads, self.d_head).transpose(1, 2)
        q, k, v = split(self.w_q(x)), split(self.w_k(x)), split(self.w_v(x))
        if cache is not None and "k" in cache:
            k = torch.cat([cache["k"], k], dim=2)
            v = torch.cat([cache["v"], v], dim=2)
        if cache is not None:
            cache["k"], cache["v"] = k, v
        T = k.size(2) - L  # tokens cached before this call
        later = torch.arange(T + L, device=x.device)[None, :] > torch.arange(T, T + L, device=x.device)[:, None]
        heads = []
        for h in range(self.n_heads):  # one head at a time, in float64
            qh, kh, vh = q[:, h].double(), k[:, h].double(), v[:, h].double()
            s = (qh @ kh.transpose(1, 2)) / math.sqrt(self.d_head)
            heads.append((torch.softmax(s.masked_fill(later, float("-inf")), dim=-1) @ vh).to(x.dtype))
        return self.w_o(torch.cat(heads, dim=-1))
'''

BLOCK_STYLE = '''
class Block(nn.Module):
    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def forward(self, x, cache=None):
        h = self.attn(self.norm1(x), cache=cache)
        x = x + h
        h = self.linear1(self.norm2(x))
        h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))  # GPT-2's GELU by hand
        return x + self.linear2(h)
'''

GPT_STYLE = '''
class GPT(nn.Module):
    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers, max_len):
        super().__init__()
        self.max_len = max_len
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList()
        for _ in range(n_layers):
            self.blocks.append(Block(d_model, n_heads, d_ff))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.embedding.weight
        gpt2_init(self)

    def new_caches(self):
        return [dict() for _ in range(len(self.blocks))]

    def forward(self, ids, caches=None):
        start = 0
        if caches is not None and len(caches[0]) > 0:
            start = caches[0]["k"].shape[-2]
        x = self.embedding(ids) + self.positions.weight[start:start + ids.shape[1]]
        for block, cache in zip(self.blocks, caches if caches is not None else [None] * len(self.blocks)):
            x = block(x, cache)
        return F.linear(self.norm(x), self.embedding.weight)
'''

LOSS_GATHER = '''
def lm_loss(model, ids):
    inputs, targets = ids[:, :-1], ids[:, 1:]
    log_probs = model(inputs).float().log_softmax(dim=-1)
    return -log_probs.gather(-1, targets.unsqueeze(-1)).mean()
'''

LOSS_NLL = '''
def lm_loss(model, ids):
    logits = model(ids[:, :-1]).double()
    return F.nll_loss(F.log_softmax(logits, -1).transpose(1, 2), ids[:, 1:]).float()
'''

SAMPLE_SORTED = '''
def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    scores = logits.float()
    if temperature == 0:
        return scores.argmax(-1)
    scores = scores / temperature
    V = scores.shape[-1]
    if top_k is not None and top_k < V:
        kth = scores.sort(dim=-1, descending=True).values[:, top_k - 1 : top_k]
        scores = torch.where(scores >= kth, scores, torch.full_like(scores, -float("inf")))
    if top_p is not None:
        p = torch.softmax(scores, -1)
        ranked, idx = torch.sort(p, dim=-1, descending=True, stable=True)
        mass_before = torch.cumsum(ranked, -1) - ranked
        keep_ranked = mass_before < top_p
        keep = torch.empty_like(keep_ranked)
        keep.scatter_(-1, idx, keep_ranked)
        scores = scores.masked_fill(~keep, -float("inf"))
    return torch.multinomial(torch.softmax(scores, -1), 1, generator=generator)[:, 0]
'''

GENERATE_WHILE = '''
def generate(model, ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None, use_cache=True):
    mode = model.training
    model.eval()
    try:
        with torch.no_grad():
            caches, n_cached = None, 0
            target = ids.shape[1] + max_new_tokens
            while ids.shape[1] < target:
                window = ids[:, -model.max_len:]
                if not use_cache:
                    logits = model(window)
                elif caches is None or n_cached == model.max_len:
                    caches = model.new_caches()
                    logits = model(window, caches=caches)
                    n_cached = window.shape[1]
                else:
                    logits = model(ids[:, -1:], caches=caches)
                    n_cached = n_cached + 1
                token = sample_next_token(logits[:, -1, :], temperature=temperature, top_k=top_k, top_p=top_p,
                                          generator=generator)
                ids = torch.cat((ids, token.unsqueeze(1)), dim=1)
        return ids
    finally:
        model.train(mode)
'''

TRANSFORMER_DICT = '''
class Transformer(nn.Module):
    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=512, n_heads=8, d_ff=2048, n_layers=6, dropout=0.1,
                 max_len=512, norm_first=True, share_embeddings=False):
        super().__init__()
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError("one vocabulary is needed to share the embeddings")
        settings = dict(d_model=d_model, n_heads=n_heads, d_ff=d_ff, n_layers=n_layers, dropout=dropout,
                        max_len=max_len, norm_first=norm_first)
        self.parts = nn.ModuleDict({
            "generator": nn.Linear(d_model, tgt_vocab_size, bias=False),
            "decoder": Decoder(tgt_vocab_size, **settings),
            "encoder": Encoder(src_vocab_size, **settings),
        })
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.xavier_uniform_(p)
        if share_embeddings:
            shared = self.parts["encoder"].embedding.weight
            self.parts["decoder"].embedding.weight = shared
            self.parts["generator"].weight = shared

    @property
    def encoder(self):
        return self.parts["encoder"]

    @property
    def decoder(self):
        return self.parts["decoder"]

    @property
    def generator(self):
        return self.parts["generator"]

    def encode(self, src_ids, src_mask=None):
        return self.parts["encoder"](src_ids, src_mask=src_mask)

    def decode(self, tgt_ids, memory, tgt_mask=None, memory_mask=None):
        return self.parts["decoder"](tgt_ids, memory, tgt_mask=tgt_mask, memory_mask=memory_mask)

    def forward(self, src_ids, tgt_ids, src_mask=None, tgt_mask=None):
        hidden = self.decode(tgt_ids, self.encode(src_ids, src_mask), tgt_mask, src_mask)
        return self.parts["generator"](hidden)
'''

TRANSFORMER_SHARED = '''
class Transformer(nn.Module):
    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=512, n_heads=8, d_ff=2048, n_layers=6, dropout=0.1,
                 max_len=512, norm_first=True, share_embeddings=False):
        super().__init__()
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError("share_embeddings=True needs src_vocab_size == tgt_vocab_size")
        self.add_module("encoder", Encoder(src_vocab_size, d_model, n_heads, d_ff, n_layers, dropout=dropout,
                                           max_len=max_len, norm_first=norm_first))
        self.add_module("decoder", Decoder(tgt_vocab_size, d_model, n_heads, d_ff, n_layers, dropout=dropout,
                                           max_len=max_len, norm_first=norm_first))
        self.add_module("generator", nn.Linear(d_model, tgt_vocab_size, bias=False))
        if share_embeddings:
            table = nn.Parameter(torch.empty(src_vocab_size, d_model))
            self.encoder.embedding.weight = table
            self.decoder.embedding.weight = table
            self.generator.weight = table
        for p in self.parameters():
            if p.ndim >= 2:
                nn.init.xavier_uniform_(p)

    def encode(self, src_ids, src_mask=None):
        return self.encoder(src_ids, src_mask)

    def decode(self, tgt_ids, memory, tgt_mask=None, memory_mask=None):
        return self.decoder(tgt_ids, memory, tgt_mask, memory_mask)

    def forward(self, src_ids, tgt_ids, src_mask=None, tgt_mask=None):
        h = self.decoder(tgt_ids, self.encoder(src_ids, src_mask), tgt_mask, src_mask)
        return F.linear(h, self.generator.weight)
'''

ALTERNATIVES = [
    Answer("fused_qkv_einsum", "Transformer parts in an nn.ModuleDict behind properties; attention with one fused w_qkv, "
           "einsum and a tril(diagonal=T) mask via torch.where; the loss by log_softmax and gather",
           source={MODEL: TRANSFORMER_DICT, ATTN: ATTN_EINSUM, LOSS: LOSS_GATHER}),
    Answer("head_loop_float64", "Transformer with a shared table it creates itself and F.linear; attention one head "
           "at a time in float64; the block with GPT-2's GELU written out; top-k via sort, top-p via scatter_",
           source={MODEL: TRANSFORMER_SHARED, ATTN: ATTN_LOOP_F64, BLOCK: BLOCK_STYLE, SAMPLE: SAMPLE_SORTED}),
    Answer("gpt_other_style", "GPT reading the positions table by slicing and the head through F.linear; the loss "
           "with nll_loss in float64; generate as a while loop with try/finally",
           source={GPT: GPT_STYLE, LOSS: LOSS_NLL, GENERATE: GENERATE_WHILE}),
    Answer("every_alternative", "every alternative at once: fused einsum attention, hand-written GELU, sliced "
           "positions, sorted sampling, while-loop generate",
           source={ATTN: ATTN_EINSUM, BLOCK: BLOCK_STYLE, GPT: GPT_STYLE, SAMPLE: SAMPLE_SORTED,
                   GENERATE: GENERATE_WHILE, LOSS: LOSS_NLL}),
]
