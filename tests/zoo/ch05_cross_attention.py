"""Bug zoo for exercise 5 (cross-attention): classic mistakes that must lose points, and unusual
but correct answers that must keep full marks."""

from submissions import Answer

ASSIGNMENT = "05_cross_attention"

PM = "padding_mask"
ADD = "AdditiveAttention"
CROSS = "cross_attend"

_ZERO_EMPTY_ROWS = "weights = weights.masked_fill(~mask, 0.0)  # all-masked rows: NaN -> 0"
_FILL_SCORES = 'scores = scores.masked_fill(~mask, float("-inf"))'

MISTAKES = [
    # padding_mask
    Answer("mask_inverted", "marks the padding instead of the real tokens (ids == pad_id)",
           replace={PM: [("ids != pad_id", "ids == pad_id")]}),
    Answer("mask_shape_b_l", "returns a (B, L) mask that broadcasts against (L_q, L_k)",
           replace={PM: [("(ids != pad_id)[:, None, None, :]", "ids != pad_id")]}),
    Answer("mask_shape_b_1_l", "returns a (B, 1, L) mask that broadcasts against (H, L_q, L_k)",
           replace={PM: [("(ids != pad_id)[:, None, None, :]", "(ids != pad_id)[:, None, :]")]}),
    Answer("pad_id_hard_coded", "compares with 0 instead of the pad_id argument",
           replace={PM: [("ids != pad_id", "ids != 0")]}),
    Answer("float_mask", "returns a float mask of ones and zeros instead of a boolean one",
           replace={PM: [("(ids != pad_id)[:, None, None, :]", "(ids != pad_id).float()[:, None, None, :]")]}),
    # AdditiveAttention
    Answer("softmax_over_queries", "takes the softmax over the queries (dim=1)",
           replace={ADD: [("torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=1)")]}),
    Answer("no_tanh", "forgets the tanh: the score becomes linear and ignores the query",
           replace={ADD: [("self.v(torch.tanh(q + k))", "self.v(q + k)")]}),
    Answer("dot_product_scores", "scores with dot products of the projections instead of v . tanh(...)",
           replace={ADD: [("scores = self.v(torch.tanh(q + k)).squeeze(-1)  # (B, L_q, L_k)",
                           "scores = (q * k).sum(-1)  # (B, L_q, L_k)")]}),
    Answer("layers_with_bias", "keeps nn.Linear's default bias=True",
           replace={ADD: [("nn.Linear(d_query, d_hidden, bias=False)", "nn.Linear(d_query, d_hidden)"),
                          ("nn.Linear(d_key, d_hidden, bias=False)", "nn.Linear(d_key, d_hidden)"),
                          ("nn.Linear(d_hidden, 1, bias=False)", "nn.Linear(d_hidden, 1)")]}),
    Answer("w_q_sized_by_d_key", "sizes w_q by d_key (fine only when queries and keys are equally wide)",
           replace={ADD: [("nn.Linear(d_query, d_hidden, bias=False)", "nn.Linear(d_key, d_hidden, bias=False)")]}),
    Answer("mask_after_softmax", "multiplies the weights by the mask after the softmax, without renormalising",
           replace={ADD: [(_FILL_SCORES, "pass"), (_ZERO_EMPTY_ROWS, "weights = weights * mask")]}),
    Answer("additive_mask_inverted", "fills the scores where the mask is True",
           replace={ADD: [("scores.masked_fill(~mask,", "scores.masked_fill(mask,"),
                          ("weights.masked_fill(~mask,", "weights.masked_fill(mask,")]}),
    Answer("nan_for_fully_masked_rows", "leaves NaN in rows whose keys are all masked",
           replace={ADD: [(_ZERO_EMPTY_ROWS, "pass")]}),
    Answer("finite_fill_value", "fills with -1e9: fully masked rows become uniform, not zero",
           replace={ADD: [('float("-inf")', "-1e9"), (_ZERO_EMPTY_ROWS, "pass")]}),
    Answer("no_squeeze", "keeps the (B, L_q, L_k, 1) scores: the last axis of v(...) is not squeezed",
           replace={ADD: [("self.v(torch.tanh(q + k)).squeeze(-1)", "self.v(torch.tanh(q + k))")]}),
    # cross_attend
    Answer("queries_from_the_encoder", "swaps the roles: queries from the encoder, keys and values from the decoder",
           replace={CROSS: [("mha(decoder_states, encoder_states, encoder_states, mask=mask)",
                             "mha(encoder_states, decoder_states, decoder_states, mask=mask)")]}),
    Answer("no_source_mask", "does not pass the padding mask",
           replace={CROSS: [("encoder_states, encoder_states, mask=mask)", "encoder_states, encoder_states)")]}),
    Answer("cross_mask_inverted", "passes the inverted mask (True = blocked, nn.MultiheadAttention's convention)",
           replace={CROSS: [("mask=mask)", "mask=~mask)")]}),
    Answer("values_from_the_decoder", "takes the values from the decoder",
           replace={CROSS: [("mha(decoder_states, encoder_states, encoder_states, mask=mask)",
                             "mha(decoder_states, encoder_states, decoder_states, mask=mask)")]}),
    Answer("mask_over_the_queries", "masks the queries (target rows) instead of the source keys",
           replace={CROSS: [("mask = padding_mask(src_ids, pad_id)", "mask = padding_mask(src_ids, pad_id).transpose(-1, -2)")]}),
    Answer("cross_pad_id_hard_coded", "builds the source mask with pad id 0",
           replace={CROSS: [("padding_mask(src_ids, pad_id)", "padding_mask(src_ids, 0)")]}),
    Answer("calls_pytorch_mha", "runs PyTorch's nn.MultiheadAttention forward with mha's weights", source={CROSS: '''
from llm_foundations.interop import to_pytorch


def cross_attend(mha, decoder_states, encoder_states, src_ids, pad_id):
    twin = to_pytorch(mha)
    out, _ = twin(decoder_states, encoder_states, encoder_states, key_padding_mask=(src_ids == pad_id))
    return out
'''}),
    Answer("imports_the_reference", "imports the course's reference implementation", source={
        PM: "from llm_foundations.attention import padding_mask\n",
        ADD: "from llm_foundations.attention import AdditiveAttention\n",
        CROSS: "from llm_foundations.checks.ch05_cross_attention import cross_attend\n",
    }),
    Answer("wraps_the_reference", "subclasses and wraps the reference implementation", source={
        PM: '''
import llm_foundations.attention as lfa


def padding_mask(ids, pad_id):
    return lfa.padding_mask(ids, pad_id)
''',
        ADD: '''
import llm_foundations.attention as lfa


class AdditiveAttention(lfa.AdditiveAttention):
    pass
''',
    }),
]

ALTERNATIVES = [
    Answer("unsqueeze_and_ne", "padding_mask with ne() and an unsqueeze chain; cross_attend with the mask inline", source={
        PM: '''
def padding_mask(ids, pad_id):
    return ids.ne(pad_id).unsqueeze(1).unsqueeze(1)
''',
        CROSS: '''
def cross_attend(mha, decoder_states, encoder_states, src_ids, pad_id):
    batch, length = src_ids.shape
    keep = torch.not_equal(src_ids, pad_id).view(batch, 1, 1, length)
    return mha(query=decoder_states, key=encoder_states, value=encoder_states, mask=keep)
'''}),
    Answer("softmax_in_float32", "AdditiveAttention takes the softmax in float32 and casts the weights back to the "
           "values' dtype (the mixed-precision habit; the task asks for no precision)", source={ADD: '''
class AdditiveAttention(nn.Module):
    def __init__(self, d_query, d_key, d_hidden):
        super().__init__()
        self.w_q = nn.Linear(d_query, d_hidden, bias=False)
        self.w_k = nn.Linear(d_key, d_hidden, bias=False)
        self.v = nn.Linear(d_hidden, 1, bias=False)

    def forward(self, query, keys, values, mask=None):
        scores = self.v(torch.tanh(self.w_q(query).unsqueeze(2) + self.w_k(keys).unsqueeze(1))).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).nan_to_num(0.0).to(values.dtype)
        return weights @ values, weights
'''}),
    Answer("explicit_loops", "AdditiveAttention as loops over every (b, i, j) with a hand-written softmax", source={ADD: '''
class AdditiveAttention(nn.Module):
    def __init__(self, d_query, d_key, d_hidden):
        super().__init__()
        self.w_q = nn.Linear(d_query, d_hidden, bias=False)
        self.w_k = nn.Linear(d_key, d_hidden, bias=False)
        self.v = nn.Linear(d_hidden, 1, bias=False)

    def forward(self, query, keys, values, mask=None):
        n_b, n_q, n_k = query.shape[0], query.shape[1], keys.shape[1]
        allowed = torch.ones(n_b, n_q, n_k, dtype=torch.bool)
        if mask is not None:
            allowed = mask.expand(n_b, n_q, n_k)
        weights = torch.zeros(n_b, n_q, n_k, dtype=query.dtype)
        out = torch.zeros(n_b, n_q, values.shape[-1], dtype=values.dtype)
        for b in range(n_b):
            for i in range(n_q):
                e = torch.stack([self.v(torch.tanh(self.w_q(query[b, i]) + self.w_k(keys[b, j])))[0]
                                 for j in range(n_k)])
                if allowed[b, i].any():
                    e = torch.exp(e - e[allowed[b, i]].max()) * allowed[b, i]
                    weights[b, i] = e / e.sum()
                out[b, i] = weights[b, i] @ values[b]
        return out, weights
'''}),
    Answer("einsum_and_where", "AdditiveAttention with einsum on the raw weights and torch.where for the mask", source={ADD: '''
class AdditiveAttention(nn.Module):
    def __init__(self, d_query, d_key, d_hidden):
        super().__init__()
        self.w_q = nn.Linear(d_query, d_hidden, bias=False)
        self.w_k = nn.Linear(d_key, d_hidden, bias=False)
        self.v = nn.Linear(d_hidden, 1, bias=False)

    def forward(self, query, keys, values, mask=None):
        q = torch.einsum("bqd,hd->bqh", query, self.w_q.weight)
        k = torch.einsum("bkd,hd->bkh", keys, self.w_k.weight)
        e = torch.einsum("bqkh,h->bqk", torch.tanh(q.unsqueeze(2) + k.unsqueeze(1)), self.v.weight[0])
        if mask is not None:
            e = torch.where(mask, e, torch.full_like(e, float("-inf")))
        weights = torch.nan_to_num(torch.softmax(e, dim=-1), nan=0.0)
        return torch.einsum("bqk,bkd->bqd", weights, values), weights
'''}),
    Answer("expand_and_cat", "Bahdanau's W[q; k] form: expand both to (B, L_q, L_k, .), concatenate, one matmul", source={ADD: '''
class AdditiveAttention(nn.Module):
    def __init__(self, d_query, d_key, d_hidden):
        super().__init__()
        self.w_q = nn.Linear(d_query, d_hidden, bias=False)
        self.w_k = nn.Linear(d_key, d_hidden, bias=False)
        self.v = nn.Linear(d_hidden, 1, bias=False)

    def forward(self, query, keys, values, mask=None):
        n_q, n_k = query.size(1), keys.size(1)
        pairs = torch.cat([query.unsqueeze(2).expand(-1, -1, n_k, -1),
                           keys.unsqueeze(1).expand(-1, n_q, -1, -1)], dim=-1)  # (B, L_q, L_k, d_q + d_k)
        w = torch.cat([self.w_q.weight, self.w_k.weight], dim=1)  # (d_hidden, d_q + d_k)
        scores = (torch.tanh(pairs @ w.T) @ self.v.weight.T)[..., 0]
        if mask is None:
            mask = torch.ones_like(scores, dtype=torch.bool)
        scores = scores.masked_fill(~mask, float("-inf"))
        norm = torch.logsumexp(scores, dim=-1, keepdim=True)
        weights = torch.where(mask & torch.isfinite(norm), torch.exp(scores - norm), torch.zeros_like(scores))
        return weights @ values, weights
'''}),
]


# Blind answers: written from the released student notebook alone (task text and visible tests),
# without the solution, the hidden tests or the checks (b/ch05_cross_attention.py). They join the
# alternatives as written: where one failed, the task text or the tests were fixed, never the answer.
BLIND = [
    Answer("blind_broadcast", "textbook: (ids != pad_id)[:, None, None, :]; broadcast (B,Lq,1,H)+(B,1,Lk,H), "
           "masked_fill(-inf) then nan_to_num; cross_attend passes the mask by keyword", source={
        "padding_mask": '''def padding_mask(ids, pad_id):
    """(B, L) token ids -> (B, 1, 1, L) boolean mask, True where ids != pad_id (real tokens)."""
    return (ids != pad_id)[:, None, None, :]
''',
        "AdditiveAttention": '''class AdditiveAttention(nn.Module):
    """Bahdanau attention: score v . tanh(w_q q + w_k k), softmax over the keys, average the values."""

    def __init__(self, d_query, d_key, d_hidden):
        super().__init__()
        self.w_q = nn.Linear(d_query, d_hidden, bias=False)
        self.w_k = nn.Linear(d_key, d_hidden, bias=False)
        self.v = nn.Linear(d_hidden, 1, bias=False)

    def forward(self, query, keys, values, mask=None):
        q = self.w_q(query).unsqueeze(2)  # (B, L_q, 1, H)
        k = self.w_k(keys).unsqueeze(1)  # (B, 1, L_k, H)
        scores = self.v(torch.tanh(q + k)).squeeze(-1)  # (B, L_q, L_k)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
        return weights @ values, weights
''',
        "cross_attend": '''def cross_attend(mha, decoder_states, encoder_states, src_ids, pad_id):
    """Queries from the decoder, keys and values from the encoder, the source's padding hidden."""
    mask = padding_mask(src_ids, pad_id)
    return mha(decoder_states, encoder_states, encoder_states, mask=mask)
''',
    }),
    Answer("blind_einsum", "ne().unsqueeze chain; einsum for projections, scores (v.weight) and output; torch.where "
           "with mask.any(-1) for empty rows; mask moved to the encoder's device, passed positionally", source={
        "padding_mask": '''def padding_mask(ids, pad_id):
    """(B, L) token ids -> (B, 1, 1, L) boolean mask, True where ids != pad_id (real tokens)."""
    return ids.ne(pad_id).unsqueeze(1).unsqueeze(2)
''',
        "AdditiveAttention": '''class AdditiveAttention(nn.Module):
    """Bahdanau attention: score v . tanh(w_q q + w_k k), softmax over the keys, average the values."""

    def __init__(self, d_query, d_key, d_hidden):
        super().__init__()
        self.w_q = nn.Linear(d_query, d_hidden, bias=False)
        self.w_k = nn.Linear(d_key, d_hidden, bias=False)
        self.v = nn.Linear(d_hidden, 1, bias=False)

    def forward(self, query, keys, values, mask=None):
        pq = torch.einsum("bqd,hd->bqh", query, self.w_q.weight)
        pk = torch.einsum("bkd,hd->bkh", keys, self.w_k.weight)
        hidden = torch.tanh(pq[:, :, None, :] + pk[:, None, :, :])  # (B, L_q, L_k, H)
        scores = torch.einsum("bqkh,h->bqk", hidden, self.v.weight[0])
        if mask is None:
            weights = torch.softmax(scores, dim=-1)
        else:
            mask = mask.bool()
            blocked = torch.full_like(scores, float("-inf"))
            weights = torch.softmax(torch.where(mask, scores, blocked), dim=-1)
            weights = torch.where(mask.any(dim=-1, keepdim=True), weights, torch.zeros_like(weights))
        output = torch.einsum("bqk,bkd->bqd", weights, values)
        return output, weights
''',
        "cross_attend": '''def cross_attend(mha, decoder_states, encoder_states, src_ids, pad_id):
    """Queries from the decoder, keys and values from the encoder, the source's padding hidden."""
    src_mask = padding_mask(src_ids, pad_id).to(encoder_states.device)
    return mha(decoder_states, encoder_states, encoder_states, src_mask)
''',
    }),
    Answer("blind_loops_float64", "padding mask via logical_not(eq).view; explicit loops over (b, i) rows in float64 "
           "with a hand-written stable softmax, cast back; cross_attend expands the mask to (B,1,L_q,L_k)", source={
        "padding_mask": '''def padding_mask(ids, pad_id):
    """(B, L) token ids -> (B, 1, 1, L) boolean mask, True where ids != pad_id (real tokens)."""
    B, L = ids.shape
    return torch.logical_not(torch.eq(ids, pad_id)).view(B, 1, 1, L)
''',
        "AdditiveAttention": '''class AdditiveAttention(nn.Module):
    """Bahdanau attention: score v . tanh(w_q q + w_k k), softmax over the keys, average the values."""

    def __init__(self, d_query, d_key, d_hidden):
        super().__init__()
        self.w_q = nn.Linear(d_query, d_hidden, bias=False)
        self.w_k = nn.Linear(d_key, d_hidden, bias=False)
        self.v = nn.Linear(d_hidden, 1, bias=False)

    def forward(self, query, keys, values, mask=None):
        B, L_q, _ = query.shape
        L_k = keys.shape[1]
        dtype = torch.promote_types(query.dtype, values.dtype)
        pq = self.w_q(query).double()
        pk = self.w_k(keys).double()
        vals = values.double()
        vw = self.v.weight.double()[0]
        if mask is None:
            allowed = torch.ones(B, L_q, L_k, dtype=torch.bool, device=query.device)
        else:
            allowed = torch.broadcast_to(mask, (B, L_q, L_k))
        out_rows, w_rows = [], []
        for b in range(B):
            outs, ws = [], []
            for i in range(L_q):
                e = torch.tanh(pq[b, i] + pk[b]) @ vw  # (L_k,)
                keep = allowed[b, i]
                if keep.any():
                    e = e.masked_fill(~keep, float("-inf"))
                    z = torch.exp(e - e.max())
                    w = z / z.sum()
                else:
                    w = torch.zeros(L_k, dtype=torch.float64, device=query.device)
                ws.append(w)
                outs.append(w @ vals[b])
            w_rows.append(torch.stack(ws))
            out_rows.append(torch.stack(outs))
        return torch.stack(out_rows).to(dtype), torch.stack(w_rows).to(dtype)
''',
        "cross_attend": '''def cross_attend(mha, decoder_states, encoder_states, src_ids, pad_id):
    """Queries from the decoder, keys and values from the encoder, the source's padding hidden."""
    B, L_q, _ = decoder_states.shape
    L_k = encoder_states.shape[1]
    mask = padding_mask(src_ids, pad_id).expand(B, 1, L_q, L_k)
    return mha(query=decoder_states, key=encoder_states, value=encoder_states, mask=mask)
''',
    }),
    Answer("blind_weight_split", "padding mask built with torch.where over a full bool tensor and reshape; scores via "
           "matmul with v.weight.T (no self.v call), exp/sum softmax with clamped denominator after -inf masking; "
           "cross_attend aliases keys = values = encoder_states", source={
        "padding_mask": '''def padding_mask(ids, pad_id):
    """(B, L) token ids -> (B, 1, 1, L) boolean mask, True where ids != pad_id (real tokens)."""
    real = torch.where(ids == pad_id, torch.zeros_like(ids, dtype=torch.bool), torch.ones_like(ids, dtype=torch.bool))
    return real.reshape(ids.shape[0], 1, 1, ids.shape[-1])
''',
        "AdditiveAttention": '''import math


class AdditiveAttention(nn.Module):
    """Bahdanau attention: score v . tanh(w_q q + w_k k), softmax over the keys, average the values."""

    def __init__(self, d_query, d_key, d_hidden):
        super().__init__()
        self.w_q = nn.Linear(d_query, d_hidden, bias=False)
        self.w_k = nn.Linear(d_key, d_hidden, bias=False)
        self.v = nn.Linear(d_hidden, 1, bias=False)

    def forward(self, query, keys, values, mask=None):
        features = torch.tanh(self.w_q(query)[:, :, None] + self.w_k(keys)[:, None])  # (B, L_q, L_k, H)
        scores = (features @ self.v.weight.T)[..., 0]  # (B, L_q, L_k)
        if mask is not None:
            scores = scores.masked_fill(mask.logical_not(), -math.inf)
        m = scores.amax(dim=-1, keepdim=True)
        m = m.masked_fill(torch.isinf(m), 0.0)
        e = torch.exp(scores - m)
        weights = e / e.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(e.dtype).tiny)
        return torch.bmm(weights, values), weights
''',
        "cross_attend": '''def cross_attend(mha, decoder_states, encoder_states, src_ids, pad_id):
    """Queries from the decoder, keys and values from the encoder, the source's padding hidden."""
    keys = values = encoder_states
    return mha(decoder_states, keys, values, mask=padding_mask(src_ids, pad_id))
''',
    }),
    Answer("blind_functional", "padding mask via unsqueeze(-2) twice on ~eq; functional F.linear/F.softmax with the "
           "layers' weights, all-masked rows zeroed by multiplying with mask.any as float; "
           "cross_attend through a small helper", source={
        "padding_mask": '''def padding_mask(ids, pad_id):
    """(B, L) token ids -> (B, 1, 1, L) boolean mask, True where ids != pad_id (real tokens)."""
    is_pad = ids == pad_id
    return (~is_pad).unsqueeze(-2).unsqueeze(-2)
''',
        "AdditiveAttention": '''class AdditiveAttention(nn.Module):
    """Bahdanau attention: score v . tanh(w_q q + w_k k), softmax over the keys, average the values."""

    def __init__(self, d_query, d_key, d_hidden):
        super().__init__()
        self.d_hidden = d_hidden
        self.w_q = nn.Linear(d_query, d_hidden, bias=False)
        self.w_k = nn.Linear(d_key, d_hidden, bias=False)
        self.v = nn.Linear(d_hidden, 1, bias=False)

    def score(self, query, keys):
        q = F.linear(query, self.w_q.weight).unsqueeze(-2)  # (B, L_q, 1, H)
        k = F.linear(keys, self.w_k.weight).unsqueeze(-3)  # (B, 1, L_k, H)
        return F.linear(torch.tanh(q + k), self.v.weight).squeeze(-1)

    def forward(self, query, keys, values, mask=None):
        e = self.score(query, keys)
        if mask is not None:
            e = e.masked_fill(~mask, float("-inf"))
            has_key = mask.any(dim=-1, keepdim=True).to(e.dtype)
            e = e.masked_fill(has_key == 0, 0.0)  # harmless finite row, zeroed below
            alpha = F.softmax(e, dim=-1) * has_key
        else:
            alpha = F.softmax(e, dim=-1)
        return torch.matmul(alpha, values), alpha
''',
        "cross_attend": '''def _read_encoder(mha, queries, memory, memory_mask):
    return mha(queries, memory, memory, mask=memory_mask)


def cross_attend(mha, decoder_states, encoder_states, src_ids, pad_id):
    """Queries from the decoder, keys and values from the encoder, the source's padding hidden."""
    return _read_encoder(mha, decoder_states, encoder_states, padding_mask(src_ids, pad_id))
''',
    }),
]

ALTERNATIVES += BLIND
