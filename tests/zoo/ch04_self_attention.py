"""Bug zoo for exercise 4 (self-attention): classic mistakes that must lose points, and unusual
but correct answers that must keep full marks."""

from submissions import Answer

ASSIGNMENT = "04_self_attention"

SDPA = "scaled_dot_product_attention"
MHA = "MultiHeadAttention"

MISTAKES = [
    Answer("no_scaling", "forgets the 1/sqrt(d_k) scaling", replace={SDPA: [("/ math.sqrt(d_k)", "")]}),
    Answer("scale_by_d_k", "divides by d_k instead of sqrt(d_k)", replace={SDPA: [("math.sqrt(d_k)", "d_k")]}),
    Answer("softmax_over_queries", "softmax over the wrong axis",
           replace={SDPA: [("torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=-2)")]}),
    Answer("inverted_mask", "fills where the mask is True (mask inverted)",
           replace={SDPA: [("scores.masked_fill(~mask,", "scores.masked_fill(mask,"),
                           ("weights.masked_fill(~mask,", "weights.masked_fill(mask,")]}),
    Answer("nan_for_fully_masked_rows", "leaves NaN in rows whose keys are all masked",
           replace={SDPA: [("    if mask is not None:\n        weights = weights.masked_fill(~mask, 0.0)  # all-masked rows: NaN -> 0\n", "")]}),
    Answer("finite_fill_value", "fills with -1e9: fully masked rows become uniform, not zero",
           replace={SDPA: [('float("-inf")', "-1e9"),
                           ("    if mask is not None:\n        weights = weights.masked_fill(~mask, 0.0)  # all-masked rows: NaN -> 0\n", "")]}),
    Answer("split_without_transpose", "reshapes straight into (B, H, L, d_head)",
           replace={"split_heads": [("x.view(batch, length, n_heads, d_model // n_heads).transpose(1, 2)",
                                     "x.reshape(batch, n_heads, length, d_model // n_heads)")]}),
    Answer("split_without_check", "does not raise ValueError for an indivisible d_model",
           replace={"split_heads": [("    if d_model % n_heads != 0:\n        raise ValueError("
                                     "f\"d_model={d_model} is not divisible by n_heads={n_heads}\")\n", "")]}),
    Answer("merge_without_transpose", "reshapes straight back to (B, L, d_model)",
           replace={"merge_heads": [("x.transpose(1, 2).reshape(", "x.reshape(")]}),
    Answer("merge_with_view", "uses .view on a non-contiguous tensor",
           replace={"merge_heads": [(".reshape(", ".view(")]}),
    Answer("no_output_projection", "forgets w_o", replace={MHA: [("return self.w_o(merge_heads(heads))", "return merge_heads(heads)")]}),
    Answer("mask_not_passed_on", "ignores the mask in forward",
           replace={MHA: [("scaled_dot_product_attention(q, k, v, mask)", "scaled_dot_product_attention(q, k, v)")]}),
    Answer("weights_averaged_over_heads", "stores head-averaged weights",
           replace={MHA: [("self.attn_weights = weights.detach()", "self.attn_weights = weights.mean(1).detach()")]}),
    Answer("single_head", "attends once over the whole width instead of per head (scale 1/sqrt(d_model))",
           replace={MHA: [("q = split_heads(self.w_q(query), self.n_heads)", "q = self.w_q(query).unsqueeze(1)"),
                          ("k = split_heads(self.w_k(key), self.n_heads)", "k = self.w_k(key).unsqueeze(1)"),
                          ("v = split_heads(self.w_v(value), self.n_heads)", "v = self.w_v(value).unsqueeze(1)")]}),
    Answer("no_divisibility_check", "MultiHeadAttention accepts d_model % n_heads != 0",
           replace={MHA: [("        if d_model % n_heads != 0:\n            raise ValueError("
                           "f\"d_model={d_model} is not divisible by n_heads={n_heads}\")\n", "")]}),
    Answer("calls_pytorch_sdpa", "calls F.scaled_dot_product_attention for the output", source={SDPA: '''
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask), weights
'''}),
    Answer("calls_pytorch_mha", "runs F.multi_head_attention_forward with its own weights", source={MHA: '''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError("d_model must be divisible by n_heads")
        self.n_heads, self.dropout = n_heads, dropout
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, query, key, value, mask=None):
        bias = None if self.w_q.bias is None else torch.cat([self.w_q.bias, self.w_k.bias, self.w_v.bias])
        out, weights = F.multi_head_attention_forward(
            query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1), query.size(-1), self.n_heads,
            torch.cat([self.w_q.weight, self.w_k.weight, self.w_v.weight]), bias, None, None, False,
            self.dropout, self.w_o.weight, self.w_o.bias, training=self.training,
            attn_mask=None if mask is None else ~mask, average_attn_weights=False)
        self.attn_weights = weights
        return out.transpose(0, 1)
'''}),
    Answer("imports_the_reference", "imports the course's reference implementation", source={
        SDPA: "from llm_foundations.attention import scaled_dot_product_attention\n",
        "split_heads": "from llm_foundations.attention import split_heads\n",
        "merge_heads": "from llm_foundations.attention import merge_heads\n",
        MHA: "from llm_foundations.attention import MultiHeadAttention\n",
    }),
]

ALTERNATIVES = [
    Answer("einsum_everywhere", "einsum for the products, permute for the heads", source={
        SDPA: '''
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = torch.einsum("...qd,...kd->...qk", q, k) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(float("-inf"), dtype=scores.dtype))
    weights = torch.nan_to_num(scores.softmax(-1), nan=0.0)
    return torch.einsum("...qk,...kd->...qd", weights, v), weights
''',
        "split_heads": '''
def split_heads(x, n_heads):
    b, l, d = x.shape
    if d % n_heads:
        raise ValueError("d_model must be a multiple of n_heads")
    return x.reshape(b, l, n_heads, d // n_heads).permute(0, 2, 1, 3)
''',
        "merge_heads": '''
def merge_heads(x):
    b, h, l, d = x.shape
    return x.permute(0, 2, 1, 3).contiguous().view(b, l, h * d)
'''}),
    Answer("float32_compute", "computes in float32 whatever the inputs' dtype, with a float32 scale "
           "torch.tensor(d_k).sqrt() (the task asks for no output dtype or precision)", source={SDPA: '''
def scaled_dot_product_attention(q, k, v, mask=None):
    q, k, v = q.float(), k.float(), v.float()
    scores = q @ k.transpose(-2, -1) / torch.tensor(q.shape[-1]).sqrt()
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    weights = torch.nan_to_num(weights, nan=0.0)  # a row with every key masked
    return weights @ v, weights
'''}),
    Answer("explicit_loops", "loops over every row with a hand-written, max-shifted softmax", source={SDPA: '''
def scaled_dot_product_attention(q, k, v, mask=None):
    *lead, n_q, d_k = q.shape
    n_k, d_v = k.shape[-2], v.shape[-1]
    qs, ks, vs = q.reshape(-1, n_q, d_k), k.reshape(-1, n_k, d_k), v.reshape(-1, n_k, d_v)
    ms = None if mask is None else mask.expand(*lead, n_q, n_k).reshape(-1, n_q, n_k)
    out = torch.zeros(qs.shape[0], n_q, d_v, dtype=q.dtype, device=q.device)
    weights = torch.zeros(qs.shape[0], n_q, n_k, dtype=q.dtype, device=q.device)
    for b in range(qs.shape[0]):
        for i in range(n_q):
            row = torch.stack([torch.dot(qs[b, i], ks[b, j]) for j in range(n_k)]) / math.sqrt(d_k)
            allowed = torch.ones(n_k, dtype=torch.bool) if ms is None else ms[b, i]
            if allowed.any():
                shifted = torch.exp(row - row[allowed].max())
                e = torch.where(allowed, shifted, torch.zeros_like(row))
                weights[b, i] = e / e.sum()
            out[b, i] = weights[b, i] @ vs[b]
    return out.reshape(*lead, n_q, d_v), weights.reshape(*lead, n_q, n_k)
'''}),
    Answer("logsumexp_softmax", "softmax as exp(s - logsumexp(s)), masks via where", source={SDPA: '''
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(k.shape[-1])
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    scores = scores.masked_fill(~mask, float("-inf"))
    norm = torch.logsumexp(scores, dim=-1, keepdim=True)
    weights = torch.where(mask & torch.isfinite(norm), torch.exp(scores - norm), torch.zeros_like(scores))
    return torch.matmul(weights, v), weights
'''}),
    Answer("loop_over_heads", "multi-head attention as a loop over weight slices, one head at a time", source={MHA: '''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError("d_model must be divisible by n_heads")
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.w_q, self.w_k, self.w_v, self.w_o = (nn.Linear(d_model, d_model, bias=bias) for _ in range(4))
        self.drop = nn.Dropout(dropout)

    def forward(self, query, key, value, mask=None):
        q, k, v = self.w_q(query), self.w_k(key), self.w_v(value)
        outputs, maps = [], []
        for h in range(self.n_heads):
            part = slice(h * self.d_head, (h + 1) * self.d_head)
            head_mask = None
            if mask is not None:
                head_mask = mask if mask.dim() < 4 else mask[:, min(h, mask.size(1) - 1)]
            _, w = scaled_dot_product_attention(q[..., part], k[..., part], v[..., part], head_mask)
            maps.append(w)
            outputs.append(self.drop(w) @ v[..., part])
        self.attn_weights = torch.stack(maps, dim=1).detach()
        return self.w_o(torch.cat(outputs, dim=-1))
'''}),
]


# Blind answers: written from the released student notebook alone (task text and visible tests),
# without the solution, the hidden tests or the checks (b/ch04_self_attention.py). They join the
# alternatives as written: where one failed, the task text or the tests were fixed, never the answer.
BLIND = [
    Answer("blind_masked_fill", "textbook: @ and transpose, masked_fill(-inf) then nan_to_num; view/transpose heads; "
           "dropout applied to weights returned by the Task 1 function, pre-dropout weights stored", source={
        "scaled_dot_product_attention": '''def scaled_dot_product_attention(q, k, v, mask=None):
    """Return (output, weights) of softmax(q k^T / sqrt(d_k)) v; mask True = may attend."""
    d_k = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    # a row that is entirely -inf gives NaN: such a query attends to nothing
    weights = torch.nan_to_num(weights, nan=0.0)
    return weights @ v, weights
''',
        "split_heads": '''def split_heads(x, n_heads):
    """(B, L, d_model) -> (B, H, L, d_model // H); head h holds features h*d_head:(h+1)*d_head."""
    B, L, d_model = x.shape
    if d_model % n_heads != 0:
        raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
    return x.view(B, L, n_heads, d_model // n_heads).transpose(1, 2)
''',
        "merge_heads": '''def merge_heads(x):
    """(B, H, L, d_head) -> (B, L, H * d_head), the inverse of split_heads."""
    B, H, L, d_head = x.shape
    return x.transpose(1, 2).contiguous().view(B, L, H * d_head)
''',
        "MultiHeadAttention": '''class MultiHeadAttention(nn.Module):
    """Multi-head attention with projections w_q, w_k, w_v, w_o; mask True = may attend."""

    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.attn_weights = None

    def forward(self, query, key, value, mask=None):
        q = split_heads(self.w_q(query), self.n_heads)
        k = split_heads(self.w_k(key), self.n_heads)
        v = split_heads(self.w_v(value), self.n_heads)
        _, weights = scaled_dot_product_attention(q, k, v, mask)
        self.attn_weights = weights
        out = self.dropout(weights) @ v
        return self.w_o(merge_heads(out))
''',
    }),
    Answer("blind_einsum_where", "einsum for scores/output/projections (F.linear-free), torch.where instead of masked_fill, "
           "zeroing all-masked rows with mask.any; reshape+permute heads; stores POST-dropout weights", source={
        "scaled_dot_product_attention": '''def scaled_dot_product_attention(q, k, v, mask=None):
    """Return (output, weights) of softmax(q k^T / sqrt(d_k)) v; mask True = may attend."""
    scale = q.shape[-1] ** -0.5
    scores = torch.einsum("...qd,...kd->...qk", q, k) * scale
    if mask is None:
        weights = scores.softmax(dim=-1)
    else:
        mask = mask.to(torch.bool)
        neg_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
        weights = torch.where(mask, scores, neg_inf).softmax(dim=-1)
        any_key = mask.any(dim=-1, keepdim=True)
        weights = torch.where(any_key, weights, torch.zeros((), dtype=weights.dtype, device=weights.device))
    output = torch.einsum("...qk,...kd->...qd", weights, v)
    return output, weights
''',
        "split_heads": '''def split_heads(x, n_heads):
    """(B, L, d_model) -> (B, H, L, d_model // H); head h holds features h*d_head:(h+1)*d_head."""
    batch, length, width = x.shape
    if width % n_heads:
        raise ValueError("d_model must be a multiple of n_heads")
    return x.reshape(batch, length, n_heads, width // n_heads).permute(0, 2, 1, 3)
''',
        "merge_heads": '''def merge_heads(x):
    """(B, H, L, d_head) -> (B, L, H * d_head), the inverse of split_heads."""
    batch, heads, length, d_head = x.shape
    return x.permute(0, 2, 1, 3).reshape(batch, length, heads * d_head)
''',
        "MultiHeadAttention": '''class MultiHeadAttention(nn.Module):
    """Multi-head attention with projections w_q, w_k, w_v, w_o; mask True = may attend."""

    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError("d_model must be divisible by n_heads")
        self.h = n_heads
        self.w_q, self.w_k, self.w_v, self.w_o = (nn.Linear(d_model, d_model, bias=bias) for _ in range(4))
        self.drop = nn.Dropout(dropout)

    @staticmethod
    def _project(layer, x):
        y = torch.einsum("bld,ed->ble", x, layer.weight)
        if layer.bias is not None:
            y = y + layer.bias
        return y

    def forward(self, query, key, value, mask=None):
        q = split_heads(self._project(self.w_q, query), self.h)
        k = split_heads(self._project(self.w_k, key), self.h)
        v = split_heads(self._project(self.w_v, value), self.h)
        _, weights = scaled_dot_product_attention(q, k, v, mask=mask)
        weights = self.drop(weights)
        self.attn_weights = weights
        heads = torch.einsum("bhqk,bhkd->bhqd", weights, v)
        return self._project(self.w_o, merge_heads(heads))
''',
    }),
    Answer("blind_float64_manual", "float64 internally, hand-written stable softmax with exp*mask and a clamped "
           "denominator, cast back; stack/cat of slices for heads; SDPA given an extra dropout hook", source={
        "scaled_dot_product_attention": '''def scaled_dot_product_attention(q, k, v, mask=None, weight_dropout=None):
    """Return (output, weights) of softmax(q k^T / sqrt(d_k)) v; mask True = may attend."""
    out_dtype = torch.promote_types(q.dtype, v.dtype)
    q64, k64, v64 = q.double(), k.double(), v.double()
    scores = torch.matmul(q64, k64.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if mask is not None:
        keep = mask.bool()
        scores = scores.masked_fill(~keep, float("-inf"))
    row_max = scores.amax(dim=-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    e = torch.exp(scores - row_max)  # exp(-inf) = 0 exactly
    denom = e.sum(dim=-1, keepdim=True)
    weights64 = e / denom.clamp_min(torch.finfo(torch.float64).tiny)  # all-masked row: 0 / tiny = 0
    weights = weights64.to(out_dtype)
    used = weights64 if weight_dropout is None else weight_dropout(weights64)
    output = torch.matmul(used, v64).to(out_dtype)
    return output, weights
''',
        "split_heads": '''def split_heads(x, n_heads):
    """(B, L, d_model) -> (B, H, L, d_model // H); head h holds features h*d_head:(h+1)*d_head."""
    d_model = x.shape[-1]
    if n_heads <= 0 or d_model % n_heads != 0:
        raise ValueError(f"cannot split d_model={d_model} into {n_heads} heads")
    d_head = d_model // n_heads
    return torch.stack([x[..., h * d_head:(h + 1) * d_head] for h in range(n_heads)], dim=1)
''',
        "merge_heads": '''def merge_heads(x):
    """(B, H, L, d_head) -> (B, L, H * d_head), the inverse of split_heads."""
    return torch.cat([x[:, h] for h in range(x.shape[1])], dim=-1)
''',
        "MultiHeadAttention": '''class MultiHeadAttention(nn.Module):
    """Multi-head attention with projections w_q, w_k, w_v, w_o; mask True = may attend."""

    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError("n_heads must divide d_model")
        self.num_heads = n_heads
        self.head_dim = d_model // n_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)
        self.attention_dropout = nn.Dropout(p=dropout)
        self.attn_weights = None

    def forward(self, query, key, value, mask=None):
        heads_q = split_heads(self.w_q(query), self.num_heads)
        heads_k = split_heads(self.w_k(key), self.num_heads)
        heads_v = split_heads(self.w_v(value), self.num_heads)
        context, self.attn_weights = scaled_dot_product_attention(
            heads_q, heads_k, heads_v, mask, weight_dropout=self.attention_dropout)
        return self.w_o(merge_heads(context))
''',
    }),
    Answer("blind_loops", "explicit Python loops: SDPA loops over every (batch..., query) row, heads built/merged "
           "by looping over heads, MHA loops over heads and calls SDPA once per head", source={
        "scaled_dot_product_attention": '''def scaled_dot_product_attention(q, k, v, mask=None):
    """Return (output, weights) of softmax(q k^T / sqrt(d_k)) v; mask True = may attend."""
    *lead_q, L_q, d_k = q.shape
    *lead_k, L_k, _ = k.shape
    d_v = v.shape[-1]
    lead = torch.broadcast_shapes(tuple(lead_q), tuple(lead_k), tuple(v.shape[:-2]))
    if mask is not None:
        lead = torch.broadcast_shapes(lead, tuple(mask.shape[:-2]) if mask.dim() > 2 else ())
    qq = q.expand(*lead, L_q, d_k).reshape(-1, L_q, d_k)
    kk = k.expand(*lead, L_k, d_k).reshape(-1, L_k, d_k)
    vv = v.expand(*lead, L_k, d_v).reshape(-1, L_k, d_v)
    if mask is None:
        mm = torch.ones(qq.shape[0], L_q, L_k, dtype=torch.bool, device=q.device)
    else:
        mm = mask.expand(*lead, L_q, L_k).reshape(-1, L_q, L_k)
    scale = 1.0 / math.sqrt(d_k)
    out_rows, weight_rows = [], []
    for b in range(qq.shape[0]):
        outs, ws = [], []
        for i in range(L_q):
            allowed = mm[b, i]
            s = (kk[b] @ qq[b, i]) * scale  # (L_k,)
            if bool(allowed.any()):
                s = s.masked_fill(~allowed, float("-inf"))
                w = torch.softmax(s, dim=0)
            else:
                w = torch.zeros_like(s)
            ws.append(w)
            outs.append(w @ vv[b])
        weight_rows.append(torch.stack(ws))
        out_rows.append(torch.stack(outs))
    weights = torch.stack(weight_rows).reshape(*lead, L_q, L_k)
    output = torch.stack(out_rows).reshape(*lead, L_q, d_v)
    return output, weights
''',
        "split_heads": '''def split_heads(x, n_heads):
    """(B, L, d_model) -> (B, H, L, d_model // H); head h holds features h*d_head:(h+1)*d_head."""
    B, L, D = x.shape
    if D % n_heads != 0:
        raise ValueError("d_model % n_heads != 0")
    dh = D // n_heads
    out = x.new_empty(B, n_heads, L, dh)
    for h in range(n_heads):
        out[:, h] = x[:, :, h * dh:(h + 1) * dh]
    return out
''',
        "merge_heads": '''def merge_heads(x):
    """(B, H, L, d_head) -> (B, L, H * d_head), the inverse of split_heads."""
    B, H, L, dh = x.shape
    out = x.new_empty(B, L, H * dh)
    for h in range(H):
        out[:, :, h * dh:(h + 1) * dh] = x[:, h]
    return out
''',
        "MultiHeadAttention": '''class MultiHeadAttention(nn.Module):
    """Multi-head attention with projections w_q, w_k, w_v, w_o; mask True = may attend."""

    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError("d_model must be divisible by n_heads")
        self.n_heads = n_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query, key, value, mask=None):
        q = split_heads(self.w_q(query), self.n_heads)
        k = split_heads(self.w_k(key), self.n_heads)
        v = split_heads(self.w_v(value), self.n_heads)
        if mask is not None:
            mask = torch.broadcast_to(mask, (q.shape[0], self.n_heads, q.shape[2], k.shape[2]))
        outs, ws = [], []
        for h in range(self.n_heads):
            m = None if mask is None else mask[:, h]
            _, w = scaled_dot_product_attention(q[:, h], k[:, h], v[:, h], m)
            ws.append(w)
            outs.append(self.dropout(w) @ v[:, h])
        self.attn_weights = torch.stack(ws, dim=1)
        return self.w_o(merge_heads(torch.stack(outs, dim=1)))
''',
    }),
    Answer("blind_additive_bias", "mask turned into an additive log(mask) bias, q pre-scaled, fully-masked rows "
           "softmaxed over zeros then multiplied by the mask; unflatten/movedim/flatten heads; F.dropout functional", source={
        "scaled_dot_product_attention": '''def scaled_dot_product_attention(q, k, v, mask=None):
    """Return (output, weights) of softmax(q k^T / sqrt(d_k)) v; mask True = may attend."""
    q = q / math.sqrt(q.size(-1))
    scores = torch.matmul(q, k.mT)
    if mask is not None:
        allowed = mask.to(scores.dtype)  # 1 = may attend, 0 = blocked
        bias = torch.log(allowed)  # 0 or -inf
        empty = ~mask.any(dim=-1, keepdim=True)
        # rows without any key: give them a harmless bias, then zero them below
        bias = bias.masked_fill(empty, 0.0)
        weights = F.softmax(scores + bias, dim=-1) * allowed
    else:
        weights = F.softmax(scores, dim=-1)
    return torch.matmul(weights, v), weights
''',
        "split_heads": '''def split_heads(x, n_heads):
    """(B, L, d_model) -> (B, H, L, d_model // H); head h holds features h*d_head:(h+1)*d_head."""
    if x.shape[-1] % n_heads != 0:
        raise ValueError(f"{x.shape[-1]} features cannot be split evenly into {n_heads} heads")
    return x.unflatten(-1, (n_heads, -1)).movedim(-2, 1)
''',
        "merge_heads": '''def merge_heads(x):
    """(B, H, L, d_head) -> (B, L, H * d_head), the inverse of split_heads."""
    return x.movedim(1, -2).flatten(-2)
''',
        "MultiHeadAttention": '''class MultiHeadAttention(nn.Module):
    """Multi-head attention with projections w_q, w_k, w_v, w_o; mask True = may attend."""

    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError("d_model % n_heads must be 0")
        self.heads = n_heads
        self.p_drop = dropout
        self.dropout_layer = nn.Dropout(dropout)
        for name in ("w_q", "w_k", "w_v", "w_o"):
            setattr(self, name, nn.Linear(d_model, d_model, bias=bias))

    def forward(self, query, key, value, mask=None):
        q, k, v = (split_heads(proj(x), self.heads)
                   for proj, x in ((self.w_q, query), (self.w_k, key), (self.w_v, value)))
        _, attn = scaled_dot_product_attention(q, k, v, mask=mask)
        self.attn_weights = attn.detach()
        mixed = self.dropout_layer(attn) @ v
        return self.w_o(merge_heads(mixed))
''',
    }),
    Answer("blind_logsoftmax", "log_softmax then exp, empty rows repaired with torch.where on isnan; heads via "
           "view+swapaxes; Q/K/V projections fused by concatenating the three weight matrices", source={
        "scaled_dot_product_attention": '''def scaled_dot_product_attention(q, k, v, mask=None):
    """Return (output, weights) of softmax(q k^T / sqrt(d_k)) v; mask True = may attend."""
    d_k = k.shape[-1]
    logits = torch.matmul(q, k.swapaxes(-1, -2)).div(math.sqrt(d_k))
    if mask is not None:
        logits = logits.masked_fill(mask.logical_not(), -math.inf)
    weights = torch.log_softmax(logits, dim=-1).exp()
    weights = torch.where(torch.isnan(weights), torch.zeros_like(weights), weights)
    output = torch.matmul(weights, v)
    return output, weights
''',
        "split_heads": '''def split_heads(x, n_heads):
    """(B, L, d_model) -> (B, H, L, d_model // H); head h holds features h*d_head:(h+1)*d_head."""
    d_head, rest = divmod(x.size(-1), n_heads)
    if rest:
        raise ValueError("d_model is not divisible by n_heads")
    return x.view(x.size(0), x.size(1), n_heads, d_head).swapaxes(1, 2)
''',
        "merge_heads": '''def merge_heads(x):
    """(B, H, L, d_head) -> (B, L, H * d_head), the inverse of split_heads."""
    return x.swapaxes(1, 2).reshape(x.size(0), x.size(2), -1)
''',
        "MultiHeadAttention": '''class MultiHeadAttention(nn.Module):
    """Multi-head attention with projections w_q, w_k, w_v, w_o; mask True = may attend."""

    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError("d_model must be divisible by n_heads")
        self.n_heads = n_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)
        self.attn_drop = nn.Dropout(dropout)

    def forward(self, query, key, value, mask=None):
        if query is key and key is value:  # self-attention: one fused matmul for the three projections
            weight = torch.cat([self.w_q.weight, self.w_k.weight, self.w_v.weight], dim=0)
            bias = None if self.w_q.bias is None else torch.cat([self.w_q.bias, self.w_k.bias, self.w_v.bias])
            q, k, v = F.linear(query, weight, bias).chunk(3, dim=-1)
        else:
            q, k, v = self.w_q(query), self.w_k(key), self.w_v(value)
        q, k, v = (split_heads(t, self.n_heads) for t in (q, k, v))
        _, weights = scaled_dot_product_attention(q, k, v, mask)
        self.attn_weights = weights
        return self.w_o(merge_heads(torch.matmul(self.attn_drop(weights), v)))
''',
    }),
]

ALTERNATIVES += BLIND
