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
           replace={SDPA: [("        weights = weights.masked_fill(~mask, 0.0)  # all-masked rows: NaN -> 0\n", "")]}),
    Answer("finite_fill_value", "fills with -1e9: fully masked rows become uniform, not zero",
           replace={SDPA: [('float("-inf")', "-1e9"),
                           ("        weights = weights.masked_fill(~mask, 0.0)  # all-masked rows: NaN -> 0\n", "")]}),
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
