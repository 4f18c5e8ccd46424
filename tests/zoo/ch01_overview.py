"""Bug zoo for exercise 1 (overview): classic mistakes that must lose points, and unusual but
correct answers that must keep full marks."""

from submissions import Answer

ASSIGNMENT = "01_overview"

RNN = "rnn_forward"
ATT = "self_attention_forward"
COUNT = "transformer_parameter_count"

_STEP = "        h = torch.tanh(x[:, t] @ w_xh + h @ w_hh + b_h)  # (B, d_h)\n"
_APPEND = "        outputs.append(h)\n"
_ZEROS = "x.new_zeros(batch, w_hh.shape[0]) if h0 is None else h0"
_CHECK = ("    if d_model % n_heads != 0:\n"
          "        raise ValueError(f\"d_model={d_model} is not divisible by n_heads={n_heads}\")\n")

MISTAKES = [
    # --- rnn_forward
    Answer("rnn_no_bias", "forgets the bias b_h", replace={RNN: [(" + b_h)", ")")]}),
    Answer("rnn_state_times_w_xh", "multiplies the previous state by w_xh instead of w_hh",
           replace={RNN: [("h @ w_hh", "h @ w_xh")]}),
    Answer("rnn_transposed_weights", "transposes the weights (x_t @ w_xh.T), which only runs when d_in == d_h",
           replace={RNN: [("x[:, t] @ w_xh + h @ w_hh", "x[:, t] @ w_xh.T + h @ w_hh.T")]}),
    Answer("rnn_outputs_before_update", "stores h_{t-1} in outputs[:, t] (off by one step)",
           replace={RNN: [(_STEP + _APPEND, _APPEND + _STEP)]}),
    Answer("rnn_ignores_h0", "always starts from zeros, even when h0 is given",
           replace={RNN: [(_ZEROS, "x.new_zeros(batch, w_hh.shape[0])")]}),
    Answer("rnn_relu", "uses ReLU instead of tanh", replace={RNN: [("torch.tanh(", "torch.relu(")]}),
    Answer("rnn_sigmoid", "uses sigmoid instead of tanh", replace={RNN: [("torch.tanh(", "torch.sigmoid(")]}),
    Answer("rnn_h_last_from_first_step", "returns the state after the first step as h_last",
           replace={RNN: [("return torch.stack(outputs, dim=1), h", "return torch.stack(outputs, dim=1), outputs[0]")]}),
    Answer("rnn_state_not_carried", "starts every step from h0 instead of the previous state",
           replace={RNN: [("h = " + _ZEROS, "h = h_start = " + _ZEROS),
                          ("+ h @ w_hh", "+ h_start @ w_hh")]}),
    Answer("rnn_float32_zero_state", "creates the zero initial state in float32 whatever the input's dtype",
           replace={RNN: [("x.new_zeros(batch, w_hh.shape[0])", "torch.zeros(batch, w_hh.shape[0])")]}),
    Answer("rnn_calls_nn_rnn", "runs PyTorch's nn.RNN with the weights copied in", source={RNN: '''
def rnn_forward(x, w_xh, w_hh, b_h, h0=None):
    rnn = nn.RNN(w_xh.shape[0], w_xh.shape[1], batch_first=True).to(x.dtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(w_xh.T)
        rnn.weight_hh_l0.copy_(w_hh.T)
        rnn.bias_ih_l0.copy_(b_h)
        rnn.bias_hh_l0.zero_()
    outputs, h_n = rnn(x, None if h0 is None else h0[None])
    return outputs, h_n[0]
'''}),
    Answer("rnn_wraps_the_reference", "delegates to the course's reference implementation", source={RNN: '''
def rnn_forward(x, w_xh, w_hh, b_h, h0=None):
    from llm_foundations.overview import rnn_forward as reference
    return reference(x, w_xh, w_hh, b_h, h0)
'''}),
    # --- self_attention_forward
    Answer("attention_no_scale", "forgets the 1/sqrt(d_k) scaling", replace={ATT: [(" / math.sqrt(q.shape[-1])", "")]}),
    Answer("attention_scale_by_d", "scales by sqrt(d) of the input instead of sqrt(d_k)",
           replace={ATT: [("math.sqrt(q.shape[-1])", "math.sqrt(x.shape[-1])")]}),
    Answer("attention_softmax_over_queries", "takes the softmax over the queries (dim=-2)",
           replace={ATT: [("torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=-2)")]}),
    Answer("attention_values_from_w_k", "makes the values with w_k", replace={ATT: [("x @ w_v  #", "x @ w_k  #")]}),
    Answer("attention_loop_over_positions", "computes the right values, one query position at a time", source={ATT: '''
def self_attention_forward(x, w_q, w_k, w_v):
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    rows = []
    for i in range(x.shape[1]):
        scores = q[:, i:i + 1] @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, 1, L)
        rows.append(torch.softmax(scores, dim=-1) @ v)  # (B, 1, d_v)
    return torch.cat(rows, dim=1)
'''}),
    Answer("attention_calls_pytorch_sdpa", "calls F.scaled_dot_product_attention", source={ATT: '''
def self_attention_forward(x, w_q, w_k, w_v):
    return F.scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v)
'''}),
    Answer("attention_wraps_the_reference", "calls the course's reference attention", source={ATT: '''
def self_attention_forward(x, w_q, w_k, w_v):
    from llm_foundations.attention import scaled_dot_product_attention
    return scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v)[0]
'''}),
    # --- transformer_parameter_count
    Answer("count_without_biases", "forgets the biases of the linear layers",
           replace={COUNT: [("4 * (d * d + d)", "4 * d * d"), ("2 * d * d_ff + d_ff + d", "2 * d * d_ff")]}),
    Answer("count_generator_separately", "counts the tied generator as another V x d matrix",
           replace={COUNT: [("return vocab_size * d", "return 2 * vocab_size * d")]}),
    Answer("count_without_layernorms", "forgets the LayerNorms", replace={COUNT: [("norm = 2 * d", "norm = 0")]}),
    Answer("count_layernorm_gain_only", "counts d parameters per LayerNorm (forgets its bias)",
           replace={COUNT: [("norm = 2 * d", "norm = d")]}),
    Answer("count_without_final_norms", "forgets the final LayerNorm after each stack",
           replace={COUNT: [("(encoder_layer + decoder_layer) + 2 * norm", "(encoder_layer + decoder_layer)")]}),
    Answer("count_cross_attention_in_encoder", "gives the encoder layers a cross-attention too",
           replace={COUNT: [("encoder_layer = attention + feed_forward + 2 * norm",
                             "encoder_layer = 2 * attention + feed_forward + 3 * norm")]}),
    Answer("count_per_head_projections", "gives every head its own d x d query, key and value projections",
           replace={COUNT: [("attention = 4 * (d * d + d)", "attention = 3 * n_heads * (d * d + d) + (d * d + d)")]}),
    Answer("count_float_head_width", "computes with d_head = d_model / n_heads and returns a float",
           replace={COUNT: [("attention = 4 * (d * d + d)", "attention = 4 * (n_heads * d * (d / n_heads) + d)")]}),
    Answer("count_no_divisibility_check", "accepts d_model % n_heads != 0", replace={COUNT: [(_CHECK, "")]}),
    Answer("count_builds_nn_transformer", "builds nn.Transformer (on the meta device) and counts", source={COUNT: '''
def transformer_parameter_count(vocab_size, d_model, n_heads, d_ff, n_layers):
    if d_model % n_heads != 0:
        raise ValueError("d_model must be divisible by n_heads")
    model = nn.Transformer(d_model, n_heads, n_layers, n_layers, d_ff, batch_first=True, device="meta")
    return sum(p.numel() for p in model.parameters()) + vocab_size * d_model
'''}),
    Answer("count_imports_the_reference", "imports the course's reference implementation", source={
        COUNT: "from llm_foundations.overview import transformer_parameter_count\n"}),
]

ALTERNATIVES = [
    Answer("rnn_einsum_preallocated", "einsum products written into a preallocated output tensor", source={RNN: '''
def rnn_forward(x, w_xh, w_hh, b_h, h0=None):
    B, L, _ = x.shape
    d_h = w_hh.shape[1]
    h = torch.zeros(B, d_h, dtype=x.dtype, device=x.device) if h0 is None else h0.clone()
    outputs = torch.empty(B, L, d_h, dtype=x.dtype, device=x.device)
    for t in range(L):
        h = torch.tanh(torch.einsum("bi,ih->bh", x[:, t], w_xh) + torch.einsum("bj,jh->bh", h, w_hh) + b_h)
        outputs[:, t] = h
    return outputs, outputs[:, -1]
'''}),
    Answer("rnn_input_projection_first", "projects all inputs at once, then loops with addmm over unbind", source={RNN: '''
def rnn_forward(x, w_xh, w_hh, b_h, h0=None):
    drive = x @ w_xh + b_h  # (B, L, d_h): the part that does not depend on the state
    h = drive.new_zeros(drive.shape[0], drive.shape[2]) if h0 is None else h0
    states = []
    for drive_t in drive.unbind(dim=1):
        h = torch.addmm(drive_t, h, w_hh).tanh()
        states.append(h)
    return torch.stack(states, 1), h
'''}),
    Answer("attention_einsum_manual_softmax", "einsum and a hand-written, max-shifted softmax", source={ATT: '''
def self_attention_forward(x, w_q, w_k, w_v):
    q = torch.einsum("bld,dk->blk", x, w_q)
    k = torch.einsum("bld,dk->blk", x, w_k)
    v = torch.einsum("bld,dv->blv", x, w_v)
    s = torch.einsum("bik,bjk->bij", q, k) * w_q.shape[1] ** -0.5
    e = torch.exp(s - s.amax(dim=-1, keepdim=True))
    return torch.einsum("bij,bjv->biv", e / e.sum(dim=-1, keepdim=True), v)
'''}),
    Answer("attention_prescaled_bmm", "scales the queries first, bmm and F.softmax", source={ATT: '''
def self_attention_forward(x, w_q, w_k, w_v):
    q = torch.matmul(x, w_q) / w_q.size(1) ** 0.5
    weights = F.softmax(torch.bmm(q, torch.matmul(x, w_k).transpose(1, 2)), dim=2)
    return torch.bmm(weights, torch.matmul(x, w_v))
'''}),
    Answer("rnn_float32_inside", "runs the recurrence in float32 and casts the results back to x's dtype (float64 in, "
           "float64 out, float32 precision: the task asks for no precision)", source={RNN: '''
def rnn_forward(x, w_xh, w_hh, b_h, h0=None):
    xs, wx, wh, b = x.float(), w_xh.float(), w_hh.float(), b_h.float()
    h = xs.new_zeros(x.shape[0], w_hh.shape[0]) if h0 is None else h0.float()
    states = []
    for t in range(x.shape[1]):
        h = torch.tanh(xs[:, t] @ wx + h @ wh + b)
        states.append(h)
    return torch.stack(states, dim=1).to(x.dtype), h.to(x.dtype)
'''}),
    Answer("attention_float32_scale", "divides by torch.sqrt(torch.tensor(d_k)), a float32 scale (float64 inputs then "
           "come out with float32 rounding, which the task allows: it asks for no precision)", source={ATT: '''
def self_attention_forward(x, w_q, w_k, w_v):
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    scores = q @ k.transpose(-2, -1) / torch.sqrt(torch.tensor(q.shape[-1]))
    return torch.softmax(scores, dim=-1) @ v
'''}),
    Answer("count_expanded_polynomial", "the expanded polynomial in one line", source={COUNT: '''
def transformer_parameter_count(vocab_size, d_model, n_heads, d_ff, n_layers):
    if d_model % n_heads:
        raise ValueError("n_heads must divide d_model")
    V, d, N = vocab_size, d_model, n_layers
    return V * d + N * (12 * d**2 + 4 * d * d_ff + 2 * d_ff + 24 * d) + 4 * d
'''}),
    Answer("count_shape_table", "lists every parameter's shape and sums the products", source={COUNT: '''
def transformer_parameter_count(vocab_size, d_model, n_heads, d_ff, n_layers):
    if d_model % n_heads != 0:
        raise ValueError("d_model % n_heads != 0")
    d = d_model
    attention = [(d, d), (d,)] * 4
    ffn = [(d_ff, d), (d_ff,), (d, d_ff), (d,)]
    norm = [(d,), (d,)]
    shapes = [(vocab_size, d)] + norm * 2  # shared embedding, final norms
    shapes += n_layers * (attention + ffn + norm * 2)  # encoder layers
    shapes += n_layers * (attention * 2 + ffn + norm * 3)  # decoder layers
    return sum(math.prod(shape) for shape in shapes)
'''}),
    Answer("count_sympy", "builds the formula symbolically with sympy and substitutes", source={COUNT: '''
def transformer_parameter_count(vocab_size, d_model, n_heads, d_ff, n_layers):
    import sympy

    if d_model % n_heads != 0:
        raise ValueError("d_model must be a multiple of n_heads")
    V, d, f, N = sympy.symbols("V d f N", integer=True, positive=True)
    linear = lambda n_in, n_out: n_in * n_out + n_out
    attention, ffn, norm = 4 * linear(d, d), linear(d, f) + linear(f, d), 2 * d
    total = V * d + N * (attention + ffn + 2 * norm) + N * (2 * attention + ffn + 3 * norm) + 2 * norm
    return int(total.subs({V: vocab_size, d: d_model, f: d_ff, N: n_layers}))
'''}),
]


# Blind answers: written from the released student notebook alone (task text and visible tests),
# without the solution, the hidden tests or the checks (a/ch01_overview.py). They join the
# alternatives as written: where one failed, the task text or the tests were fixed, never the answer.
BLIND = [
    Answer("blind_stack_loop", "plain loop over x[:, t], states collected in a list and torch.stack'ed; textbook attention and a sum of per-block helper counts", source={
        "rnn_forward": '''def rnn_forward(x, w_xh, w_hh, b_h, h0=None):
    """Elman RNN h_t = tanh(x_t @ w_xh + h_{t-1} @ w_hh + b_h); returns (outputs (B, L, d_h), h_last (B, d_h))."""
    B, L, _ = x.shape
    d_h = w_hh.shape[0]
    h = x.new_zeros(B, d_h) if h0 is None else h0
    states = []
    for t in range(L):
        h = torch.tanh(x[:, t] @ w_xh + h @ w_hh + b_h)
        states.append(h)
    outputs = torch.stack(states, dim=1)
    return outputs, h
''',
        "self_attention_forward": '''def self_attention_forward(x, w_q, w_k, w_v):
    """softmax((x w_q)(x w_k)^T / sqrt(d_k)) (x w_v) for every position at once: (B, L, d) -> (B, L, d_v)."""
    q = x @ w_q
    k = x @ w_k
    v = x @ w_v
    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v
''',
        "transformer_parameter_count": '''def transformer_parameter_count(vocab_size, d_model, n_heads, d_ff, n_layers):
    """Closed-form number of trainable parameters of the shared-embedding encoder-decoder Transformer."""
    if d_model % n_heads != 0:
        raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")

    def linear(n_in, n_out):
        return n_in * n_out + n_out

    attention = 4 * linear(d_model, d_model)
    feed_forward = linear(d_model, d_ff) + linear(d_ff, d_model)
    layer_norm = 2 * d_model
    encoder_layer = attention + feed_forward + 2 * layer_norm
    decoder_layer = 2 * attention + feed_forward + 3 * layer_norm
    embedding = vocab_size * d_model
    return embedding + n_layers * (encoder_layer + decoder_layer) + 2 * layer_norm
''',
    }),
    Answer("blind_prealloc_inplace", "input projection hoisted out of the loop, outputs preallocated with x.new_empty and filled in place; einsum attention with pre-scaled queries; one expanded polynomial", source={
        "rnn_forward": '''def rnn_forward(x, w_xh, w_hh, b_h, h0=None):
    """Elman RNN h_t = tanh(x_t @ w_xh + h_{t-1} @ w_hh + b_h); returns (outputs (B, L, d_h), h_last (B, d_h))."""
    batch, length, _ = x.shape
    hidden = w_xh.shape[1]
    # the input part does not depend on the recurrence: project every position at once
    driven = x @ w_xh + b_h  # (B, L, d_h)
    outputs = x.new_empty(batch, length, hidden)
    state = x.new_zeros(batch, hidden) if h0 is None else h0
    for t in range(length):
        state = torch.tanh(driven[:, t, :] + state @ w_hh)
        outputs[:, t, :] = state
    return outputs, state
''',
        "self_attention_forward": '''def self_attention_forward(x, w_q, w_k, w_v):
    """softmax((x w_q)(x w_k)^T / sqrt(d_k)) (x w_v) for every position at once: (B, L, d) -> (B, L, d_v)."""
    d_k = w_k.shape[-1]
    queries = torch.einsum("bld,dk->blk", x, w_q) * d_k ** -0.5
    keys = torch.einsum("bld,dk->blk", x, w_k)
    values = torch.einsum("bld,dv->blv", x, w_v)
    scores = torch.einsum("bqk,bsk->bqs", queries, keys)  # (B, L_query, L_key)
    attn = scores.softmax(dim=-1)
    return torch.einsum("bqs,bsv->bqv", attn, values)
''',
        "transformer_parameter_count": '''def transformer_parameter_count(vocab_size, d_model, n_heads, d_ff, n_layers):
    """Closed-form number of trainable parameters of the shared-embedding encoder-decoder Transformer."""
    if n_heads <= 0 or d_model % n_heads:
        raise ValueError("d_model must be a positive multiple of n_heads")
    d, f, n = d_model, d_ff, n_layers
    # encoder layer: 4d^2 + 4d + 2df + f + d + 4d; decoder layer: 8d^2 + 8d + 2df + f + d + 6d; 2 final norms: 4d
    return vocab_size * d + n * (12 * d * d + 4 * d * f + 2 * f + 24 * d) + 4 * d
''',
    }),
    Answer("blind_float64_unbind", "computes the recurrence and the attention in float64 internally (einsum, unbind over time) and casts back; counts via a dict of components", source={
        "rnn_forward": '''def rnn_forward(x, w_xh, w_hh, b_h, h0=None):
    """Elman RNN h_t = tanh(x_t @ w_xh + h_{t-1} @ w_hh + b_h); returns (outputs (B, L, d_h), h_last (B, d_h))."""
    out_dtype = x.dtype
    xd, wx, wh, b = (t.to(torch.float64) for t in (x, w_xh, w_hh, b_h))
    if h0 is None:
        h = x.new_zeros((x.shape[0], w_hh.shape[-1])).to(torch.float64)
    else:
        h = h0.to(torch.float64)
    hs = []
    for x_t in xd.unbind(dim=1):
        h = torch.tanh(torch.einsum("bi,ih->bh", x_t, wx) + torch.einsum("bg,gh->bh", h, wh) + b)
        hs.append(h)
    if hs:
        outputs = torch.stack(hs, dim=1)
    else:
        outputs = xd.new_zeros((x.shape[0], 0, w_hh.shape[-1]))
    return outputs.to(out_dtype), h.to(out_dtype)
''',
        "self_attention_forward": '''def self_attention_forward(x, w_q, w_k, w_v):
    """softmax((x w_q)(x w_k)^T / sqrt(d_k)) (x w_v) for every position at once: (B, L, d) -> (B, L, d_v)."""
    dtype = x.dtype
    x64 = x.double()
    q, k, v = x64 @ w_q.double(), x64 @ w_k.double(), x64 @ w_v.double()
    s = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
    s = s - s.amax(dim=-1, keepdim=True)  # stable softmax by hand, over the keys
    e = s.exp()
    p = e / e.sum(dim=-1, keepdim=True)
    return (p @ v).to(dtype)
''',
        "transformer_parameter_count": '''def transformer_parameter_count(vocab_size, d_model, n_heads, d_ff, n_layers):
    """Closed-form number of trainable parameters of the shared-embedding encoder-decoder Transformer."""
    if d_model % n_heads != 0:
        raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
    parts = {
        "mha": 4 * (d_model * d_model + d_model),          # W_Q, W_K, W_V, W_O with biases
        "ffn": (d_model * d_ff + d_ff) + (d_ff * d_model + d_model),
        "norm": 2 * d_model,                                  # gain + bias
    }
    per_encoder = parts["mha"] + parts["ffn"] + 2 * parts["norm"]
    per_decoder = 2 * parts["mha"] + parts["ffn"] + 3 * parts["norm"]
    totals = {
        "shared_embedding": vocab_size * d_model,
        "encoder": n_layers * per_encoder,
        "decoder": n_layers * per_decoder,
        "final_norms": 2 * parts["norm"],
    }
    return int(sum(totals.values()))
''',
    }),
    Answer("blind_time_major_addmm", "time-major view (L, B, d) with torch.addmm and torch.cat growing the outputs; bmm attention with F.softmax; integer loop over layers", source={
        "rnn_forward": '''def rnn_forward(x, w_xh, w_hh, b_h, h0=None):
    """Elman RNN h_t = tanh(x_t @ w_xh + h_{t-1} @ w_hh + b_h); returns (outputs (B, L, d_h), h_last (B, d_h))."""
    if h0 is None:
        h0 = x.new_zeros(x.size(0), w_hh.size(1))
    h_prev = h0
    outputs = x.new_zeros(x.size(0), 0, w_hh.size(1))
    for x_t in x.transpose(0, 1):  # (B, d_in) for each position, in order
        pre = torch.addmm(b_h, x_t, w_xh)       # b_h + x_t @ w_xh
        pre = torch.addmm(pre, h_prev, w_hh)    # + h_{t-1} @ w_hh
        h_prev = torch.tanh(pre)
        outputs = torch.cat([outputs, h_prev.unsqueeze(1)], dim=1)
    return outputs, h_prev
''',
        "self_attention_forward": '''def self_attention_forward(x, w_q, w_k, w_v):
    """softmax((x w_q)(x w_k)^T / sqrt(d_k)) (x w_v) for every position at once: (B, L, d) -> (B, L, d_v)."""
    Q = torch.matmul(x, w_q)
    K = torch.matmul(x, w_k)
    V = torch.matmul(x, w_v)
    scale = 1.0 / math.sqrt(w_q.shape[1])
    logits = torch.bmm(Q, K.transpose(1, 2)).mul(scale)
    return torch.bmm(F.softmax(logits, dim=2), V)
''',
        "transformer_parameter_count": '''def transformer_parameter_count(vocab_size, d_model, n_heads, d_ff, n_layers):
    """Closed-form number of trainable parameters of the shared-embedding encoder-decoder Transformer."""
    d_head, rest = divmod(d_model, n_heads)
    if rest:
        raise ValueError(f"d_model ({d_model}) is not a multiple of n_heads ({n_heads})")
    # the heads are n_heads slices of width d_head: n_heads * d_head == d_model, so they add nothing
    q_k_v_o = 4 * (d_model * (n_heads * d_head) + d_model)
    ffn = 2 * d_model * d_ff + d_ff + d_model
    ln = d_model + d_model
    total = vocab_size * d_model
    for _ in range(n_layers):
        total += q_k_v_o + ffn + 2 * ln          # encoder layer
        total += 2 * q_k_v_o + ffn + 3 * ln      # decoder layer
    total += ln + ln                             # final encoder norm, final decoder norm
    return total
''',
    }),
    Answer("blind_named_recursive", "state list indexed from the previous entry, outputs via torch.stack of a sliced list (h0 kept as entry 0); broadcasted-product scores with log_softmax().exp(); counts from a list of Linear shapes", source={
        "rnn_forward": '''def rnn_forward(x, w_xh, w_hh, b_h, h0=None):
    """Elman RNN h_t = tanh(x_t @ w_xh + h_{t-1} @ w_hh + b_h); returns (outputs (B, L, d_h), h_last (B, d_h))."""
    n_batch, n_steps = x.shape[0], x.shape[1]
    width = w_hh.shape[-1]
    trajectory = [x.new_zeros(n_batch, width) if h0 is None else h0]
    step = 0
    while step < n_steps:
        previous = trajectory[-1]
        trajectory.append(torch.tanh(torch.matmul(x[:, step, :], w_xh) + torch.matmul(previous, w_hh) + b_h))
        step += 1
    if n_steps == 0:
        return x.new_zeros(n_batch, 0, width), trajectory[0]
    return torch.stack(trajectory[1:], dim=1), trajectory[-1]
''',
        "self_attention_forward": '''def self_attention_forward(x, w_q, w_k, w_v):
    """softmax((x w_q)(x w_k)^T / sqrt(d_k)) (x w_v) for every position at once: (B, L, d) -> (B, L, d_v)."""
    query, key, value = x @ w_q, x @ w_k, x @ w_v
    # all L x L dot products at once by broadcasting (B, L, 1, d_k) * (B, 1, L, d_k)
    scores = (query.unsqueeze(2) * key.unsqueeze(1)).sum(dim=-1) / math.sqrt(key.shape[-1])
    probs = torch.log_softmax(scores, dim=-1).exp()
    return probs @ value
''',
        "transformer_parameter_count": '''def transformer_parameter_count(vocab_size, d_model, n_heads, d_ff, n_layers):
    """Closed-form number of trainable parameters of the shared-embedding encoder-decoder Transformer."""
    if not isinstance(n_heads, int) or n_heads < 1 or d_model % n_heads != 0:
        raise ValueError(f"cannot split d_model={d_model} into n_heads={n_heads} equal heads")
    attn_linears = [(d_model, d_model)] * 4
    ffn_linears = [(d_model, d_ff), (d_ff, d_model)]
    n_norms_enc, n_norms_dec = 2, 3
    enc_linears = attn_linears + ffn_linears
    dec_linears = attn_linears * 2 + ffn_linears
    weights_and_biases = lambda shapes: sum(i * o + o for i, o in shapes)
    per_layer = (weights_and_biases(enc_linears) + weights_and_biases(dec_linears)
                 + (n_norms_enc + n_norms_dec) * 2 * d_model)
    return vocab_size * d_model + n_layers * per_layer + 2 * (2 * d_model)
''',
    }),
]

ALTERNATIVES += BLIND
