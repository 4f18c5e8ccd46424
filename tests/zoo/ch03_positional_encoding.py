"""Bug zoo for exercise 3 (positional encoding): classic mistakes that must lose points, and
unusual but correct answers that must keep full marks."""

from submissions import Answer

ASSIGNMENT = "03_positional_encoding"

PE = "sinusoidal_positional_encoding"
REL = "relative_positions"
ANG = "rope_angles"
ROPE = "apply_rope"

SIN_COS = "    pe[:, 0::2] = torch.sin(angle)\n    pe[:, 1::2] = torch.cos(angle)\n"
ODD_PE = '    if d_model % 2 != 0:\n        raise ValueError(f"d_model must be even, got {d_model}")\n'
ODD_ROPE = '    if head_dim % 2 != 0:\n        raise ValueError(f"head_dim must be even, got {head_dim}")\n'
ROTATED = "torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)"

MISTAKES = [
    # sinusoidal encoding
    Answer("sin_cos_swapped", "puts the cosine at even and the sine at odd features",
           replace={PE: [(SIN_COS, "    pe[:, 0::2] = torch.cos(angle)\n    pe[:, 1::2] = torch.sin(angle)\n")]}),
    Answer("exponent_uses_i", "uses base^(i/d_model) with the pair index i instead of 2i",
           replace={PE: [("torch.arange(0, d_model, 2, dtype=torch.float32)", "torch.arange(d_model // 2, dtype=torch.float32)")]}),
    Answer("reciprocal_frequency", "multiplies the position by base^(2i/d) instead of dividing",
           replace={PE: [("position / base ** (two_i / d_model)", "position * base ** (two_i / d_model)")]}),
    Answer("sin_cos_concatenated", "puts all sines first and all cosines after instead of alternating",
           replace={PE: [(SIN_COS, "    pe = torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)\n")]}),
    Answer("positions_from_one", "numbers the positions 1..L instead of 0..L-1",
           replace={PE: [("torch.arange(seq_len, dtype=torch.float32)", "torch.arange(1, seq_len + 1, dtype=torch.float32)")]}),
    Answer("no_odd_check", "does not check for an odd d_model",
           replace={PE: [(ODD_PE, "")]}),
    # relative positions
    Answer("relative_sign_flipped", "computes i - j instead of j - i",
           replace={REL: [("torch.clamp(j - i,", "torch.clamp(i - j,")]}),
    Answer("relative_no_offset", "forgets the +max_distance offset (negative indices)",
           replace={REL: [("max_distance, max_distance) + max_distance", "max_distance, max_distance)")]}),
    Answer("relative_clamp_off_by_one", "clips the positive side at max_distance - 1",
           replace={REL: [("-max_distance, max_distance)", "-max_distance, max_distance - 1)")]}),
    Answer("relative_absolute_distance", "uses |j - i|, losing the direction",
           replace={REL: [("torch.clamp(j - i,", "torch.clamp((j - i).abs(),")]}),
    # RoPE angles
    Answer("angles_for_every_feature", "computes head_dim angles instead of head_dim // 2",
           replace={ANG: [("torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim",
                           "torch.arange(head_dim, dtype=torch.float32) / head_dim")]}),
    Answer("angles_positive_exponent", "uses base^(+2i/head_dim) (frequencies grow)",
           replace={ANG: [("base ** (-torch.arange(", "base ** (torch.arange(")]}),
    # apply_rope
    Answer("rope_rotate_half", "pairs feature i with i + d/2 (GPT-NeoX's rotate_half)",
           replace={ROPE: [("x1, x2 = x[..., 0::2].to(dtype), x[..., 1::2].to(dtype)",
                            "x1, x2 = x[..., : head_dim // 2].to(dtype), x[..., head_dim // 2 :].to(dtype)"),
                           (ROTATED + "  # (..., L, head_dim/2, 2)\n    return rotated.flatten(-2).to(x.dtype)",
                            "torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)\n    return rotated.to(x.dtype)")]}),
    Answer("rope_rotation_flipped", "rotates the wrong way (sign error in the sin terms)",
           replace={ROPE: [(ROTATED, "torch.stack([x1 * cos + x2 * sin, -x1 * sin + x2 * cos], dim=-1)")]}),
    Answer("rope_output_not_interleaved", "concatenates the rotated halves instead of interleaving them",
           replace={ROPE: [(ROTATED + "  # (..., L, head_dim/2, 2)\n    return rotated.flatten(-2).to(x.dtype)",
                            "torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)\n    return rotated.to(x.dtype)")]}),
    Answer("rope_ignores_positions", "always uses positions 0..L-1",
           replace={ROPE: [("    if positions is None:\n        positions = torch.arange(length)\n",
                            "    positions = torch.arange(length)\n")]}),
    Answer("rope_returns_float32", "always returns float32, even for float64 input",
           replace={ROPE: [("return rotated.flatten(-2).to(x.dtype)", "return rotated.flatten(-2).float()"),
                           ("dtype = torch.float64 if x.dtype == torch.float64 else torch.float32", "dtype = torch.float32")]}),
    Answer("rope_no_odd_check", "does not raise ValueError for an odd head_dim", replace={ROPE: [(ODD_ROPE, "")]}),
    # not their own work
    Answer("imports_the_reference", "imports the course's reference implementation", source={
        PE: "from llm_foundations.positional import sinusoidal_positional_encoding\n",
        REL: "from llm_foundations.positional import relative_positions\n",
        ANG: "from llm_foundations.positional import rope_angles\n",
        ROPE: "from llm_foundations.positional import apply_rope\n",
    }),
    Answer("wraps_the_reference", "forwards every call to the reference under another name", source={
        PE: '''
import llm_foundations.positional as lib


def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
    return lib.sinusoidal_positional_encoding(seq_len, d_model, base)
''',
        REL: '''
from llm_foundations.positional import relative_positions as _relative


def relative_positions(q_len, k_len, max_distance):
    return _relative(q_len, k_len, max_distance)
''',
        ANG: '''
def rope_angles(seq_len, head_dim, base=10000.0):
    return lib.rope_angles(seq_len, head_dim, base)
''',
        ROPE: '''
def apply_rope(x, positions=None, base=10000.0):
    return lib.apply_rope(x, positions, base)
'''}),
]

ALTERNATIVES = [
    Answer("complex_numbers", "RoPE with view_as_complex and torch.polar; angles with torch.outer", source={
        ANG: '''
def rope_angles(seq_len, head_dim, base=10000.0):
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2).float() / head_dim))
    return torch.outer(torch.arange(seq_len).float(), inv_freq)
''',
        ROPE: '''
def apply_rope(x, positions=None, base=10000.0):
    *lead, length, d = x.shape
    if d % 2:
        raise ValueError("head_dim must be even")
    if positions is None:
        positions = torch.arange(length)
    real = torch.float64 if x.dtype == torch.float64 else torch.float32
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=real) / d))
    angles = torch.outer(positions.to(real), inv_freq).to(x.device)  # (L, d/2)
    z = torch.view_as_complex(x.to(real).reshape(*lead, length, d // 2, 2).contiguous())
    z = z * torch.polar(torch.ones_like(angles), angles)
    return torch.view_as_real(z).reshape(x.shape).to(x.dtype)
'''}),
    Answer("explicit_loops", "every function written with Python loops and the math module", source={
        PE: '''
def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
    if d_model % 2 == 1:
        raise ValueError("odd d_model")
    pe = torch.empty(seq_len, d_model)
    for pos in range(seq_len):
        for i in range(0, d_model, 2):
            pe[pos, i] = math.sin(pos / base ** (i / d_model))
            pe[pos, i + 1] = math.cos(pos / base ** (i / d_model))
    return pe
''',
        REL: '''
def relative_positions(q_len, k_len, max_distance):
    out = torch.empty(q_len, k_len, dtype=torch.long)
    for i in range(q_len):
        for j in range(k_len):
            out[i, j] = max(-max_distance, min(max_distance, j - i)) + max_distance
    return out
''',
        ANG: '''
def rope_angles(seq_len, head_dim, base=10000.0):
    return torch.tensor([[p / base ** (2 * i / head_dim) for i in range(head_dim // 2)] for p in range(seq_len)])
''',
        ROPE: '''
def apply_rope(x, positions=None, base=10000.0):
    length, d = x.shape[-2:]
    if d % 2 != 0:
        raise ValueError("head_dim must be even")
    pos = list(range(length)) if positions is None else [int(p) for p in positions]
    out = x.clone()
    for t in range(length):
        for i in range(d // 2):
            a = pos[t] * base ** (-2 * i / d)
            c, s = math.cos(a), math.sin(a)
            out[..., t, 2 * i] = x[..., t, 2 * i] * c - x[..., t, 2 * i + 1] * s
            out[..., t, 2 * i + 1] = x[..., t, 2 * i] * s + x[..., t, 2 * i + 1] * c
    return out
'''}),
    Answer("rotation_matrices_and_exp_log", "RoPE as einsum with 2x2 rotation matrices; the sinusoid via exp(-log(base) 2i/d) and stack+flatten", source={
        PE: '''
def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
    if d_model % 2:
        raise ValueError(f"d_model={d_model} is odd")
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(base) / d_model))
    angle = torch.arange(seq_len).float().unsqueeze(1) * div_term
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)
''',
        ROPE: '''
def apply_rope(x, positions=None, base=10000.0):
    L, d = x.shape[-2], x.shape[-1]
    if d % 2:
        raise ValueError("odd head_dim")
    if positions is None:
        positions = torch.arange(L)
    work = torch.promote_types(x.dtype, torch.float32)
    theta = torch.exp(-math.log(base) * torch.arange(0, d, 2, dtype=work) / d)
    a = positions.to(work).unsqueeze(-1) * theta  # (L, d/2)
    rot = torch.stack([torch.stack([a.cos(), -a.sin()], -1), torch.stack([a.sin(), a.cos()], -1)], -2)  # (L, d/2, 2, 2)
    pairs = x.to(work).unflatten(-1, (d // 2, 2))  # (..., L, d/2, 2)
    return torch.einsum("lprc,...lpc->...lpr", rot.to(x.device), pairs).flatten(-2).to(x.dtype)
'''}),
    Answer("table_lookup_and_where", "relative positions with torch.where; RoPE indexes a table from its own rope_angles; sin(a + pi/2) as cosine", source={
        PE: '''
def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
    if d_model % 2 != 0:
        raise ValueError("d_model must be even")
    freqs = base ** (-torch.arange(d_model // 2) * 2.0 / d_model)
    angle = torch.arange(seq_len)[:, None, None] * freqs[None, :, None] + torch.tensor([0.0, math.pi / 2])
    return torch.sin(angle).reshape(seq_len, d_model)
''',
        REL: '''
def relative_positions(q_len, k_len, max_distance):
    qi, kj = torch.meshgrid(torch.arange(q_len), torch.arange(k_len), indexing="ij")
    d = kj - qi
    d = torch.where(d > max_distance, max_distance, d)
    d = torch.where(d < -max_distance, -max_distance, d)
    return d + max_distance
''',
        ROPE: '''
def apply_rope(x, positions=None, base=10000.0):
    n = x.shape[-2]
    if x.shape[-1] % 2:
        raise ValueError("head_dim must be even")
    if positions is None:
        positions = torch.arange(n)
    table = rope_angles(int(positions.max()) + 1, x.shape[-1], base).double()  # (max_pos + 1, d/2)
    angles = table[positions.long().cpu()].to(x.device)  # (L, d/2)
    even, odd = x[..., ::2].double(), x[..., 1::2].double()
    out = torch.empty(x.shape, dtype=torch.float64, device=x.device)
    out[..., ::2] = even * angles.cos() - odd * angles.sin()
    out[..., 1::2] = even * angles.sin() + odd * angles.cos()
    return out.to(x.dtype)
'''}),
]


# Blind answers: written from the released student notebook alone (task text and visible tests),
# without the solution, the hidden tests or the checks (a/ch03_positional_encoding.py). They join the
# alternatives as written: where one failed, the task text or the tests were fixed, never the answer.
BLIND = [
    Answer("blind_slices_exp_log", "exp(-log(base)) frequencies with slice assignment into a zeros tensor; clamp of a broadcast difference; stack+flatten for RoPE, angles in the compute dtype", source={
        "sinusoidal_positional_encoding": '''def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
    """(seq_len, d_model): PE[p, 2i] = sin(p / base^(2i/d_model)), PE[p, 2i+1] = cos(p / base^(2i/d_model))."""
    if d_model % 2 != 0:
        raise ValueError(f"d_model must be even to hold (sin, cos) pairs, got {d_model}")
    position = torch.arange(seq_len, dtype=torch.float32).unsqueeze(1)                  # (seq_len, 1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(base) / d_model))
    pe = torch.zeros(seq_len, d_model, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe
''',
        "relative_positions": '''def relative_positions(q_len, k_len, max_distance):
    """LongTensor (q_len, k_len): [i, j] = clamp(j - i, -max_distance, max_distance) + max_distance."""
    query_pos = torch.arange(q_len, dtype=torch.long)[:, None]
    key_pos = torch.arange(k_len, dtype=torch.long)[None, :]
    return (key_pos - query_pos).clamp(-max_distance, max_distance) + max_distance
''',
        "rope_angles": '''def rope_angles(seq_len, head_dim, base=10000.0):
    """(seq_len, head_dim // 2): angle[p, i] = p * base^(-2i / head_dim)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    positions = torch.arange(seq_len, dtype=torch.float32)
    return positions[:, None] * inv_freq[None, :]
''',
        "apply_rope": '''def apply_rope(x, positions=None, base=10000.0):
    """Rotate each pair (x[..., 2i], x[..., 2i+1]) at position p by p * base^(-2i / head_dim)."""
    L, head_dim = x.shape[-2], x.shape[-1]
    if head_dim % 2 != 0:
        raise ValueError(f"head_dim must be even, got {head_dim}")
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    if positions is None:
        positions = torch.arange(L, device=x.device)
    pos = positions.to(device=x.device, dtype=compute)
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=x.device, dtype=compute) / head_dim)
    theta = pos[:, None] * inv_freq[None, :]          # (L, head_dim / 2)
    cos, sin = theta.cos(), theta.sin()
    xc = x.to(compute)
    a, b = xc[..., 0::2], xc[..., 1::2]
    out = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
    return out.to(x.dtype)
''',
    }),
    Answer("blind_pow_interleave_float64", "computes in float64 and casts back; torch.pow frequencies and stack/reshape interleaving; torch.clip on meshgrid; outer product angles; complex-number RoPE (view_as_complex * polar) whose inverse frequencies are rope_angles(2, d)[1]", source={
        "sinusoidal_positional_encoding": '''def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
    """(seq_len, d_model): PE[p, 2i] = sin(p / base^(2i/d_model)), PE[p, 2i+1] = cos(p / base^(2i/d_model))."""
    if d_model % 2:
        raise ValueError("an odd d_model cannot be split into (sin, cos) pairs")
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    freqs = torch.pow(torch.tensor(float(base), dtype=torch.float64), -two_i / d_model)   # (d_model/2,)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float64), freqs)              # (seq_len, d_model/2)
    pe = torch.stack((angles.sin(), angles.cos()), dim=-1).reshape(seq_len, d_model)
    return pe.to(torch.float32)
''',
        "relative_positions": '''def relative_positions(q_len, k_len, max_distance):
    """LongTensor (q_len, k_len): [i, j] = clamp(j - i, -max_distance, max_distance) + max_distance."""
    i, j = torch.meshgrid(torch.arange(q_len), torch.arange(k_len), indexing="ij")
    return torch.clip(j - i, min=-max_distance, max=max_distance).add(max_distance).long()
''',
        "rope_angles": '''def rope_angles(seq_len, head_dim, base=10000.0):
    """(seq_len, head_dim // 2): angle[p, i] = p * base^(-2i / head_dim)."""
    i = torch.arange(head_dim // 2, dtype=torch.float64)
    inv_freq = 1.0 / (base ** (2.0 * i / head_dim))
    return torch.outer(torch.arange(seq_len, dtype=torch.float64), inv_freq)
''',
        "apply_rope": '''def apply_rope(x, positions=None, base=10000.0):
    """Rotate each pair (x[..., 2i], x[..., 2i+1]) at position p by p * base^(-2i / head_dim)."""
    *lead, L, d = x.shape
    if d % 2 == 1:
        raise ValueError(f"apply_rope needs an even head_dim, got {d}")
    real = torch.float64 if x.dtype == torch.float64 else torch.float32
    if positions is None:
        pos = torch.arange(L, device=x.device, dtype=real)
    else:
        pos = torch.as_tensor(positions, device=x.device).to(real)
    inv_freq = rope_angles(2, d, base)[1].to(device=x.device, dtype=real)  # the angles of position 1
    theta = torch.outer(pos, inv_freq)                                  # (L, d/2)
    rotor = torch.polar(torch.ones_like(theta), theta)                  # e^{i theta}
    pairs = torch.view_as_complex(x.to(real).reshape(*lead, L, d // 2, 2).contiguous())
    rotated = torch.view_as_real(pairs * rotor).reshape(*lead, L, d)
    return rotated.to(x.dtype)
''',
    }),
    Answer("blind_python_loops", "the formulas as Python double loops over math.sin/math.cos then torch.tensor; relative indices by loops; angles by loops; RoPE by explicit 2x2 rotation matrices and einsum", source={
        "sinusoidal_positional_encoding": '''def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
    """(seq_len, d_model): PE[p, 2i] = sin(p / base^(2i/d_model)), PE[p, 2i+1] = cos(p / base^(2i/d_model))."""
    if d_model % 2 != 0:
        raise ValueError(f"odd d_model={d_model}: features come in (sin, cos) pairs")
    rows = []
    for p in range(seq_len):
        row = []
        for i in range(d_model // 2):
            angle = p / base ** (2 * i / d_model)
            row.extend((math.sin(angle), math.cos(angle)))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float32).reshape(seq_len, d_model)
''',
        "relative_positions": '''def relative_positions(q_len, k_len, max_distance):
    """LongTensor (q_len, k_len): [i, j] = clamp(j - i, -max_distance, max_distance) + max_distance."""
    table = [[min(max(j - i, -max_distance), max_distance) + max_distance for j in range(k_len)]
             for i in range(q_len)]
    return torch.tensor(table, dtype=torch.long).reshape(q_len, k_len)
''',
        "rope_angles": '''def rope_angles(seq_len, head_dim, base=10000.0):
    """(seq_len, head_dim // 2): angle[p, i] = p * base^(-2i / head_dim)."""
    half = head_dim // 2
    values = [[p * math.pow(base, -2.0 * i / head_dim) for i in range(half)] for p in range(seq_len)]
    return torch.tensor(values, dtype=torch.float32).reshape(seq_len, half)
''',
        "apply_rope": '''def apply_rope(x, positions=None, base=10000.0):
    """Rotate each pair (x[..., 2i], x[..., 2i+1]) at position p by p * base^(-2i / head_dim)."""
    seq_len, head_dim = x.shape[-2:]
    if head_dim % 2:
        raise ValueError(f"head_dim={head_dim} is odd; RoPE rotates pairs of features")
    dtype = torch.float64 if x.dtype is torch.float64 else torch.float32
    if positions is None:
        positions = torch.arange(seq_len)
    p = positions.to(x.device, dtype)
    exponent = torch.arange(head_dim // 2, device=x.device, dtype=dtype) * (-2.0 / head_dim)
    theta = p[:, None] * torch.pow(torch.tensor(base, device=x.device, dtype=dtype), exponent)  # (L, d/2)
    c, s = torch.cos(theta), torch.sin(theta)
    rotation = torch.stack([torch.stack([c, -s], dim=-1), torch.stack([s, c], dim=-1)], dim=-2)  # (L, d/2, 2, 2)
    pairs = x.to(dtype).unflatten(-1, (head_dim // 2, 2))                                      # (..., L, d/2, 2)
    out = torch.einsum("lpij,...lpj->...lpi", rotation, pairs)
    return out.flatten(-2).to(x.dtype)
''',
    }),
    Answer("blind_inplace_where", "empty tensor filled in place with sin_/cos_ by slices; torch.minimum/maximum clipping; angles via einsum of exp; RoPE via the rotated partner of every pair with repeat_interleave'd cos/sin", source={
        "sinusoidal_positional_encoding": '''def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
    """(seq_len, d_model): PE[p, 2i] = sin(p / base^(2i/d_model)), PE[p, 2i+1] = cos(p / base^(2i/d_model))."""
    if d_model % 2 == 1:
        raise ValueError("d_model must be even")
    half = d_model // 2
    denom = base ** (torch.arange(half, dtype=torch.float32) * 2 / d_model)
    angle = torch.arange(seq_len, dtype=torch.float32).view(-1, 1) / denom.view(1, -1)
    pe = torch.empty(seq_len, d_model, dtype=torch.float32)
    pe[:, 0::2] = angle
    pe[:, 1::2] = angle
    pe[:, 0::2].sin_()
    pe[:, 1::2].cos_()
    return pe
''',
        "relative_positions": '''def relative_positions(q_len, k_len, max_distance):
    """LongTensor (q_len, k_len): [i, j] = clamp(j - i, -max_distance, max_distance) + max_distance."""
    dist = torch.arange(k_len).unsqueeze(0) - torch.arange(q_len).unsqueeze(1)
    lo = torch.full_like(dist, -max_distance)
    hi = torch.full_like(dist, max_distance)
    clipped = torch.minimum(torch.maximum(dist, lo), hi)
    return (clipped + max_distance).to(torch.long)
''',
        "rope_angles": '''def rope_angles(seq_len, head_dim, base=10000.0):
    """(seq_len, head_dim // 2): angle[p, i] = p * base^(-2i / head_dim)."""
    i = torch.arange(head_dim // 2, dtype=torch.float32)
    inv_freq = torch.exp(i * (-2.0 * math.log(base) / head_dim))
    return torch.einsum("p,i->pi", torch.arange(seq_len, dtype=torch.float32), inv_freq)
''',
        "apply_rope": '''def apply_rope(x, positions=None, base=10000.0):
    """Rotate each pair (x[..., 2i], x[..., 2i+1]) at position p by p * base^(-2i / head_dim)."""
    head_dim = x.size(-1)
    if head_dim % 2 != 0:
        raise ValueError("odd head_dim")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    if positions is None:
        positions = torch.arange(x.size(-2), device=x.device)
    inv_freq = torch.exp(torch.arange(head_dim // 2, device=x.device, dtype=work) * (-2.0 * math.log(base) / head_dim))
    theta = positions.to(device=x.device, dtype=work)[:, None] * inv_freq        # (L, d/2)
    cos = theta.cos().repeat_interleave(2, dim=-1)                                # (L, d): c0 c0 c1 c1 ...
    sin = theta.sin().repeat_interleave(2, dim=-1)
    xw = x.to(work)
    # partner of every feature inside its pair: (x0, x1) -> (-x1, x0)
    partner = torch.stack((-xw[..., 1::2], xw[..., 0::2]), dim=-1).reshape(xw.shape)
    return (xw * cos + partner * sin).to(x.dtype)
''',
    }),
    Answer("blind_complex_preallocated", "sinusoid from complex exponentials (polar: real=cos, imag=sin) in float64; Toeplitz-style gather from one clipped row of distances; inverse frequencies in log space (float64, cast to float32); RoPE written into a preallocated torch.empty output by slice assignment, angles as p / base**(2i/d)", source={
        "sinusoidal_positional_encoding": '''def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
    """(seq_len, d_model): PE[p, 2i] = sin(p / base^(2i/d_model)), PE[p, 2i+1] = cos(p / base^(2i/d_model))."""
    if d_model % 2 != 0:
        raise ValueError(f"sinusoidal_positional_encoding: d_model={d_model} is odd")
    omega = torch.tensor(float(base), dtype=torch.float64) ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    phase = torch.arange(seq_len, dtype=torch.float64)[:, None] * omega         # (seq_len, d_model/2)
    z = torch.polar(torch.ones_like(phase), phase)                               # cos + i sin
    pe = torch.stack([z.imag, z.real], dim=-1).flatten(start_dim=1)
    return pe.float()
''',
        "relative_positions": '''def relative_positions(q_len, k_len, max_distance):
    """LongTensor (q_len, k_len): [i, j] = clamp(j - i, -max_distance, max_distance) + max_distance."""
    # every distance j - i lies in [-(q_len - 1), k_len - 1]: clip that row once, then gather
    if q_len == 0 or k_len == 0:
        return torch.zeros(q_len, k_len, dtype=torch.long)
    offsets = torch.arange(-(q_len - 1), k_len, dtype=torch.long)
    row = offsets.clamp(min=-max_distance, max=max_distance) + max_distance
    where = torch.arange(k_len)[None, :] - torch.arange(q_len)[:, None] + (q_len - 1)   # index of j - i in offsets
    return row[where]
''',
        "rope_angles": '''def rope_angles(seq_len, head_dim, base=10000.0):
    """(seq_len, head_dim // 2): angle[p, i] = p * base^(-2i / head_dim)."""
    exponents = torch.arange(head_dim // 2, dtype=torch.float64) * (2.0 / head_dim)
    inv_freq = torch.exp(-exponents * math.log(base)).to(torch.float32)
    p = torch.arange(seq_len, dtype=torch.float32).unsqueeze(-1)
    return p * inv_freq
''',
        "apply_rope": '''def apply_rope(x, positions=None, base=10000.0):
    """Rotate each pair (x[..., 2i], x[..., 2i+1]) at position p by p * base^(-2i / head_dim)."""
    if x.shape[-1] % 2 != 0:
        raise ValueError(f"apply_rope: head_dim {x.shape[-1]} is not even")
    L, d = x.shape[-2], x.shape[-1]
    ftype = x.dtype if x.dtype == torch.float64 else torch.float32
    pos = (torch.arange(L, device=x.device) if positions is None else positions.to(x.device)).to(ftype)
    exponent = torch.arange(0, d, 2, device=x.device, dtype=ftype) / d
    theta = pos.unsqueeze(-1) / torch.pow(torch.full_like(exponent, base), exponent)
    even, odd = x[..., 0::2].to(ftype), x[..., 1::2].to(ftype)
    out = torch.empty(x.shape, dtype=ftype, device=x.device)
    out[..., 0::2] = even * theta.cos() - odd * theta.sin()
    out[..., 1::2] = even * theta.sin() + odd * theta.cos()
    return out.to(x.dtype)
''',
    }),
]

ALTERNATIVES += BLIND
