"""Bug zoo for exercise 7 (token sampling): classic mistakes that must lose points, and unusual
but correct answers that must keep full marks."""

from submissions import Answer

ASSIGNMENT = "07_token_sampling"

SOFTMAX = "softmax_with_temperature"
TOP_K = "top_k_filter"
TOP_P = "top_p_filter"
SAMPLE = "sample_next_token"
GUMBEL = "gumbel_max_sample"
BEAM = "beam_search"

MISTAKES = [
    # softmax_with_temperature
    Answer("temperature_multiplies", "multiplies the logits by the temperature instead of dividing",
           replace={SOFTMAX: [("logits / temperature", "logits * temperature")]}),
    Answer("temperature_after_softmax", "raises the probabilities to 1/T after the softmax without renormalising",
           replace={SOFTMAX: [("return torch.softmax(logits / temperature, dim=-1)",
                               "return torch.softmax(logits, dim=-1) ** (1 / temperature)")]}),
    Answer("no_temperature_check", "does not raise ValueError for temperature <= 0",
           replace={SOFTMAX: [("    if temperature <= 0:\n        raise ValueError(f\"temperature must be positive, got {temperature}\")\n", "")]}),
    Answer("softmax_over_dim_0", "takes the softmax over the first dimension",
           replace={SOFTMAX: [("dim=-1", "dim=0")]}),
    Answer("unstable_softmax", "writes exp / sum without subtracting the maximum (overflows to NaN)", source={SOFTMAX: '''
def softmax_with_temperature(logits, temperature):
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    e = torch.exp(logits / temperature)
    return e / e.sum(dim=-1, keepdim=True)
'''}),
    # top_k_filter
    Answer("top_k_by_indices", "keeps the indices torch.topk returns, dropping tokens tied with the k-th", source={TOP_K: '''
def top_k_filter(logits, k):
    if k < 1:
        raise ValueError("k must be at least 1")
    if k >= logits.size(-1):
        return logits.clone()
    index = torch.topk(logits, k, dim=-1).indices
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, index, True)
    return logits.masked_fill(~keep, float("-inf"))
'''}),
    Answer("top_k_removes_kth", "removes logits <= the k-th largest (keeps only k - 1)",
           replace={TOP_K: [("logits < kth", "logits <= kth")]}),
    Answer("top_k_off_by_one", "keeps k + 1 tokens (an off-by-one in the index of the k-th value)",
           replace={TOP_K: [("    if k >= logits.size(-1):", "    if k + 1 >= logits.size(-1):"),
                            ("torch.topk(logits, k, dim=-1)", "torch.topk(logits, k + 1, dim=-1)")]}),
    Answer("top_k_no_vocab_guard", "calls torch.topk with k > V (IndexError) instead of returning the logits",
           replace={TOP_K: [("    if k >= logits.size(-1):\n        return logits.clone()\n", "")]}),
    Answer("top_k_in_place", "writes -inf into the caller's logits in place",
           replace={TOP_K: [("    return logits.masked_fill(logits < kth, float(\"-inf\"))",
                             "    logits[logits < kth] = float(\"-inf\")\n    return logits")]}),
    Answer("top_k_2d_only", "indexes the rows as (B, V), so 1-D and 3-D logits fail",
           replace={TOP_K: [("torch.topk(logits, k, dim=-1).values[..., -1:]", "torch.topk(logits, k, dim=1).values[:, -1:]")]}),
    Answer("top_k_no_check", "does not raise ValueError for k < 1",
           replace={TOP_K: [("    if k < 1:\n        raise ValueError(f\"k must be at least 1, got {k}\")\n", "")]}),
    # top_p_filter
    Answer("top_p_drops_crossing_token", "keeps tokens while the cumulative mass including them is <= p",
           replace={TOP_P: [("before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs", "before = torch.cumsum(sorted_probs, dim=-1)"),
                            ("keep_sorted = before < p", "keep_sorted = before <= p")]}),
    Answer("top_p_top_token_not_kept", "drops the crossing token and does not force the top token",
           replace={TOP_P: [("before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs", "before = torch.cumsum(sorted_probs, dim=-1)"),
                            ("    keep_sorted[..., 0] = True  # the top token, whatever rounding says\n", "")]}),
    Answer("top_p_ascending", "sorts the probabilities in ascending order",
           replace={TOP_P: [("descending=True", "descending=False")]}),
    Answer("top_p_no_scatter", "applies the sorted keep-mask to the tokens in their original order",
           replace={TOP_P: [("keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)", "keep = keep_sorted")]}),
    Answer("top_p_cumsum_over_batch", "takes the cumulative sum over the batch dimension, not per row",
           replace={TOP_P: [("torch.cumsum(sorted_probs, dim=-1)", "torch.cumsum(sorted_probs, dim=0)")]}),
    Answer("top_p_unstable_sort", "ranks tied tokens by descending index (not a stable sort)", source={TOP_P: '''
def top_p_filter(logits, p):
    if not 0 < p <= 1:
        raise ValueError("p must be in (0, 1]")
    probs = torch.softmax(logits, dim=-1)
    flipped = probs.flip(-1)
    sorted_probs, order = torch.sort(flipped, dim=-1, descending=True, stable=True)
    order = probs.size(-1) - 1 - order  # ties end up with the higher index first
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    keep_sorted = before < p
    keep_sorted[..., 0] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))
'''}),
    Answer("top_p_no_check", "does not raise ValueError for p outside (0, 1]",
           replace={TOP_P: [("    if not 0 < p <= 1:\n        raise ValueError(f\"p must be in (0, 1], got {p}\")\n", "")]}),
    # sample_next_token
    Answer("sample_temperature_after_filters", "applies the temperature after top-k and top-p",
           replace={SAMPLE: [("    logits = logits / temperature\n", ""),
                             ("probs = torch.softmax(logits, dim=-1)", "probs = torch.softmax(logits / temperature, dim=-1)")]}),
    Answer("sample_top_p_before_top_k", "runs top-p before top-k", source={SAMPLE: '''
def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)
'''}),
    Answer("sample_ignores_generator", "draws with the global random state instead of the generator",
           replace={SAMPLE: [("torch.multinomial(probs, num_samples=1, generator=generator)", "torch.multinomial(probs, num_samples=1)")]}),
    Answer("sample_no_greedy", "has no greedy case for temperature 0 (divides by zero)",
           replace={SAMPLE: [("    if temperature == 0:\n        return logits.argmax(dim=-1)\n", "")]}),
    Answer("sample_multiplies_temperature", "multiplies the logits by the temperature",
           replace={SAMPLE: [("logits = logits / temperature", "logits = logits * temperature")]}),
    Answer("sample_keeps_dim", "returns shape (B, 1) instead of (B,)",
           replace={SAMPLE: [("generator=generator).squeeze(-1)", "generator=generator)")]}),
    # gumbel_max_sample
    Answer("gumbel_gaussian_noise", "adds Gaussian noise instead of Gumbel noise",
           replace={GUMBEL: [("    gumbel = -torch.log(-torch.log(u))",
                              "    gumbel = torch.randn(logits.shape, generator=generator, device=logits.device)")]}),
    Answer("gumbel_noise_on_probabilities", "adds the noise to the probabilities instead of the logits",
           replace={GUMBEL: [("torch.argmax(logits + gumbel, dim=-1)", "torch.argmax(torch.softmax(logits, -1) + gumbel, dim=-1)")]}),
    Answer("gumbel_wrong_sign", "uses log(-log(U)), the negated Gumbel noise",
           replace={GUMBEL: [("gumbel = -torch.log(-torch.log(u))", "gumbel = torch.log(-torch.log(u))")]}),
    Answer("gumbel_argmin", "takes the argmin", replace={GUMBEL: [("torch.argmax(logits + gumbel", "torch.argmin(logits + gumbel")]}),
    Answer("gumbel_no_generator", "draws the uniforms without the generator",
           replace={GUMBEL: [("torch.rand(logits.shape, generator=generator, device=logits.device)",
                              "torch.rand(logits.shape, device=logits.device)")]}),
    Answer("gumbel_distributions_module", "samples the noise with torch.distributions.Gumbel, which ignores the generator",
           replace={GUMBEL: [("    u = torch.rand(logits.shape, generator=generator, device=logits.device)\n"
                              "    u = u.clamp_min(torch.finfo(u.dtype).tiny)\n"
                              "    gumbel = -torch.log(-torch.log(u))\n",
                              "    gumbel = torch.distributions.Gumbel(0.0, 1.0).sample(logits.shape)\n")]}),
    Answer("gumbel_calls_multinomial", "samples with torch.multinomial instead of the Gumbel-max trick", source={GUMBEL: '''
def gumbel_max_sample(logits, generator=None):
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(-1)
'''}),
    # beam_search
    Answer("beam_length_normalised", "ranks candidates by log-probability per token",
           replace={BEAM: [("key=lambda c: c[1], reverse=True", "key=lambda c: c[1] / len(c[0]), reverse=True")]}),
    Answer("beam_extends_finished", "keeps extending hypotheses that end in eos",
           replace={BEAM: [("finished = [(tokens, score) for tokens, score in beam if len(tokens) > 1 and tokens[-1] == eos_id]",
                            "finished = []"),
                           ("alive = [(tokens, score) for tokens, score in beam if not (len(tokens) > 1 and tokens[-1] == eos_id)]",
                            "alive = beam")]}),
    Answer("beam_drops_finished", "drops finished hypotheses from the beam",
           replace={BEAM: [("candidates = list(finished)", "candidates = []"),
                           ("        if not alive:\n            break\n", "        if not alive:\n            return finished[0][0]\n")]}),
    Answer("beam_returns_last", "returns the last hypothesis of the beam instead of the best",
           replace={BEAM: [("return beam[0][0]", "return beam[-1][0]")]}),
    Answer("beam_too_long", "runs max_len steps, one token too many",
           replace={BEAM: [("for _ in range(max_len - 1):", "for _ in range(max_len):")]}),
    Answer("beam_keeps_worst", "sorts the candidates in ascending order",
           replace={BEAM: [("key=lambda c: c[1], reverse=True", "key=lambda c: c[1]")]}),
    Answer("imports_the_reference", "imports the course's reference implementation", source={
        SOFTMAX: "from llm_foundations.sampling import softmax_with_temperature\n",
        TOP_K: "from llm_foundations.sampling import top_k_filter\n",
        TOP_P: "from llm_foundations.sampling import top_p_filter\n",
        SAMPLE: "from llm_foundations.sampling import sample_next_token\n",
        GUMBEL: "from llm_foundations.sampling import gumbel_max_sample\n",
        BEAM: "from llm_foundations.sampling import beam_search\n",
    }),
    Answer("wraps_the_reference", "wraps the reference in functions of its own", source={
        TOP_K: '''
def top_k_filter(logits, k):
    import llm_foundations.sampling as ready_made
    return ready_made.top_k_filter(logits, k)
''',
        BEAM: '''
def beam_search(step_fn, bos_id, eos_id, beam_size, max_len):
    from llm_foundations import sampling
    return sampling.beam_search(step_fn, bos_id, eos_id, beam_size, max_len)
'''}),
]

ALTERNATIVES = [
    Answer("hand_written_kthvalue_and_loops", "max-shifted exp/sum softmax, top-k via kthvalue, top-p by a loop per row", source={
        SOFTMAX: '''
def softmax_with_temperature(logits, temperature):
    if not temperature > 0:
        raise ValueError("the temperature must be positive")
    z = logits / temperature
    z = z - z.max(dim=-1, keepdim=True).values
    e = z.exp()
    return e / e.sum(dim=-1, keepdim=True)
''',
        TOP_K: '''
def top_k_filter(logits, k):
    if k < 1:
        raise ValueError("k must be at least 1")
    vocab = logits.shape[-1]
    if k >= vocab:
        return logits.clone()
    kth = torch.kthvalue(logits, vocab - k + 1, dim=-1, keepdim=True).values  # the k-th largest
    return torch.where(logits >= kth, logits, torch.full_like(logits, -math.inf))
''',
        TOP_P: '''
def top_p_filter(logits, p):
    if p <= 0 or p > 1:
        raise ValueError("p must be in (0, 1]")
    flat = logits.reshape(-1, logits.shape[-1])
    out = torch.full_like(flat, -math.inf)
    for r in range(flat.shape[0]):
        probs = torch.softmax(flat[r], dim=0).tolist()
        mass = 0.0
        for i in sorted(range(len(probs)), key=lambda j: -probs[j]):
            if mass >= p:
                break
            out[r, i] = flat[r, i]
            mass += probs[i]
    return out.reshape(logits.shape)
'''}),
    Answer("inverse_cdf_sampler", "samples by the inverse CDF: cumulative sums, one uniform per row, searchsorted",
           source={SAMPLE: '''
def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    if temperature < 0:
        raise ValueError("negative temperature")
    if temperature == 0:
        return torch.argmax(logits, dim=-1)
    z = logits / temperature
    if top_k is not None:
        z = top_k_filter(z, top_k)
    if top_p is not None:
        z = top_p_filter(z, top_p)
    cdf = torch.softmax(z, dim=-1).cumsum(dim=-1)
    u = torch.rand(logits.shape[:-1] + (1,), generator=generator, device=logits.device) * cdf[..., -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_max(logits.shape[-1] - 1)
'''}),
    Answer("exponential_race", "Gumbel noise as -log of exponential variables drawn with exponential_(generator=)",
           source={GUMBEL: '''
def gumbel_max_sample(logits, generator=None):
    e = torch.empty(logits.shape, device=logits.device).exponential_(generator=generator)
    return (logits - e.log()).argmax(dim=-1)  # -log(E) with E ~ Exp(1) is a standard Gumbel variable
'''}),
    Answer("beam_search_with_heapq", "beam search written recursively with heapq.nlargest, one prefix per call",
           source={BEAM: '''
def beam_search(step_fn, bos_id, eos_id, beam_size, max_len):
    import heapq

    def done(seq):
        return len(seq) > 1 and seq[-1] == eos_id

    def step(beam):
        alive = [seq for _, seq in beam if not done(seq)]
        if not alive or len(alive[0]) >= max_len:
            return beam
        candidates = []
        for score, seq in beam:
            if done(seq):
                candidates.append((score, seq))
                continue
            row = step_fn(torch.tensor([seq]))[0]
            candidates.extend((score + float(lp), seq + [v]) for v, lp in enumerate(row))
        return step(heapq.nlargest(beam_size, candidates, key=lambda c: c[0]))

    return list(max(step([(0.0, [bos_id])]), key=lambda c: c[0])[1])
'''}),
    Answer("beam_search_batched_tensors", "beam search on tensors: one topk over all (hypothesis, token) pairs per step",
           source={BEAM: '''
def beam_search(step_fn, bos_id, eos_id, beam_size, max_len):
    seqs = torch.tensor([[bos_id]])  # (n, t) unfinished hypotheses
    scores = torch.zeros(1, dtype=torch.float64)  # (n,)
    finished = []  # (score, tokens)
    for _ in range(max_len - 1):
        if seqs.shape[0] == 0:
            break
        totals = scores[:, None] + step_fn(seqs).double()  # (n, V)
        vocab = totals.shape[1]
        top = totals.flatten().topk(min(beam_size, totals.numel()))
        rows, tokens = top.indices // vocab, top.indices % vocab
        pool = finished + [(float(s), seqs[r].tolist() + [int(t)]) for s, r, t in zip(top.values, rows, tokens)]
        pool = sorted(pool, key=lambda c: c[0], reverse=True)[:beam_size]
        finished = [c for c in pool if c[1][-1] == eos_id]
        alive = [c for c in pool if c[1][-1] != eos_id]
        seqs = torch.tensor([c[1] for c in alive], dtype=torch.long) if alive else torch.empty(0, 1, dtype=torch.long)
        scores = torch.tensor([c[0] for c in alive], dtype=torch.float64)
    pool = finished + [(float(s), q) for s, q in zip(scores, seqs.tolist())]
    return max(pool, key=lambda c: c[0])[1]
'''}),
]


# Blind answers: written from the released student notebook alone (task text and visible tests),
# without the solution, the hidden tests or the checks (b/ch07_token_sampling.py). They join the
# alternatives as written: where one failed, the task text or the tests were fixed, never the answer.
BLIND = [
    Answer("blind_textbook", "torch.softmax; topk k-th value + torch.where; sort/cumsum minus probs + scatter; "
           "Gumbel with -log(-log u); beam search on Python lists with float scores, sorted()", source={
        "softmax_with_temperature": '''def softmax_with_temperature(logits, temperature):
    """Probabilities softmax(logits / temperature) over the last dimension; temperature must be > 0."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return torch.softmax(logits / temperature, dim=-1)
''',
        "top_k_filter": '''def top_k_filter(logits, k):
    """Set every logit below the k-th largest of its row to -inf (ties with the k-th are kept)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if k >= logits.shape[-1]:
        return logits.clone()
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return torch.where(logits >= kth, logits, torch.full_like(logits, float("-inf")))
''',
        "top_p_filter": '''def top_p_filter(logits, p):
    """Keep, per row, the most probable tokens until their mass reaches p; set the others to -inf."""
    if not (0 < p <= 1):
        raise ValueError(f"p must be in (0, 1], got {p}")
    probs = torch.softmax(logits, dim=-1)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass ranked strictly before
    keep_sorted = before < p
    keep_sorted[..., 0] = True
    if p == 1:
        keep_sorted[:] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))
''',
        "sample_next_token": '''def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """One token per row of (B, V) logits: temperature, top-k, top-p, then a draw; temperature 0 is greedy."""
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    if temperature == 0:
        return logits.argmax(dim=-1)
    z = logits / temperature
    if top_k is not None:
        z = top_k_filter(z, top_k)
    if top_p is not None:
        z = top_p_filter(z, top_p)
    probs = torch.softmax(z, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
''',
        "gumbel_max_sample": '''def gumbel_max_sample(logits, generator=None):
    """One draw per row of softmax(logits): argmax of logits plus Gumbel noise."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device)
    u = u.clamp_min(torch.finfo(u.dtype).tiny)
    g = -torch.log(-torch.log(u))
    return torch.argmax(logits + g, dim=-1)
''',
        "beam_search": '''def beam_search(step_fn, bos_id, eos_id, beam_size, max_len):
    """The highest-scoring sequence a beam of beam_size hypotheses finds (list of token ids)."""
    beam = [([bos_id], 0.0)]

    def finished(tokens):
        return len(tokens) > 1 and tokens[-1] == eos_id

    length = 1
    while length < max_len and not all(finished(t) for t, _ in beam):
        done = [(t, s) for t, s in beam if finished(t)]
        open_ = [(t, s) for t, s in beam if not finished(t)]
        log_probs = step_fn(torch.tensor([t for t, _ in open_], dtype=torch.long))
        candidates = list(done)
        for (tokens, score), row in zip(open_, log_probs.tolist()):
            for token, lp in enumerate(row):
                candidates.append((tokens + [token], score + lp))
        candidates.sort(key=lambda c: c[1], reverse=True)
        beam = candidates[:beam_size]
        length += 1
    best_tokens, _ = max(beam, key=lambda c: c[1])
    return [int(t) for t in best_tokens]
''',
    }),
    Answer("blind_float64_manual", "float64 stable softmax by hand; k-th largest by descending sort; exclusive "
           "cumsum by shifting with cat; multinomial over float64 probs; exponential race argmin(E / p) for "
           "Gumbel; vectorised beam with one flat topk over a float64 score tensor", source={
        "softmax_with_temperature": '''def softmax_with_temperature(logits, temperature):
    """Probabilities softmax(logits / temperature) over the last dimension; temperature must be > 0."""
    if not temperature > 0:
        raise ValueError("temperature must be positive")
    z = logits.double() / temperature
    z = z - z.amax(dim=-1, keepdim=True)
    e = torch.exp(z)
    return (e / e.sum(dim=-1, keepdim=True)).to(logits.dtype)
''',
        "top_k_filter": '''def top_k_filter(logits, k):
    """Set every logit below the k-th largest of its row to -inf (ties with the k-th are kept)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    V = logits.size(-1)
    if k >= V:
        return logits.clone()
    sorted_desc = logits.sort(dim=-1, descending=True).values
    threshold = sorted_desc[..., k - 1].unsqueeze(-1)
    return logits.masked_fill(logits < threshold, float("-inf"))
''',
        "top_p_filter": '''def top_p_filter(logits, p):
    """Keep, per row, the most probable tokens until their mass reaches p; set the others to -inf."""
    if p <= 0 or p > 1:
        raise ValueError("p must lie in (0, 1]")
    if p == 1:
        return logits.clone()
    probs = torch.softmax(logits.double(), dim=-1)
    sp, idx = torch.sort(probs, dim=-1, descending=True, stable=True)
    csum = torch.cumsum(sp, dim=-1)
    exclusive = torch.cat([torch.zeros_like(csum[..., :1]), csum[..., :-1]], dim=-1)
    keep_sorted = exclusive < p
    keep = torch.empty_like(keep_sorted)
    keep.scatter_(-1, idx, keep_sorted)
    out = logits.clone()
    out[~keep] = float("-inf")
    return out
''',
        "sample_next_token": '''def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """One token per row of (B, V) logits: temperature, top-k, top-p, then a draw; temperature 0 is greedy."""
    if temperature == 0:
        return torch.argmax(logits, dim=-1).long()
    if temperature < 0:
        raise ValueError("negative temperature")
    scaled = logits.double() / temperature
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
    probs = softmax_with_temperature(scaled, 1.0)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
''',
        "gumbel_max_sample": '''def gumbel_max_sample(logits, generator=None):
    """One draw per row of softmax(logits): argmax of logits plus Gumbel noise."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device)
    u = torch.clamp(u, min=torch.finfo(u.dtype).tiny)
    e = -torch.log(u.double())  # standard exponential
    z = logits.double()
    z = z - z.amax(dim=-1, keepdim=True)
    # argmax(z - log e) == argmin(e * exp(-z)): the exponential race
    return torch.argmin(e * torch.exp(-z), dim=-1)
''',
        "beam_search": '''def beam_search(step_fn, bos_id, eos_id, beam_size, max_len):
    """The highest-scoring sequence a beam of beam_size hypotheses finds (list of token ids)."""
    hyps = [[bos_id]]
    scores = torch.zeros(1, dtype=torch.float64)
    for _ in range(max_len - 1):
        done = torch.tensor([len(h) > 1 and h[-1] == eos_id for h in hyps])
        if bool(done.all()):
            break
        live = [h for h, d in zip(hyps, done.tolist()) if not d]
        lp = step_fn(torch.tensor(live)).double()  # (n_live, V)
        V = lp.shape[-1]
        cand = (scores[~done][:, None] + lp).reshape(-1)
        all_scores = torch.cat([cand, scores[done]])
        k = min(beam_size, all_scores.numel())
        top = torch.topk(all_scores, k).indices.tolist()
        finished_hyps = [h for h, d in zip(hyps, done.tolist()) if d]
        new_hyps = []
        for i in top:
            if i < cand.numel():
                new_hyps.append(live[i // V] + [i % V])
            else:
                new_hyps.append(finished_hyps[i - cand.numel()])
        hyps, scores = new_hyps, all_scores[top]
    return [int(t) for t in hyps[int(torch.argmax(scores))]]
''',
    }),
    Answer("blind_loops", "Python loops over rows: softmax via log_softmax().exp(); top-k by counting, per row, how many "
           "logits are strictly larger; top-p with an explicit running sum per row; Gumbel written as "
           "logits - log(-log u); beam search one hypothesis at a time with heapq.nlargest", source={
        "softmax_with_temperature": '''def softmax_with_temperature(logits, temperature):
    """Probabilities softmax(logits / temperature) over the last dimension; temperature must be > 0."""
    if temperature <= 0:
        raise ValueError("temperature <= 0 is not a distribution")
    return torch.log_softmax(logits / temperature, dim=-1).exp()
''',
        "top_k_filter": '''def top_k_filter(logits, k):
    """Set every logit below the k-th largest of its row to -inf (ties with the k-th are kept)."""
    if k < 1:
        raise ValueError("k < 1")
    V = logits.shape[-1]
    flat = logits.reshape(-1, V)
    out = flat.clone()
    if k >= V:
        return out.reshape(logits.shape)
    for r in range(flat.shape[0]):
        row = flat[r]
        n_larger = (row[None, :] > row[:, None]).sum(dim=1)  # how many logits beat each one
        out[r] = row.masked_fill(n_larger >= k, float("-inf"))  # ties with the k-th survive
    return out.reshape(logits.shape)
''',
        "top_p_filter": '''def top_p_filter(logits, p):
    """Keep, per row, the most probable tokens until their mass reaches p; set the others to -inf."""
    if not 0 < p <= 1:
        raise ValueError("p must be in (0, 1]")
    V = logits.shape[-1]
    flat = logits.reshape(-1, V)
    out = flat.clone()
    if p == 1:
        return out.reshape(logits.shape)
    for r in range(flat.shape[0]):
        probs = torch.softmax(flat[r], dim=-1)
        order = torch.sort(probs, descending=True, stable=True).indices.tolist()
        mass = 0.0
        for rank, j in enumerate(order):
            if rank > 0 and mass >= p:
                out[r, j] = float("-inf")
            mass += float(probs[j])
    return out.reshape(logits.shape)
''',
        "sample_next_token": '''def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """One token per row of (B, V) logits: temperature, top-k, top-p, then a draw; temperature 0 is greedy."""
    if temperature < 0:
        raise ValueError(f"temperature must not be negative, got {temperature}")
    if temperature == 0:
        return logits.max(dim=-1).indices
    x = logits.div(temperature)
    x = x if top_k is None else top_k_filter(x, top_k)
    x = x if top_p is None else top_p_filter(x, top_p)
    return torch.multinomial(x.softmax(dim=-1), num_samples=1, generator=generator).view(-1)
''',
        "gumbel_max_sample": '''def gumbel_max_sample(logits, generator=None):
    """One draw per row of softmax(logits): argmax of logits plus Gumbel noise."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device)
    u = u.clamp_min(torch.finfo(u.dtype).tiny)
    perturbed = logits - torch.log(-torch.log(u))
    return perturbed.max(dim=-1).indices
''',
        "beam_search": '''import heapq


def beam_search(step_fn, bos_id, eos_id, beam_size, max_len):
    """The highest-scoring sequence a beam of beam_size hypotheses finds (list of token ids)."""
    beam = [(0.0, (bos_id,))]
    for _ in range(max_len - 1):
        is_done = [len(seq) > 1 and seq[-1] == eos_id for _, seq in beam]
        if all(is_done):
            break
        candidates = []
        for (score, seq), done in zip(beam, is_done):
            if done:
                candidates.append((score, seq))
                continue
            log_probs = step_fn(torch.tensor([list(seq)], dtype=torch.long))[0]
            for token in range(log_probs.shape[-1]):
                candidates.append((score + float(log_probs[token]), seq + (token,)))
        beam = heapq.nlargest(beam_size, candidates, key=lambda c: c[0])
    best = max(beam, key=lambda c: c[0])
    return list(best[1])
''',
    }),
    Answer("blind_kthvalue", "F.softmax on a copy; k-th largest via kthvalue on the negated logits; top-p "
           "through gather with the inverse permutation (argsort of the sort order) and float32 cumsum; "
           "sampler reuses softmax_with_temperature for the tempering step; beam keeps finished hypotheses "
           "in a separate pool", source={
        "softmax_with_temperature": '''import torch.nn.functional as F


def softmax_with_temperature(logits, temperature):
    """Probabilities softmax(logits / temperature) over the last dimension; temperature must be > 0."""
    if temperature <= 0:
        raise ValueError("temperature must be strictly positive")
    return F.softmax(logits.div(temperature), dim=-1)
''',
        "top_k_filter": '''def top_k_filter(logits, k):
    """Set every logit below the k-th largest of its row to -inf (ties with the k-th are kept)."""
    if k < 1:
        raise ValueError("top-k needs k >= 1")
    if k >= logits.size(-1):
        return logits.clone()
    kth_largest = -torch.kthvalue(-logits, k, dim=-1, keepdim=True).values
    return torch.where(logits < kth_largest, -torch.inf, logits)
''',
        "top_p_filter": '''def top_p_filter(logits, p):
    """Keep, per row, the most probable tokens until their mass reaches p; set the others to -inf."""
    if p <= 0 or p > 1:
        raise ValueError("p outside (0, 1]")
    probs = logits.softmax(dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)
    mass_before = sorted_probs.cumsum(dim=-1).roll(1, dims=-1)
    mass_before[..., 0] = 0.0
    keep_sorted = (mass_before < p) | (p >= 1)
    inverse = order.argsort(dim=-1)
    keep = keep_sorted.gather(-1, inverse)
    return torch.where(keep, logits, torch.full_like(logits, -math.inf))
''',
        "sample_next_token": '''def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """One token per row of (B, V) logits: temperature, top-k, top-p, then a draw; temperature 0 is greedy."""
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    if temperature == 0:
        return logits.argmax(-1)
    filtered = logits / temperature
    if top_k is not None:
        filtered = top_k_filter(filtered, top_k)
    if top_p is not None:
        filtered = top_p_filter(filtered, top_p)
    probs = softmax_with_temperature(filtered, 1.0)  # already tempered
    draw = torch.multinomial(probs, 1, generator=generator)
    return draw.squeeze(1)
''',
        "gumbel_max_sample": '''def gumbel_max_sample(logits, generator=None):
    """One draw per row of softmax(logits): argmax of logits plus Gumbel noise."""
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device)
    tiny = torch.finfo(uniform.dtype).tiny
    gumbel = -(-uniform.clamp_min(tiny).log()).log()
    return (logits + gumbel).argmax(dim=-1)
''',
        "beam_search": '''def beam_search(step_fn, bos_id, eos_id, beam_size, max_len):
    """The highest-scoring sequence a beam of beam_size hypotheses finds (list of token ids)."""
    live = [([bos_id], 0.0)]  # unfinished hypotheses
    finished = []  # hypotheses that ended with eos_id, kept unchanged
    steps = 0
    while live and steps < max_len - 1:
        batch = torch.tensor([toks for toks, _ in live], dtype=torch.long)
        log_probs = step_fn(batch)
        pool = [(toks, s, True) for toks, s in finished]
        for (toks, s), row in zip(live, log_probs):
            for tok, lp in enumerate(row.tolist()):
                pool.append((toks + [tok], s + lp, False))
        pool.sort(key=lambda c: -c[1])
        pool = pool[:beam_size]
        finished = [(t, s) for t, s, _ in pool if len(t) > 1 and t[-1] == eos_id]
        live = [(t, s) for t, s, _ in pool if not (len(t) > 1 and t[-1] == eos_id)]
        steps += 1
    best = max(finished + live, key=lambda c: c[1])
    return list(best[0])
''',
    }),
    Answer("blind_tensor_beam", "softmax via exp(z - logsumexp); top-k keeps logits >= k-th via a boolean mask and "
           "masked_fill on a clone; top-p by building the keep mask in sorted order then un-sorting with "
           "scatter_ in place on a clone; sampler with a float32 cast; beam with tensors of prefixes and "
           "topk over (beam*V) plus finished scores", source={
        "softmax_with_temperature": '''def softmax_with_temperature(logits, temperature):
    """Probabilities softmax(logits / temperature) over the last dimension; temperature must be > 0."""
    if isinstance(temperature, (int, float)) and temperature <= 0:
        raise ValueError("temperature must be > 0")
    if torch.is_tensor(temperature) and bool((temperature <= 0).any()):
        raise ValueError("temperature must be > 0")
    z = logits / temperature
    return torch.exp(z - torch.logsumexp(z, dim=-1, keepdim=True))
''',
        "top_k_filter": '''def top_k_filter(logits, k):
    """Set every logit below the k-th largest of its row to -inf (ties with the k-th are kept)."""
    if k < 1:
        raise ValueError("k must be >= 1")
    out = logits.clone()
    if k < logits.shape[-1]:
        values, _ = logits.topk(k, dim=-1, largest=True, sorted=True)
        below = logits < values[..., k - 1 : k]
        out.masked_fill_(below, float("-inf"))
    return out
''',
        "top_p_filter": '''def top_p_filter(logits, p):
    """Keep, per row, the most probable tokens until their mass reaches p; set the others to -inf."""
    if not (p > 0 and p <= 1):
        raise ValueError("p must be in (0, 1]")
    out = logits.clone()
    if p == 1:
        return out
    probs = torch.softmax(logits, dim=-1)
    sorted_p, sorted_idx = torch.sort(probs, dim=-1, descending=True, stable=True)
    crossed = (sorted_p.cumsum(-1) - sorted_p) >= p  # mass before rank r already reaches p
    crossed[..., 0] = False
    drop = torch.zeros_like(crossed)
    drop.scatter_(-1, sorted_idx, crossed)
    out.masked_fill_(drop, float("-inf"))
    return out
''',
        "sample_next_token": '''def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """One token per row of (B, V) logits: temperature, top-k, top-p, then a draw; temperature 0 is greedy."""
    if temperature < 0:
        raise ValueError("temperature must be non-negative")
    if temperature == 0:
        return torch.argmax(logits, dim=-1)
    logits = logits.float() / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).reshape(-1)
''',
        "gumbel_max_sample": '''def gumbel_max_sample(logits, generator=None):
    """One draw per row of softmax(logits): argmax of logits plus Gumbel noise."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device)
    u = u.clamp_min(torch.finfo(u.dtype).tiny)
    noise = torch.log(u).neg().log().neg()
    scores = torch.where(torch.isneginf(logits), logits, logits + noise)
    return scores.argmax(dim=-1)
''',
        "beam_search": '''def beam_search(step_fn, bos_id, eos_id, beam_size, max_len):
    """The highest-scoring sequence a beam of beam_size hypotheses finds (list of token ids)."""
    seqs = torch.tensor([[bos_id]], dtype=torch.long)  # live prefixes, all the same length
    live_scores = torch.zeros(1)
    done_seqs, done_scores = [], []  # finished hypotheses: lists and floats
    for t in range(1, max_len):
        if seqs.shape[0] == 0:
            break
        log_probs = step_fn(seqs).to(live_scores.dtype)  # (n, V)
        n, V = log_probs.shape
        flat = (live_scores[:, None] + log_probs).flatten()
        pool = torch.cat([flat, torch.tensor(done_scores, dtype=flat.dtype)])
        k = min(beam_size, pool.numel())
        top_scores, top_idx = pool.topk(k)
        new_live, new_live_scores, new_done, new_done_scores = [], [], [], []
        for s, i in zip(top_scores.tolist(), top_idx.tolist()):
            if i >= flat.numel():
                new_done.append(done_seqs[i - flat.numel()])
                new_done_scores.append(done_scores[i - flat.numel()])
                continue
            seq = seqs[i // V].tolist() + [i % V]
            if i % V == eos_id:
                new_done.append(seq)
                new_done_scores.append(s)
            else:
                new_live.append(seq)
                new_live_scores.append(s)
        done_seqs, done_scores = new_done, new_done_scores
        seqs = torch.tensor(new_live, dtype=torch.long).reshape(len(new_live), t + 1)
        live_scores = torch.tensor(new_live_scores)
    everything = [(s, q) for s, q in zip(done_scores, done_seqs)]
    everything += [(s, q) for s, q in zip(live_scores.tolist(), seqs.tolist())]
    best = max(everything, key=lambda c: c[0])
    return [int(x) for x in best[1]]
''',
    }),
]

ALTERNATIVES += BLIND
