"""Bug zoo for exercise 6 (residual connections, LayerNorm, feed-forward): classic mistakes that must
lose points, and unusual but correct answers that must keep full marks."""

from submissions import Answer

ASSIGNMENT = "06_residual_connections"

LN = "LayerNorm"
FFN = "FeedForward"
RES = "ResidualSublayer"

_VAR = "var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # (..., 1): biased, divide by d"
_LN_OUT = "return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias"
_FFN_OUT = "return self.linear2(self.dropout(torch.relu(self.linear1(x))))"
_PRE = "return x + self.dropout(sublayer(self.norm(x)))"
_POST = "return self.norm(x + self.dropout(sublayer(x)))"

MISTAKES = [
    # LayerNorm
    Answer("unbiased_variance", "uses torch.var's default (divides by d - 1)",
           replace={LN: [(_VAR, "var = x.var(dim=-1, keepdim=True)")]}),
    Answer("eps_outside_root", "adds eps to the standard deviation, outside the square root",
           replace={LN: [("torch.sqrt(var + self.eps)", "(torch.sqrt(var) + self.eps)")]}),
    Answer("divides_by_variance", "divides by the variance instead of the standard deviation",
           replace={LN: [("torch.sqrt(var + self.eps)", "(var + self.eps)")]}),
    Answer("normalises_over_batch", "takes the statistics over dim 0 instead of the last dimension",
           replace={LN: [("dim=-1", "dim=0")]}),
    Answer("normalises_whole_tensor", "takes the statistics over the whole tensor",
           replace={LN: [("x.mean(dim=-1, keepdim=True)", "x.mean()"), (_VAR, "var = ((x - mean) ** 2).mean()")]}),
    Answer("no_weight", "forgets gamma (the weight)", replace={LN: [(" * self.weight", "")]}),
    Answer("no_bias", "forgets beta (the bias)", replace={LN: [(" + self.bias", "")]}),
    Answer("random_weight_init", "initialises gamma randomly instead of to ones",
           replace={LN: [("nn.Parameter(torch.ones(d_model))", "nn.Parameter(torch.randn(d_model))")]}),
    Answer("weight_bias_not_parameters", "stores gamma and beta as plain tensors, not nn.Parameters",
           replace={LN: [("nn.Parameter(torch.ones(d_model))", "torch.ones(d_model)"),
                         ("nn.Parameter(torch.zeros(d_model))", "torch.zeros(d_model)")]}),
    Answer("eps_ignored", "ignores the eps argument (always 1e-5)", replace={LN: [("var + self.eps", "var + 1e-5")]}),
    Answer("calls_f_layer_norm", "calls F.layer_norm", replace={LN: [(
        _LN_OUT, "return F.layer_norm(x, (x.size(-1),), self.weight, self.bias, self.eps)")]}),
    Answer("calls_native_layer_norm", "calls torch.native_layer_norm", replace={LN: [(
        _LN_OUT, "return torch.native_layer_norm(x, [x.size(-1)], self.weight, self.bias, self.eps)[0]")]}),
    Answer("group_norm_in_disguise", "computes LayerNorm with F.group_norm on a reshaped input", replace={LN: [(
        _LN_OUT, "return F.group_norm(x.reshape(-1, x.size(-1), 1), 1, eps=self.eps).reshape(x.shape) "
                 "* self.weight + self.bias")]}),
    Answer("subclasses_the_reference", "subclasses the course's reference LayerNorm", source={LN: '''
import llm_foundations.layers


class LayerNorm(llm_foundations.layers.LayerNorm):
    pass
'''}),
    # FeedForward
    Answer("gelu", "uses GELU instead of ReLU", replace={FFN: [("torch.relu(", "F.gelu(")]}),
    Answer("no_activation", "has no activation between the linear layers",
           replace={FFN: [(_FFN_OUT, "return self.linear2(self.dropout(self.linear1(x)))")]}),
    Answer("no_linear_biases", "builds the linear layers without biases",
           replace={FFN: [("nn.Linear(d_model, d_ff)", "nn.Linear(d_model, d_ff, bias=False)"),
                          ("nn.Linear(d_ff, d_model)", "nn.Linear(d_ff, d_model, bias=False)")]}),
    Answer("dropout_on_input", "applies dropout to the input, before linear1",
           replace={FFN: [(_FFN_OUT, "return self.linear2(torch.relu(self.linear1(self.dropout(x))))")]}),
    Answer("dropout_on_output", "applies dropout to the output, after linear2",
           replace={FFN: [(_FFN_OUT, "return self.dropout(self.linear2(torch.relu(self.linear1(x))))")]}),
    Answer("no_dropout", "never applies dropout", replace={FFN: [(_FFN_OUT, "return self.linear2(torch.relu(self.linear1(x)))")]}),
    Answer("dropout_in_eval_too", "drops units in eval mode too (F.dropout with training=True)",
           replace={FFN: [(_FFN_OUT, "return self.linear2(F.dropout(torch.relu(self.linear1(x)), self.dropout.p, training=True))")]}),
    Answer("relu_on_output", "applies a ReLU after linear2 as well",
           replace={FFN: [(_FFN_OUT, "return torch.relu(self.linear2(self.dropout(torch.relu(self.linear1(x)))))")]}),
    # ResidualSublayer
    Answer("pre_post_swapped", "reads norm_first the wrong way round", replace={RES: [("if self.norm_first:", "if not self.norm_first:")]}),
    Answer("default_post_ln", "defaults to post-LN", replace={RES: [("norm_first=True):", "norm_first=False):")]}),
    Answer("normalised_residual", "normalises the residual path too, norm(x) + f(norm(x))",
           replace={RES: [(_PRE, "return self.norm(x) + self.dropout(sublayer(self.norm(x)))")]}),
    Answer("no_residual", "forgets the residual: returns the sublayer's output only",
           replace={RES: [(_PRE, "return self.dropout(sublayer(self.norm(x)))"),
                          (_POST, "return self.norm(self.dropout(sublayer(x)))")]}),
    Answer("post_ln_norms_sublayer_output", "post-LN normalises the sublayer's output before the sum",
           replace={RES: [(_POST, "return x + self.norm(self.dropout(sublayer(x)))")]}),
    Answer("dropout_on_sum", "applies dropout to the sum instead of the sublayer's output",
           replace={RES: [(_PRE, "return self.dropout(x + sublayer(self.norm(x)))"),
                          (_POST, "return self.norm(self.dropout(x + sublayer(x)))")]}),
    Answer("dropout_on_sublayer_input", "applies dropout to the sublayer's input",
           replace={RES: [(_PRE, "return x + sublayer(self.dropout(self.norm(x)))"),
                          (_POST, "return self.norm(x + sublayer(self.dropout(x)))")]}),
    Answer("uses_nn_layernorm", "uses nn.LayerNorm instead of its own LayerNorm",
           replace={RES: [("self.norm = LayerNorm(d_model)", "self.norm = nn.LayerNorm(d_model)")]}),
    Answer("imports_the_reference", "imports the course's reference implementation", source={
        LN: "from llm_foundations.layers import LayerNorm\n",
        FFN: "from llm_foundations.layers import FeedForward\n",
        RES: "from llm_foundations.layers import ResidualSublayer\n",
    }),
]

ALTERNATIVES = [
    Answer("float32_inside", "LayerNorm and FeedForward compute in float32 and cast back to the input's dtype (the "
           "mixed-precision habit: float64 in, float64 out, float32 precision; the task asks for no precision)", source={
        LN: '''
class LayerNorm(nn.Module):
    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x):
        h = x.float()
        centred = h - h.mean(dim=-1, keepdim=True)
        normed = centred * torch.rsqrt(centred.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (normed * self.weight.float() + self.bias.float()).to(x.dtype)
''',
        FFN: '''
class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        w1, b1 = self.linear1.weight.float(), self.linear1.bias.float()
        w2, b2 = self.linear2.weight.float(), self.linear2.bias.float()
        hidden = self.dropout(torch.relu(F.linear(x.float(), w1, b1)))
        return F.linear(hidden, w2, b2).to(x.dtype)
'''}),
    Answer("var_mean_rsqrt", "torch.var_mean with correction=0 and rsqrt; F.linear and clamp in the FFN", source={
        LN: '''
class LayerNorm(nn.Module):
    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))
        self.eps = eps

    def forward(self, x):
        var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
        return torch.addcmul(self.bias, (x - mean) * torch.rsqrt(var + self.eps), self.weight)
''',
        FFN: '''
class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.p = dropout

    def forward(self, x):
        hidden = F.linear(x, self.linear1.weight, self.linear1.bias).clamp(min=0)
        hidden = F.dropout(hidden, self.p, training=self.training)
        return F.linear(hidden, self.linear2.weight, self.linear2.bias)
'''}),
    Answer("second_moment_formula", "variance as E[x^2] - E[x]^2; FFN as an nn.Sequential; dropout before the ReLU "
           "(equivalent: ReLU commutes with dropout's mask and positive scale)", source={
        LN: '''
class LayerNorm(nn.Module):
    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        var = (x * x).mean(-1, keepdim=True) - mean * mean
        return self.weight * (x - mean) / (var + self.eps).sqrt() + self.bias
''',
        FFN: '''
class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.net = nn.Sequential(self.linear1, nn.Dropout(dropout), nn.ReLU(), self.linear2)

    def forward(self, x):
        return self.net(x)
'''}),
    Answer("loop_over_vectors", "LayerNorm as a loop over the vectors with einsum sums; residual via helper methods", source={
        LN: '''
class LayerNorm(nn.Module):
    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.d, self.eps = d_model, eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x):
        rows = x.reshape(-1, self.d)
        out = []
        for row in rows:
            mu = torch.einsum("i->", row) / self.d
            sigma2 = torch.einsum("i,i->", row - mu, row - mu) / self.d
            out.append((row - mu) / (sigma2 + self.eps) ** 0.5)
        return torch.stack(out).reshape(x.shape) * self.weight + self.bias
''',
        RES: '''
class ResidualSublayer(nn.Module):
    def __init__(self, d_model, dropout=0.0, norm_first=True):
        super().__init__()
        self.norm = LayerNorm(d_model)
        self.p = dropout
        self.wiring = self._pre if norm_first else self._post

    def _drop(self, h):
        return F.dropout(h, self.p, self.training)

    def _pre(self, x, f):
        return x + self._drop(f(self.norm(x)))

    def _post(self, x, f):
        return self.norm(x + self._drop(f(x)))

    def forward(self, x, sublayer):
        return self.wiring(x, sublayer)
'''}),
    Answer("handmade_dropout", "dropout written by hand with a Bernoulli mask; std via .std(correction=0)", source={
        LN: '''
class LayerNorm(nn.Module):
    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x):
        centred = x - x.mean(-1, keepdim=True)
        std = centred.std(-1, keepdim=True, correction=0)
        return centred / torch.sqrt(std ** 2 + self.eps) * self.weight + self.bias
''',
        FFN: '''
class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.p = dropout

    def forward(self, x):
        h = torch.relu(self.linear1(x))
        if self.training and self.p > 0:
            h = h * (torch.rand_like(h) >= self.p) / (1 - self.p)
        return self.linear2(h)
''',
        RES: '''
class ResidualSublayer(nn.Module):
    def __init__(self, d_model, dropout=0.0, norm_first=True):
        super().__init__()
        self.norm = LayerNorm(d_model)
        self.p, self.norm_first = dropout, norm_first

    def forward(self, x, sublayer):
        h = sublayer(self.norm(x) if self.norm_first else x)
        if self.training and self.p > 0:
            h = h * (torch.rand_like(h) >= self.p) / (1 - self.p)
        return x + h if self.norm_first else self.norm(x + h)
'''}),
]


# Blind answers: written from the released student notebook alone (task text and visible tests),
# without the solution, the hidden tests or the checks (b/ch06_residual_connections.py). They join the
# alternatives as written: where one failed, the task text or the tests were fixed, never the answer.
BLIND = [
    Answer("blind_textbook", "mean / var(correction=0) / sqrt(var + eps); nn.Dropout module; ResidualSublayer "
           "branches on self.norm_first inside forward", source={
        "LayerNorm": '''class LayerNorm(nn.Module):
    """Layer normalisation over the last dimension, like nn.LayerNorm: weight (gamma), bias (beta)."""

    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, correction=0)
        return self.weight * (x - mean) / torch.sqrt(var + self.eps) + self.bias
''',
        "FeedForward": '''class FeedForward(nn.Module):
    """Position-wise feed-forward network: linear1 (d_model -> d_ff), ReLU, dropout, linear2 (d_ff -> d_model)."""

    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.linear2(self.dropout(torch.relu(self.linear1(x))))
''',
        "ResidualSublayer": '''class ResidualSublayer(nn.Module):
    """x + dropout(sublayer(norm(x))) if norm_first (pre-LN), else norm(x + dropout(sublayer(x))) (post-LN)."""

    def __init__(self, d_model, dropout=0.0, norm_first=True):
        super().__init__()
        self.norm = LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x, sublayer):
        if self.norm_first:
            return x + self.dropout(sublayer(self.norm(x)))
        return self.norm(x + self.dropout(sublayer(x)))
''',
    }),
    Answer("blind_float64_rsqrt", "statistics in float64 with E[x^2] - E[x]^2 and rsqrt, cast back; FeedForward with "
           "clamp_min(0) and functional F.dropout(training=self.training); Residual with F.dropout too", source={
        "LayerNorm": '''class LayerNorm(nn.Module):
    """Layer normalisation over the last dimension, like nn.LayerNorm: weight (gamma), bias (beta)."""

    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.d_model = d_model
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x):
        x64 = x.to(torch.float64)
        mean = x64.mean(dim=-1, keepdim=True)
        centred = x64 - mean
        var = (x64 * x64).mean(dim=-1, keepdim=True) - mean * mean
        var = var.clamp_min(0.0)  # rounding can make E[x^2] - E[x]^2 slightly negative
        x_hat = (centred * torch.rsqrt(var + self.eps)).to(x.dtype)
        return x_hat * self.weight + self.bias
''',
        "FeedForward": '''class FeedForward(nn.Module):
    """Position-wise feed-forward network: linear1 (d_model -> d_ff), ReLU, dropout, linear2 (d_ff -> d_model)."""

    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.p = dropout

    def forward(self, x):
        hidden = self.linear1(x).clamp_min(0.0)
        hidden = F.dropout(hidden, p=self.p, training=self.training)
        return self.linear2(hidden)
''',
        "ResidualSublayer": '''class ResidualSublayer(nn.Module):
    """x + dropout(sublayer(norm(x))) if norm_first (pre-LN), else norm(x + dropout(sublayer(x))) (post-LN)."""

    def __init__(self, d_model, dropout=0.0, norm_first=True):
        super().__init__()
        self.norm = LayerNorm(d_model)
        self.p = dropout
        self.pre_ln = bool(norm_first)

    def _drop(self, h):
        return F.dropout(h, p=self.p, training=self.training)

    def forward(self, x, sublayer):
        if self.pre_ln:
            return x + self._drop(sublayer(self.norm(x)))
        return self.norm(x + self._drop(sublayer(x)))
''',
    }),
    Answer("blind_var_mean_sequential", "torch.var_mean(unbiased=False) and division; FeedForward keeps an "
           "nn.Sequential that shares linear1/linear2 (duplicate state_dict keys); Residual picks a bound "
           "method at construction time", source={
        "LayerNorm": '''class LayerNorm(nn.Module):
    """Layer normalisation over the last dimension, like nn.LayerNorm: weight (gamma), bias (beta)."""

    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))
        self.eps = eps

    def forward(self, x):
        var, mean = torch.var_mean(x, dim=-1, keepdim=True, unbiased=False)
        std = (var + self.eps).sqrt()
        return torch.addcmul(self.bias, self.weight, (x - mean) / std)
''',
        "FeedForward": '''class FeedForward(nn.Module):
    """Position-wise feed-forward network: linear1 (d_model -> d_ff), ReLU, dropout, linear2 (d_ff -> d_model)."""

    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.net = nn.Sequential(self.linear1, nn.ReLU(), nn.Dropout(dropout), self.linear2)

    def forward(self, x):
        return self.net(x)
''',
        "ResidualSublayer": '''class ResidualSublayer(nn.Module):
    """x + dropout(sublayer(norm(x))) if norm_first (pre-LN), else norm(x + dropout(sublayer(x))) (post-LN)."""

    def __init__(self, d_model, dropout=0.0, norm_first=True):
        super().__init__()
        self.norm = LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.norm_first = norm_first
        self._apply_fn = self._pre if norm_first else self._post

    def _pre(self, x, f):
        return x + self.drop(f(self.norm(x)))

    def _post(self, x, f):
        return self.norm(x + self.drop(f(x)))

    def forward(self, x, sublayer):
        return self._apply_fn(x, sublayer)
''',
    }),
    Answer("blind_manual_sums", "sums divided by d (no mean/var helpers), pow(-0.5); FeedForward written with "
           "F.linear on the layers' weights and torch.maximum; residual in two explicit steps with a "
           "differently named dropout and norm_first flag", source={
        "LayerNorm": '''class LayerNorm(nn.Module):
    """Layer normalisation over the last dimension, like nn.LayerNorm: weight (gamma), bias (beta)."""

    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.normalized_shape = (d_model,)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x):
        d = x.shape[-1]
        mu = x.sum(dim=-1, keepdim=True) / d
        diff = x - mu
        sigma2 = (diff ** 2).sum(dim=-1, keepdim=True) / d
        inv = (sigma2 + self.eps).pow(-0.5)
        return diff * inv * self.weight + self.bias
''',
        "FeedForward": '''class FeedForward(nn.Module):
    """Position-wise feed-forward network: linear1 (d_model -> d_ff), ReLU, dropout, linear2 (d_ff -> d_model)."""

    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.hidden_dropout = nn.Dropout(p=dropout)

    def forward(self, x):
        h = F.linear(x, self.linear1.weight, self.linear1.bias)
        h = torch.maximum(h, torch.zeros((), dtype=h.dtype, device=h.device))
        h = self.hidden_dropout(h)
        return F.linear(h, self.linear2.weight, self.linear2.bias)
''',
        "ResidualSublayer": '''class ResidualSublayer(nn.Module):
    """x + dropout(sublayer(norm(x))) if norm_first (pre-LN), else norm(x + dropout(sublayer(x))) (post-LN)."""

    def __init__(self, d_model, dropout=0.0, norm_first=True):
        super().__init__()
        self.norm = LayerNorm(d_model)
        self.residual_dropout = nn.Dropout(p=dropout)
        self.prenorm = norm_first

    def forward(self, x, sublayer):
        if self.prenorm:
            update = self.residual_dropout(sublayer(self.norm(x)))
            return x + update
        update = self.residual_dropout(sublayer(x))
        summed = x + update
        return self.norm(summed)
''',
    }),
    Answer("blind_einsum_loops", "LayerNorm stats via einsum with a ones vector, gamma/beta applied with einsum; "
           "FeedForward via einsum on weights with F.relu; Residual is one code path that normalises "
           "before or after the torch.add depending on norm_first", source={
        "LayerNorm": '''class LayerNorm(nn.Module):
    """Layer normalisation over the last dimension, like nn.LayerNorm: weight (gamma), bias (beta)."""

    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x):
        d = x.shape[-1]
        avg = torch.full((d,), 1.0 / d, dtype=x.dtype, device=x.device)
        mean = torch.einsum("...d,d->...", x, avg).unsqueeze(-1)
        c = x - mean
        var = torch.einsum("...d,...d,d->...", c, c, avg).unsqueeze(-1)
        normed = c / torch.sqrt(var + self.eps)
        return torch.einsum("...d,d->...d", normed, self.weight) + self.bias
''',
        "FeedForward": '''class FeedForward(nn.Module):
    """Position-wise feed-forward network: linear1 (d_model -> d_ff), ReLU, dropout, linear2 (d_ff -> d_model)."""

    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        h = torch.einsum("...i,oi->...o", x, self.linear1.weight) + self.linear1.bias
        h = self.drop(F.relu(h))
        return torch.einsum("...i,oi->...o", h, self.linear2.weight) + self.linear2.bias
''',
        "ResidualSublayer": '''class ResidualSublayer(nn.Module):
    """x + dropout(sublayer(norm(x))) if norm_first (pre-LN), else norm(x + dropout(sublayer(x))) (post-LN)."""

    def __init__(self, d_model, dropout=0.0, norm_first=True):
        super().__init__()
        self.norm = LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x, sublayer):
        inner = self.norm(x) if self.norm_first else x
        out = torch.add(x, self.dropout(sublayer(inner)))
        return out if self.norm_first else self.norm(out)
''',
    }),
    Answer("blind_inplace_relu", "centred.square().mean() variance and a single reciprocal; FeedForward with "
           "an in-place ReLU (relu_) on the fresh hidden tensor; Residual dispatches through a dict of the two "
           "arrangements keyed by norm_first", source={
        "LayerNorm": '''class LayerNorm(nn.Module):
    """Layer normalisation over the last dimension, like nn.LayerNorm: weight (gamma), bias (beta)."""

    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.variance_epsilon = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x):
        centred = x - x.mean(-1, keepdim=True)
        variance = centred.square().mean(-1, keepdim=True)
        scale = self.weight * torch.reciprocal(torch.sqrt(variance + self.variance_epsilon))
        return centred * scale + self.bias
''',
        "FeedForward": '''class FeedForward(nn.Module):
    """Position-wise feed-forward network: linear1 (d_model -> d_ff), ReLU, dropout, linear2 (d_ff -> d_model)."""

    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        hidden = self.linear1(x)
        hidden.relu_()  # a fresh tensor, safe to rectify in place
        return self.linear2(self.dropout(hidden))
''',
        "ResidualSublayer": '''class ResidualSublayer(nn.Module):
    """x + dropout(sublayer(norm(x))) if norm_first (pre-LN), else norm(x + dropout(sublayer(x))) (post-LN)."""

    def __init__(self, d_model, dropout=0.0, norm_first=True):
        super().__init__()
        self.norm = LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x, sublayer):
        arrangements = {
            True: lambda: x + self.dropout(sublayer(self.norm(x))),
            False: lambda: self.norm(x + self.dropout(sublayer(x))),
        }
        return arrangements[bool(self.norm_first)]()
''',
    }),
]

ALTERNATIVES += BLIND
