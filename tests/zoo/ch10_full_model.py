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


# Blind answers (issue 15): five GPTs written from the released student notebook alone, by someone who had not
# seen the solution, the hidden tests or the checks. All five passed every visible test as written.
BLIND = [
    Answer("blind_loops", "explicit Python loop over heads (slices of q/k/v), torch.where mask, sort-based top-k/top-p", source={
        "Transformer": '''class Transformer(nn.Module):
    """Encoder, decoder and a bias-free generator; share_embeddings ties the three (V, d_model) matrices."""

    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=512, n_heads=8, d_ff=2048, n_layers=6, dropout=0.1,
                 max_len=512, norm_first=True, share_embeddings=False):
        super().__init__()
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError(f"tied embeddings need one vocabulary, got {src_vocab_size} and {tgt_vocab_size}")
        self.encoder = Encoder(src_vocab_size, d_model, n_heads, d_ff, n_layers, dropout, max_len, norm_first)
        self.decoder = Decoder(tgt_vocab_size, d_model, n_heads, d_ff, n_layers, dropout, max_len, norm_first)
        self.generator = nn.Linear(d_model, tgt_vocab_size, bias=False)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        if share_embeddings:
            self.decoder.embedding.weight = self.encoder.embedding.weight
            self.generator.weight = self.encoder.embedding.weight

    def encode(self, src_ids, src_mask=None):
        return self.encoder(src_ids, src_mask)

    def decode(self, tgt_ids, memory, tgt_mask=None, memory_mask=None):
        return self.decoder(tgt_ids, memory, tgt_mask, memory_mask)

    def forward(self, src_ids, tgt_ids, src_mask=None, tgt_mask=None):
        memory = self.encode(src_ids, src_mask)
        return self.generator(self.decode(tgt_ids, memory, tgt_mask, src_mask))
''',
        "CausalSelfAttention": '''class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with a KV cache (chapters 4 and 9)."""

    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)

    def forward(self, x, cache=None):
        B, L, _ = x.shape
        q, k, v = self.w_q(x), self.w_k(x), self.w_v(x)
        heads_k, heads_v = [], []
        for h in range(self.n_heads):
            sl = slice(h * self.d_head, (h + 1) * self.d_head)
            heads_k.append(k[:, :, sl])
            heads_v.append(v[:, :, sl])
        k_all = torch.stack(heads_k, dim=1)  # (B, H, L, d_h)
        v_all = torch.stack(heads_v, dim=1)
        past = 0
        if cache is not None:
            if "k" in cache:
                past = cache["k"].shape[2]
                k_all = torch.cat([cache["k"], k_all], dim=2)
                v_all = torch.cat([cache["v"], v_all], dim=2)
            cache["k"] = k_all
            cache["v"] = v_all
        total = k_all.shape[2]
        query_pos = torch.arange(past, past + L, device=x.device)[:, None]
        key_pos = torch.arange(total, device=x.device)[None, :]
        hide = key_pos > query_pos  # (L, T + L)
        outs = []
        for h in range(self.n_heads):
            qh = q[:, :, h * self.d_head:(h + 1) * self.d_head]  # (B, L, d_h)
            scores = qh @ k_all[:, h].transpose(1, 2) / math.sqrt(self.d_head)
            scores = torch.where(hide, torch.full_like(scores, float("-inf")), scores)
            outs.append(torch.softmax(scores, dim=-1) @ v_all[:, h])
        return self.w_o(torch.cat(outs, dim=-1))
''',
        "Block": '''class Block(nn.Module):
    """A pre-LN GPT block: x + attn(norm1(x)), then x + ffn(norm2(x))."""

    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x, cache=None):
        x = x + self.attn(self.norm1(x), cache)
        x = x + self.linear2(F.gelu(self.linear1(self.norm2(x)), approximate="tanh"))
        return x
''',
        "GPT": '''class GPT(nn.Module):
    """A decoder-only language model: token and learned position embeddings, pre-LN blocks, a final
    LayerNorm and an output layer tied to the token embedding."""

    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers, max_len):
        super().__init__()
        self.max_len = max_len
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList([Block(d_model, n_heads, d_ff) for _ in range(n_layers)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.embedding.weight
        gpt2_init(self)  # GPT-2's initialisation (given): keep this line last

    def new_caches(self):
        return [{} for _ in self.blocks]

    def forward(self, ids, caches=None):
        B, L = ids.shape
        past = 0
        if caches is not None and "k" in caches[0]:
            past = caches[0]["k"].shape[2]
        pos = torch.arange(past, past + L, device=ids.device)
        x = self.embedding(ids) + self.positions(pos)
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i])
        return self.head(self.norm(x))
''',
        "lm_loss": '''def lm_loss(model, ids):
    """Mean next-token cross-entropy: the model reads ids[:, :-1] and predicts ids[:, 1:]."""
    logits = model(ids[:, :-1]).float()
    targets = ids[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
''',
        "sample_next_token": '''def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """One token per row of logits (B, V): temperature, then top-k, then top-p, then a draw; 0 is greedy."""
    logits = logits.float()
    if temperature == 0:
        return logits.argmax(dim=-1).long()
    logits = logits / temperature
    if top_k is not None:
        k = min(int(top_k), logits.size(-1))
        kth = torch.sort(logits, dim=-1, descending=True).values[:, k - 1:k]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        probs = torch.softmax(logits, dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs
        keep_sorted = before < top_p
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        logits = logits.masked_fill(~keep, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1).long()
''',
        "generate": '''def generate(model, ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None, use_cache=True):
    """Append max_new_tokens sampled tokens to each row of ids (B, L); the context is cropped to model.max_len."""
    was_training = model.training
    model.eval()
    ids = ids.long()
    try:
        with torch.no_grad():
            caches, cached = None, 0
            for _ in range(max_new_tokens):
                if not use_cache:
                    logits = model(ids[:, -model.max_len:], caches=None)
                elif caches is not None and cached < model.max_len:
                    logits = model(ids[:, -1:], caches=caches)
                    cached += 1
                else:
                    caches = model.new_caches()
                    context = ids[:, -model.max_len:]
                    logits = model(context, caches=caches)
                    cached = context.size(1)
                nxt = sample_next_token(logits[:, -1], temperature, top_k, top_p, generator)
                ids = torch.cat([ids, nxt.to(ids.device)[:, None]], dim=1)
    finally:
        model.train(was_training)
    return ids
''',
    }),
    Answer("blind_einsum_fused", "fused w_qkv, einsum attention, masked_fill; tie-then-init; log_softmax+gather loss; inverse-permutation top-p", source={
        "Transformer": '''class Transformer(nn.Module):
    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=512, n_heads=8, d_ff=2048, n_layers=6, dropout=0.1,
                 max_len=512, norm_first=True, share_embeddings=False):
        super().__init__()
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError("share_embeddings=True needs src_vocab_size == tgt_vocab_size")
        settings = (d_model, n_heads, d_ff, n_layers, dropout, max_len, norm_first)
        self.encoder = Encoder(src_vocab_size, *settings)
        self.decoder = Decoder(tgt_vocab_size, *settings)
        self.generator = nn.Linear(d_model, tgt_vocab_size, bias=False)
        if share_embeddings:
            table = self.encoder.embedding.weight
            self.decoder.embedding.weight = table
            self.generator.weight = table
        with torch.no_grad():
            for name, param in self.named_parameters():  # a tied Parameter appears once
                if param.ndim >= 2:
                    nn.init.xavier_uniform_(param)

    def encode(self, src_ids, src_mask=None):
        return self.encoder(src_ids, src_mask=src_mask)

    def decode(self, tgt_ids, memory, tgt_mask=None, memory_mask=None):
        return self.decoder(tgt_ids, memory, tgt_mask=tgt_mask, memory_mask=memory_mask)

    def forward(self, src_ids, tgt_ids, src_mask=None, tgt_mask=None):
        hidden = self.decode(tgt_ids, self.encode(src_ids, src_mask), tgt_mask=tgt_mask, memory_mask=src_mask)
        return self.generator(hidden)
''',
        "CausalSelfAttention": '''class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        self.h = n_heads
        self.dh = d_model // n_heads
        self.w_qkv = nn.Linear(d_model, 3 * d_model)
        self.w_o = nn.Linear(d_model, d_model)

    def forward(self, x, cache=None):
        b, l, d = x.shape
        qkv = self.w_qkv(x).view(b, l, 3, self.h, self.dh)
        q, k, v = (qkv[:, :, i].permute(0, 2, 1, 3) for i in range(3))  # each (b, h, l, dh)
        t = 0
        if cache is not None:
            if cache:
                t = cache["k"].size(2)
                k = torch.cat((cache["k"], k), dim=2)
                v = torch.cat((cache["v"], v), dim=2)
            cache["k"], cache["v"] = k, v
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * self.dh ** -0.5
        qpos = torch.arange(t, t + l, device=x.device).view(-1, 1)
        kpos = torch.arange(k.size(2), device=x.device).view(1, -1)
        scores = scores.masked_fill(kpos > qpos, float("-inf"))
        weights = scores.softmax(dim=-1)
        out = torch.einsum("bhqk,bhkd->bqhd", weights, v).reshape(b, l, d)
        return self.w_o(out)
''',
        "Block": '''class Block(nn.Module):
    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)

    def ffn(self, x):
        return self.linear2(F.gelu(self.linear1(x), approximate="tanh"))

    def forward(self, x, cache=None):
        h = x + self.attn(self.norm1(x), cache=cache)
        return h + self.ffn(self.norm2(h))
''',
        "GPT": '''class GPT(nn.Module):
    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers, max_len):
        super().__init__()
        self.max_len = max_len
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.embedding.weight
        gpt2_init(self)  # GPT-2's initialisation (given): keep this line last

    def new_caches(self):
        return [dict() for _ in range(len(self.blocks))]

    def forward(self, ids, caches=None):
        start = 0
        if caches is not None and len(caches) and caches[0].get("k") is not None:
            start = caches[0]["k"].size(-2)
        if start + ids.size(1) > self.max_len:
            raise ValueError(f"{start} cached + {ids.size(1)} new tokens exceed max_len={self.max_len}")
        x = self.embedding(ids) + self.positions.weight[start:start + ids.size(1)]
        for block, cache in zip(self.blocks, caches if caches is not None else [None] * len(self.blocks)):
            x = block(x, cache)
        return self.head(self.norm(x))
''',
        "lm_loss": '''def lm_loss(model, ids):
    inputs, targets = ids[:, :-1], ids[:, 1:]
    logits = model(inputs).float()
    logp = F.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return -picked.mean()
''',
        "sample_next_token": '''def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    scores = logits.float()
    if temperature == 0:
        return torch.argmax(scores, dim=-1).to(torch.long)
    scores = scores / temperature
    neg_inf = torch.tensor(float("-inf"), device=scores.device)
    if top_k is not None and top_k < scores.shape[-1]:
        threshold = scores.topk(top_k, dim=-1).values[:, -1].unsqueeze(-1)
        scores = torch.where(scores >= threshold, scores, neg_inf)
    if top_p is not None:
        p = F.softmax(scores, dim=-1)
        p_sorted, idx = torch.sort(p, dim=-1, descending=True, stable=True)
        mass_before = torch.cat([torch.zeros_like(p_sorted[:, :1]), p_sorted.cumsum(-1)[:, :-1]], dim=-1)
        inverse = idx.argsort(dim=-1)
        keep = (mass_before < top_p).gather(-1, inverse)
        scores = torch.where(keep, scores, neg_inf)
    probs = F.softmax(scores, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)[:, 0]
''',
        "generate": '''def generate(model, ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None, use_cache=True):
    mode = model.training
    model.eval()
    out = ids
    n_cached = None  # None: no usable caches
    caches = None
    with torch.no_grad():
        step = 0
        while step < max_new_tokens:
            window = out[:, -model.max_len:]
            if use_cache:
                if n_cached is None or n_cached >= model.max_len:
                    caches = model.new_caches()
                    logits = model(window, caches=caches)
                    n_cached = window.shape[1]
                else:
                    logits = model(out[:, -1:], caches=caches)
                    n_cached = n_cached + 1
            else:
                logits = model(window, caches=None)
            token = sample_next_token(logits[:, -1, :], temperature=temperature, top_k=top_k, top_p=top_p,
                                      generator=generator)
            out = torch.cat((out, token.view(-1, 1).to(out)), dim=1)
            step += 1
    model.train(mode)
    return out.long()
''',
    }),
    Answer("blind_float64", "three projections computed in float64 via F.linear on .double() weights, additive -inf mask matrix M, cast back; kthvalue top-k; sorted-logit scatter top-p; sum/N loss", source={
        "Transformer": '''class Transformer(nn.Module):
    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=512, n_heads=8, d_ff=2048, n_layers=6, dropout=0.1,
                 max_len=512, norm_first=True, share_embeddings=False):
        super().__init__()
        if share_embeddings:
            if src_vocab_size != tgt_vocab_size:
                raise ValueError("cannot tie embeddings of different vocabularies")
        self.encoder = Encoder(vocab_size=src_vocab_size, d_model=d_model, n_heads=n_heads, d_ff=d_ff,
                               n_layers=n_layers, dropout=dropout, max_len=max_len, norm_first=norm_first)
        self.decoder = Decoder(vocab_size=tgt_vocab_size, d_model=d_model, n_heads=n_heads, d_ff=d_ff,
                               n_layers=n_layers, dropout=dropout, max_len=max_len, norm_first=norm_first)
        self.generator = nn.Linear(d_model, tgt_vocab_size, bias=False)
        for module in self.modules():
            for p in module.parameters(recurse=False):
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        if share_embeddings:
            self.generator.weight = self.encoder.embedding.weight
            self.decoder.embedding.weight = self.generator.weight

    def encode(self, src_ids, src_mask=None):
        memory = self.encoder(src_ids, src_mask)
        return memory

    def decode(self, tgt_ids, memory, tgt_mask=None, memory_mask=None):
        hidden = self.decoder(tgt_ids, memory, tgt_mask, memory_mask)
        return hidden

    def forward(self, src_ids, tgt_ids, src_mask=None, tgt_mask=None):
        memory = self.encode(src_ids, src_mask)
        hidden = self.decode(tgt_ids, memory, tgt_mask, src_mask)
        logits = self.generator(hidden)
        return logits
''',
        "CausalSelfAttention": '''class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"{d_model} % {n_heads} != 0")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.w_q, self.w_k, self.w_v, self.w_o = (nn.Linear(d_model, d_model) for _ in range(4))

    @staticmethod
    def _lin64(layer, x):
        return F.linear(x, layer.weight.double(), layer.bias.double())

    def forward(self, x, cache=None):
        dtype = x.dtype
        x64 = x.double()
        B, L, D = x64.shape
        H, Dh = self.n_heads, self.head_dim

        def split(t):
            return t.reshape(B, L, H, Dh).transpose(1, 2)

        q = split(self._lin64(self.w_q, x64))
        k = split(self._lin64(self.w_k, x64))
        v = split(self._lin64(self.w_v, x64))
        T = 0
        if cache is not None:
            old_k, old_v = cache.get("k"), cache.get("v")
            if old_k is not None:
                T = old_k.shape[2]
                k = torch.cat([old_k.double(), k], dim=2)
                v = torch.cat([old_v.double(), v], dim=2)
            cache["k"] = k.to(dtype)
            cache["v"] = v.to(dtype)
        S = T + L
        M = torch.zeros(L, S, dtype=torch.float64, device=x.device)
        key_pos = torch.arange(S, device=x.device).unsqueeze(0)
        query_pos = (T + torch.arange(L, device=x.device)).unsqueeze(1)
        M[key_pos.expand(L, S) > query_pos.expand(L, S)] = float("-inf")
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(Dh) + M
        heads = torch.matmul(torch.softmax(scores, dim=-1), v)
        merged = heads.transpose(1, 2).reshape(B, L, D)
        return self._lin64(self.w_o, merged).to(dtype)
''',
        "Block": '''class Block(nn.Module):
    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x, cache=None):
        a = self.attn(self.norm1(x), cache=cache)
        x = x + a
        f = self.linear1(self.norm2(x))
        f = F.gelu(f, approximate="tanh")
        f = self.linear2(f)
        return x + f
''',
        "GPT": '''class GPT(nn.Module):
    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers, max_len):
        super().__init__()
        self.max_len = max_len
        self.n_layers = n_layers
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Embedding(max_len, d_model)
        blocks = []
        for _ in range(n_layers):
            blocks.append(Block(d_model, n_heads, d_ff))
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.embedding.weight
        gpt2_init(self)  # GPT-2's initialisation (given): keep this line last

    def new_caches(self):
        caches = []
        for _ in range(self.n_layers):
            caches.append({})
        return caches

    def forward(self, ids, caches=None):
        if caches is None:
            caches = [None] * len(self.blocks)
        offset = caches[0]["k"].shape[2] if caches and caches[0] is not None and "k" in caches[0] else 0
        positions = torch.arange(ids.shape[1], device=ids.device) + offset
        x = self.embedding(ids) + self.positions(positions).unsqueeze(0)
        for i in range(len(self.blocks)):
            x = self.blocks[i](x, caches[i])
        x = self.norm(x)
        return self.head(x)
''',
        "lm_loss": '''def lm_loss(model, ids):
    x = ids[:, :-1]
    y = ids[:, 1:]
    logits = model(x).float()
    n = y.numel()
    total = F.cross_entropy(logits.reshape(n, -1), y.reshape(n), reduction="sum")
    return total / n
''',
        "sample_next_token": '''def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    x = logits.float()
    if temperature == 0:
        return x.max(dim=-1).indices.long()
    x = x / temperature
    V = x.shape[-1]
    if top_k is not None and top_k < V:
        kth = torch.kthvalue(x, V - top_k + 1, dim=-1, keepdim=True).values  # the top_k-th largest
        x = x.masked_fill(x < kth, -math.inf)
    if top_p is not None:
        probs = torch.softmax(x, dim=-1)
        sp, order = torch.sort(probs, dim=-1, descending=True, stable=True)
        cum = torch.cumsum(sp, dim=-1)
        drop = (cum - sp) >= top_p
        sorted_logits = torch.gather(x, -1, order).masked_fill(drop, -math.inf)
        x = torch.empty_like(x).scatter_(-1, order, sorted_logits)
    probs = torch.softmax(x, dim=-1)
    draw = torch.multinomial(probs, num_samples=1, generator=generator)
    return draw.view(-1).long()
''',
        "generate": '''def generate(model, ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None, use_cache=True):
    previous_mode = model.training
    model.train(False)
    W = model.max_len
    tokens = ids
    with torch.no_grad():
        if use_cache:
            caches = None
            filled = 0
            for _ in range(max_new_tokens):
                if caches is None or filled == W:
                    caches = model.new_caches()
                    ctx = tokens[:, -W:]
                    logits = model(ctx, caches=caches)
                    filled = ctx.shape[1]
                else:
                    logits = model(tokens[:, -1:], caches=caches)
                    filled += 1
                new = sample_next_token(logits[:, -1], temperature=temperature, top_k=top_k, top_p=top_p,
                                        generator=generator)
                tokens = torch.cat([tokens, new.unsqueeze(1)], dim=1)
        else:
            for _ in range(max_new_tokens):
                logits = model(tokens[:, -W:], caches=None)
                new = sample_next_token(logits[:, -1], temperature=temperature, top_k=top_k, top_p=top_p,
                                        generator=generator)
                tokens = torch.cat([tokens, new.unsqueeze(1)], dim=1)
    model.train(previous_mode)
    return tokens.long()
''',
    }),
    Answer("blind_functional_prealloc", "separate w_q/w_k/w_v parameters but one F.linear on their concatenation; bmm over B*H; triu(diagonal=T+1) mask; cache also stores an extra 'len' entry; (B,V,L) cross_entropy; per-row top-p loop; a preallocated output tensor in generate", source={
        "Transformer": '''class Transformer(nn.Module):
    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=512, n_heads=8, d_ff=2048, n_layers=6, dropout=0.1,
                 max_len=512, norm_first=True, share_embeddings=False):
        super().__init__()
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError(f"share_embeddings: src_vocab_size {src_vocab_size} != tgt_vocab_size {tgt_vocab_size}")
        self.share_embeddings = share_embeddings
        self.encoder = Encoder(src_vocab_size, d_model, n_heads, d_ff, n_layers, dropout=dropout, max_len=max_len,
                               norm_first=norm_first)
        self.decoder = Decoder(tgt_vocab_size, d_model, n_heads, d_ff, n_layers, dropout=dropout, max_len=max_len,
                               norm_first=norm_first)
        self.generator = nn.Linear(d_model, tgt_vocab_size, bias=False)
        seen = set()
        for p in self.parameters():
            if p.dim() > 1 and id(p) not in seen:
                seen.add(id(p))
                nn.init.xavier_uniform_(p)
        if share_embeddings:
            shared = self.decoder.embedding.weight
            self.encoder.embedding.weight = shared
            self.generator.weight = shared

    def encode(self, src_ids, src_mask=None):
        return self.encoder.forward(src_ids, src_mask)

    def decode(self, tgt_ids, memory, tgt_mask=None, memory_mask=None):
        return self.decoder.forward(tgt_ids, memory, tgt_mask, memory_mask)

    def forward(self, src_ids, tgt_ids, src_mask=None, tgt_mask=None):
        return F.linear(self.decode(tgt_ids, self.encode(src_ids, src_mask), tgt_mask, src_mask), self.generator.weight)
''',
        "CausalSelfAttention": '''class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError("n_heads must divide d_model")
        self.d_model, self.n_heads = d_model, n_heads
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)

    def forward(self, x, cache=None):
        B, L, D = x.shape
        H = self.n_heads
        dh = D // H
        weight = torch.cat([self.w_q.weight, self.w_k.weight, self.w_v.weight], dim=0)
        bias = torch.cat([self.w_q.bias, self.w_k.bias, self.w_v.bias], dim=0)
        q, k, v = F.linear(x, weight, bias).split(D, dim=-1)
        q, k, v = (t.view(B, L, H, dh).transpose(1, 2) for t in (q, k, v))
        past = 0
        if cache is not None:
            past = cache.get("len", 0)
            if past:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"], cache["len"] = k, v, past + L
        S = past + L
        hide = torch.ones(L, S, dtype=torch.bool, device=x.device).triu(diagonal=past + 1)
        scores = torch.bmm(q.reshape(B * H, L, dh), k.reshape(B * H, S, dh).transpose(1, 2)) / dh ** 0.5
        scores = scores.view(B, H, L, S).masked_fill(hide, float("-inf"))
        attn = F.softmax(scores, dim=-1)
        ctx = torch.bmm(attn.reshape(B * H, L, S), v.reshape(B * H, S, dh)).view(B, H, L, dh)
        return self.w_o(ctx.permute(0, 2, 1, 3).reshape(B, L, D))
''',
        "Block": '''class Block(nn.Module):
    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x, cache=None):
        residual = x
        x = residual + self.attn(self.norm1(residual), cache)
        hidden = F.gelu(self.linear1(self.norm2(x)), approximate="tanh")
        return x + self.linear2(hidden)
''',
        "GPT": '''class GPT(nn.Module):
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
        gpt2_init(self)  # GPT-2's initialisation (given): keep this line last

    def new_caches(self):
        return [{} for _ in range(len(self.blocks))]

    def forward(self, ids, caches=None):
        start = 0 if not caches else caches[0].get("len", 0)
        L = ids.size(1)
        pos = torch.arange(start, start + L, dtype=torch.long, device=ids.device).expand_as(ids)
        x = self.embedding(ids) + self.positions(pos)
        for i, block in enumerate(self.blocks):
            x = block(x, caches[i] if caches is not None else None)
        return F.linear(self.norm(x), self.head.weight)
''',
        "lm_loss": '''def lm_loss(model, ids):
    logits = model(ids[:, :-1]).float()          # (B, L, V)
    return F.cross_entropy(logits.transpose(1, 2), ids[:, 1:])  # the (B, V, L) form, mean over B*L
''',
        "sample_next_token": '''def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    z = logits.float()
    if temperature == 0:
        return z.argmax(-1).long()
    z = z.div(temperature)
    if top_k is not None:
        k = min(top_k, z.size(-1))
        kth = z.sort(dim=-1, descending=True).values[..., k - 1].unsqueeze(-1)
        z = torch.where(z < kth, torch.full_like(z, float("-inf")), z)
    if top_p is not None:
        probs = z.softmax(-1)
        rows = []
        for row_z, row_p in zip(z, probs):
            sp, order = row_p.sort(descending=True, stable=True)
            keep = torch.zeros_like(row_p, dtype=torch.bool)
            cum = torch.cumsum(sp, 0)
            before = torch.cat([cum.new_zeros(1), cum[:-1]])
            keep[order[before < top_p]] = True
            rows.append(row_z.masked_fill(~keep, float("-inf")))
        z = torch.stack(rows)
    return torch.multinomial(z.softmax(-1), num_samples=1, generator=generator).flatten().long()
''',
        "generate": '''def generate(model, ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None, use_cache=True):
    was_training = model.training
    model.eval()
    B, L = ids.shape
    out = torch.empty(B, L + max_new_tokens, dtype=torch.long, device=ids.device)
    out[:, :L] = ids
    n = L
    caches, held = None, 0
    try:
        with torch.no_grad():
            for _ in range(max_new_tokens):
                lo = max(0, n - model.max_len)
                if use_cache and caches is not None and held < model.max_len:
                    logits = model(out[:, n - 1:n], caches=caches)
                    held += 1
                elif use_cache:
                    caches = model.new_caches()
                    logits = model(out[:, lo:n], caches=caches)
                    held = n - lo
                else:
                    logits = model(out[:, lo:n], caches=None)
                out[:, n] = sample_next_token(logits[:, -1], temperature, top_k, top_p, generator)
                n += 1
    finally:
        model.train(was_training)
    return out
''',
    }),
    Answer("blind_manual_softmax", "reshape/permute heads, matmul with a boolean tril offset mask and a hand-written stable softmax; cache length read from cache['v']; topk-threshold then sorted-mask scatter_ back; two separate generate loops via a helper", source={
        "Transformer": '''class Transformer(nn.Module):
    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=512, n_heads=8, d_ff=2048, n_layers=6, dropout=0.1,
                 max_len=512, norm_first=True, share_embeddings=False):
        super().__init__()
        if share_embeddings and not src_vocab_size == tgt_vocab_size:
            raise ValueError("to share embeddings the two vocabularies must have the same size")
        self.encoder = Encoder(src_vocab_size, d_model, n_heads, d_ff, n_layers, dropout, max_len, norm_first)
        self.decoder = Decoder(tgt_vocab_size, d_model, n_heads, d_ff, n_layers, dropout, max_len, norm_first)
        self.generator = nn.Linear(d_model, tgt_vocab_size, bias=False)
        if share_embeddings:
            self.generator.weight = self.encoder.embedding.weight
            self.decoder.embedding.weight = self.encoder.embedding.weight
        for _, p in self.named_parameters(remove_duplicate=False):
            if p.ndim > 1:
                nn.init.xavier_uniform_(p)

    def encode(self, src_ids, src_mask=None):
        return self.encoder(src_ids, src_mask)

    def decode(self, tgt_ids, memory, tgt_mask=None, memory_mask=None):
        return self.decoder(tgt_ids, memory, tgt_mask=tgt_mask, memory_mask=memory_mask)

    def forward(self, src_ids, tgt_ids, src_mask=None, tgt_mask=None):
        return self.generator(self.decoder(tgt_ids, self.encoder(src_ids, src_mask), tgt_mask, src_mask))
''',
        "CausalSelfAttention": '''class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"cannot split d_model={d_model} into {n_heads} equal heads")
        self.heads = n_heads
        self.width = d_model // n_heads
        self.scale = 1.0 / math.sqrt(self.width)
        self.w_q = nn.Linear(d_model, d_model, bias=True)
        self.w_k = nn.Linear(d_model, d_model, bias=True)
        self.w_v = nn.Linear(d_model, d_model, bias=True)
        self.w_o = nn.Linear(d_model, d_model, bias=True)

    def _split(self, t):
        b, l, _ = t.shape
        return t.reshape(b, l, self.heads, self.width).permute(0, 2, 1, 3)

    def forward(self, x, cache=None):
        b, l, d = x.shape
        q = self._split(self.w_q(x))
        k = self._split(self.w_k(x))
        v = self._split(self.w_v(x))
        n_old = 0
        if cache is not None and "v" in cache:
            n_old = cache["v"].size(2)
            k = torch.cat([cache["k"], k], 2)
            v = torch.cat([cache["v"], v], 2)
        if cache is not None:
            cache.update(k=k, v=v)
        allowed = torch.ones(l, n_old + l, dtype=torch.bool, device=x.device).tril(diagonal=n_old)
        s = (q @ k.transpose(-2, -1)) * self.scale
        s = s.masked_fill(~allowed, float("-inf"))
        s = s - s.amax(dim=-1, keepdim=True)
        e = s.exp()
        p = e / e.sum(dim=-1, keepdim=True)
        o = (p @ v).permute(0, 2, 1, 3).reshape(b, l, d)
        return self.w_o(o)
''',
        "Block": '''class Block(nn.Module):
    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x, cache=None):
        out = x + self.attn(self.norm1(x), cache=cache)
        out = out + self.linear2(F.gelu(self.linear1(self.norm2(out)), approximate="tanh"))
        return out
''',
        "GPT": '''class GPT(nn.Module):
    def __init__(self, vocab_size, d_model, n_heads, d_ff, n_layers, max_len):
        super().__init__()
        self.max_len = max_len
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList([Block(d_model, n_heads, d_ff) for layer in range(n_layers)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.embedding.weight
        gpt2_init(self)  # GPT-2's initialisation (given): keep this line last

    def new_caches(self):
        return list({} for _ in self.blocks)

    def forward(self, ids, caches=None):
        n_cached = 0
        if caches is not None:
            n_cached = max((c["v"].size(2) for c in caches if "v" in c), default=0)
        pos = torch.arange(ids.size(1), device=ids.device) + n_cached
        h = self.embedding(ids) + self.positions(pos)[None]
        for layer, block in enumerate(self.blocks):
            h = block(h, cache=caches[layer] if caches is not None else None)
        return self.head(self.norm(h))
''',
        "lm_loss": '''def lm_loss(model, ids):
    logits = model(ids[:, :-1]).float()
    V = logits.shape[-1]
    return F.cross_entropy(logits.contiguous().view(-1, V), ids[:, 1:].contiguous().view(-1), reduction="mean")
''',
        "sample_next_token": '''def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    logits = logits.float()
    if temperature == 0:
        return torch.argmax(logits, dim=1).to(dtype=torch.long)
    logits = logits / temperature
    ninf = float("-inf")
    if top_k is not None:
        kk = min(top_k, logits.size(1))
        values, _ = torch.topk(logits, kk, dim=1)
        logits = logits.clone()
        logits[logits < values[:, -1:]] = ninf
    if top_p is not None:
        probs = torch.softmax(logits, dim=1)
        sorted_p, sorted_i = torch.sort(probs, dim=1, descending=True, stable=True)
        ranked_before = torch.cumsum(sorted_p, dim=1) - sorted_p
        remove_sorted = ~(ranked_before < top_p)
        remove = torch.zeros_like(remove_sorted)
        remove.scatter_(1, sorted_i, remove_sorted)
        logits = logits.masked_fill(remove, ninf)
    probs = torch.softmax(logits, dim=1)
    idx = torch.multinomial(probs, num_samples=1, generator=generator)
    return idx[:, 0].to(torch.long)
''',
        "generate": '''def generate(model, ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None, use_cache=True):
    def pick(logits):
        return sample_next_token(logits[:, -1, :], temperature=temperature, top_k=top_k, top_p=top_p,
                                 generator=generator).unsqueeze(-1)

    window = model.max_len
    restore = model.training
    model.eval()
    seq = ids.clone().long()
    with torch.no_grad():
        if not use_cache:
            for _ in range(max_new_tokens):
                seq = torch.cat([seq, pick(model(seq[:, -window:], caches=None))], dim=-1)
        else:
            caches, count = [], window  # count == window forces a fresh start on the first step
            for step in range(max_new_tokens):
                if step == 0 or count >= window:
                    caches = model.new_caches()
                    context = seq[:, -window:]
                    count = context.size(1)
                    logits = model(context, caches=caches)
                else:
                    logits = model(seq[:, -1:], caches=caches)
                    count += 1
                seq = torch.cat([seq, pick(logits)], dim=-1)
    if restore:
        model.train()
    return seq
''',
    }),
]
ALTERNATIVES += BLIND
