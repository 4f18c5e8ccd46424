"""Bug zoo for exercise 2 (input embeddings): classic mistakes that must lose points, and unusual
but correct answers that must keep full marks."""

from submissions import Answer

ASSIGNMENT = "02_input_embeddings"

CHAR = "CharTokenizer"
TRAIN = "train_bpe"
ENCODE = "bpe_encode"
DECODE = "bpe_decode"
EMB = "TokenEmbedding"
COS = "cosine_similarity_matrix"
NN = "nearest_neighbors"
SGNS = "sgns_loss"

MISTAKES = [
    # CharTokenizer
    Answer("char_vocab_unsorted", "builds the vocabulary from a set without sorting it",
           replace={CHAR: [("sorted(set(text))", "list(set(text))")]}),
    Answer("char_ids_from_one", "numbers the characters from 1 (off by one), consistently in decode",
           replace={CHAR: [("{ch: i for i, ch in enumerate(self.vocab)}", "{ch: i + 1 for i, ch in enumerate(self.vocab)}"),
                           ("self.vocab[int(i)]", "self.vocab[int(i) - 1]")]}),
    Answer("char_skips_unknown", "silently skips unknown characters",
           replace={CHAR: [('raise ValueError(f"unknown character {ch!r}")', "continue")]}),
    # train_bpe
    Answer("bpe_tie_last", "breaks ties towards the pair that occurs last",
           replace={TRAIN: [("best = max(counts, key=counts.get)", "best = sorted(counts, key=counts.get)[-1]")]}),
    Answer("bpe_merges_overlaps", "merges every overlapping occurrence ('aaa' becomes one token)", source={TRAIN: '''
def train_bpe(text, num_merges):
    ids = list(text.encode("utf-8"))
    merges = []
    for i in range(num_merges):
        counts = {}
        for pair in zip(ids, ids[1:]):
            counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        best = max(counts, key=counts.get)
        if counts[best] < 2:
            break
        positions = [j for j in range(len(ids) - 1) if (ids[j], ids[j + 1]) == best]
        for j in reversed(positions):
            ids[j:j + 2] = [256 + i]
        merges.append(best)
    return merges
'''}),
    Answer("bpe_ids_from_257", "numbers new tokens from 257", replace={TRAIN: [("new_ids.append(256 + i)", "new_ids.append(257 + i)")]}),
    Answer("bpe_stops_at_zero", "keeps merging pairs that occur once (stop condition > 0)",
           replace={TRAIN: [("if counts[best] < 2:", "if counts[best] < 1:")]}),
    Answer("bpe_counts_once", "counts the pairs once, on the bytes, instead of after every merge", source={TRAIN: '''
def train_bpe(text, num_merges):
    ids = list(text.encode("utf-8"))
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    merges = []
    for i in range(num_merges):
        if not counts:
            break
        best = max(counts, key=counts.get)
        if counts[best] < 2:
            break
        del counts[best]
        merges.append(best)
    return merges
'''}),
    # bpe_encode
    Answer("encode_reverse_order", "applies the merges in reverse order",
           replace={ENCODE: [("for i, pair in enumerate(merges):", "for i, pair in reversed(list(enumerate(merges))):")]}),
    Answer("encode_code_points", "encodes code points (ord) instead of UTF-8 bytes",
           replace={ENCODE: [('list(text.encode("utf-8"))', "[ord(ch) for ch in text]")]}),
    # bpe_decode
    Answer("decode_ignore", "drops invalid bytes (errors='ignore')", replace={DECODE: [('errors="replace"', 'errors="ignore"')]}),
    Answer("decode_latin1", "decodes the bytes as latin-1", replace={DECODE: [('data.decode("utf-8", errors="replace")', 'data.decode("latin-1")')]}),
    Answer("decode_token_by_token", "decodes every token on its own and joins the strings",
           replace={DECODE: [('    data = b"".join(vocab[int(i)] for i in ids)\n    return data.decode("utf-8", errors="replace")',
                              '    return "".join(vocab[int(i)].decode("utf-8", errors="replace") for i in ids)')]}),
    # TokenEmbedding
    Answer("embedding_no_scale", "forgets the sqrt(d_model) factor",
           replace={EMB: [("return self.weight[ids] * math.sqrt(self.d_model)", "return self.weight[ids]")]}),
    Answer("embedding_divides", "divides by sqrt(d_model)",
           replace={EMB: [("return self.weight[ids] * math.sqrt(self.d_model)", "return self.weight[ids] / math.sqrt(self.d_model)")]}),
    # cosine_similarity_matrix
    Answer("cosine_not_normalised", "returns the dot products", replace={COS: [("unit = x / norms", "unit = x")]}),
    Answer("cosine_nan_for_zero_rows", "divides by the norm without eps (NaN for zero rows)",
           replace={COS: [(".clamp_min(1e-8)", "")]}),
    Answer("cosine_calls_builtin", "calls F.cosine_similarity", source={COS: '''
def cosine_similarity_matrix(x):
    return F.cosine_similarity(x[:, None, :], x[None, :, :], dim=-1)
'''}),
    # nearest_neighbors
    Answer("neighbors_include_self", "does not exclude the row itself",
           replace={NN: [('    sims[index] = float("-inf")  # never the row itself\n', "")]}),
    Answer("neighbors_ascending", "returns the neighbours from least to most similar",
           replace={NN: [("return torch.topk(sims, k).indices", "return torch.topk(sims, k).indices.flip(0)")]}),
    Answer("neighbors_off_by_one", "drops the first neighbour as if it were the row itself",
           replace={NN: [("return torch.topk(sims, k).indices", "return torch.topk(sims, k + 1).indices[1:]")]}),
    # sgns_loss
    Answer("sgns_plus_sign", "adds the negative-sample term",
           replace={SGNS: [("- F.logsigmoid(-negative).sum(-1)", "+ F.logsigmoid(-negative).sum(-1)")]}),
    Answer("sgns_no_minus_inside_sigmoid", "forgets the minus sign inside σ(-u_k·v_c)",
           replace={SGNS: [("F.logsigmoid(-negative)", "F.logsigmoid(negative)")]}),
    Answer("sgns_sum_over_batch", "sums over the batch instead of averaging", replace={SGNS: [("return loss.mean()", "return loss.sum()")]}),
    Answer("sgns_unstable_log_sigmoid", "computes log(sigmoid(x)), which is -inf for large inputs",
           replace={SGNS: [("-F.logsigmoid(positive) - F.logsigmoid(-negative).sum(-1)",
                            "-torch.log(torch.sigmoid(positive)) - torch.log(torch.sigmoid(-negative)).sum(-1)")]}),
    Answer("wraps_the_reference", "wraps the course's reference in functions of its own", source={
        TRAIN: '''
import llm_foundations.tokenizers as _ref


def train_bpe(text, num_merges):
    return _ref.train_bpe(text, num_merges)
''',
        SGNS: '''
from llm_foundations import embeddings as _emb


def sgns_loss(center, context, negatives):
    return _emb.sgns_loss(center, context, negatives)
''',
    }),
]

ALTERNATIVES = [
    Answer("tokenizer_counter_and_lowest_rank", "Counter.most_common for training, lowest-rank-first encoding, "
           "recursive decoding", source={
        CHAR: '''
class CharTokenizer:
    def __init__(self, text):
        self.vocab = []
        for ch in sorted(text):
            if not self.vocab or self.vocab[-1] != ch:
                self.vocab.append(ch)
        self.vocab_size = len(self.vocab)

    def encode(self, s):
        table = dict(zip(self.vocab, range(self.vocab_size)))
        missing = [ch for ch in s if ch not in table]
        if missing:
            raise ValueError(f"characters not in the vocabulary: {missing}")
        return [table[ch] for ch in s]

    def decode(self, ids):
        return "".join(map(self.vocab.__getitem__, ids))
''',
        TRAIN: '''
from collections import Counter


def _merge_left_to_right(ids, pair, new_id):
    out, skip = [], False
    for j, token in enumerate(ids):
        if skip:
            skip = False
            continue
        if j + 1 < len(ids) and (token, ids[j + 1]) == pair:
            out.append(new_id)
            skip = True
        else:
            out.append(token)
    return out


def train_bpe(text, num_merges):
    ids = list(bytes(text, "utf-8"))
    merges = []
    while len(merges) < num_merges:
        stats = Counter(zip(ids, ids[1:]))  # most_common keeps first-encountered order among ties
        if not stats or stats.most_common(1)[0][1] < 2:
            break
        pair = stats.most_common(1)[0][0]
        ids = _merge_left_to_right(ids, pair, 256 + len(merges))
        merges.append(pair)
    return merges
''',
        ENCODE: '''
def bpe_encode(text, merges):
    rank = {tuple(pair): i for i, pair in enumerate(merges)}
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        candidates = [rank[p] for p in zip(ids, ids[1:]) if p in rank]
        if not candidates:
            break
        best = min(candidates)
        ids = _merge_left_to_right(ids, tuple(merges[best]), 256 + best)
    return ids
''',
        DECODE: '''
def bpe_decode(ids, merges):
    def expand(token):
        if token < 256:
            return [token]
        a, b = merges[token - 256]
        return expand(a) + expand(b)

    data = bytearray()
    for token in ids:
        data.extend(expand(int(token)))
    return bytes(data).decode("utf-8", "replace")
'''}),
    Answer("cosine_always_float32", "computes the cosines in float32 whatever the input's dtype (the task asks for no "
           "output dtype)", source={COS: '''
def cosine_similarity_matrix(x):
    x = x.float()
    unit = x / x.norm(dim=1, keepdim=True).clamp(min=1e-8)
    return unit @ unit.T
'''}),
    Answer("embedding_one_hot_and_normalize", "one-hot times the matrix, cosine via F.normalize, argsort neighbours", source={
        EMB: '''
class TokenEmbedding(nn.Module):
    def __init__(self, vocab_size, d_model):
        super().__init__()
        self.vocab_size, self.scale = vocab_size, d_model ** 0.5
        self.weight = nn.Parameter(torch.empty(vocab_size, d_model).normal_(0.0, d_model ** -0.5))

    def forward(self, ids):
        one_hot = F.one_hot(ids, num_classes=self.vocab_size).to(self.weight.dtype)  # (..., V)
        return self.scale * (one_hot @ self.weight)
''',
        COS: '''
def cosine_similarity_matrix(x):
    unit = F.normalize(x, p=2.0, dim=1, eps=1e-8)
    return torch.einsum("id,jd->ij", unit, unit)
''',
        NN: '''
def nearest_neighbors(embeddings, index, k):
    sims = cosine_similarity_matrix(embeddings)[index].clone()
    order = torch.argsort(sims, descending=True)
    return order[order != index][:k]
'''}),
    Answer("explicit_loops", "cosine with explicit loops, neighbours with a Python sort, embedding with F.embedding, "
           "SGNS as binary cross-entropy with logits", source={
        EMB: '''
class TokenEmbedding(nn.Module):
    def __init__(self, vocab_size, d_model):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(vocab_size, d_model) * d_model ** -0.5)

    def forward(self, ids):
        return F.embedding(ids, self.weight) * math.sqrt(self.weight.shape[1])
''',
        COS: '''
def cosine_similarity_matrix(x):
    n = x.shape[0]
    out = torch.zeros(n, n, dtype=x.dtype)
    for i in range(n):
        for j in range(n):
            denominator = max(float(x[i].norm()), 1e-8) * max(float(x[j].norm()), 1e-8)
            out[i, j] = torch.dot(x[i], x[j]) / denominator
    return out
''',
        NN: '''
def nearest_neighbors(embeddings, index, k):
    target = embeddings[index]
    scores = []
    for j, row in enumerate(embeddings):
        if j != index:
            cos = float(row @ target) / (max(float(row.norm()), 1e-8) * max(float(target.norm()), 1e-8))
            scores.append((-cos, j))
    return torch.tensor([j for _, j in sorted(scores)[:k]], dtype=torch.long)
''',
        SGNS: '''
def sgns_loss(center, context, negatives):
    logits = torch.cat([(center * context).sum(-1, keepdim=True),
                        torch.bmm(negatives, center[:, :, None])[:, :, 0]], dim=1)  # (B, 1 + K)
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1.0
    per_pair = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").sum(1)
    return per_pair.mean()
'''}),
    Answer("sgns_einsum_softplus", "SGNS with einsum and softplus: -log σ(x) = softplus(-x)", source={SGNS: '''
def sgns_loss(center, context, negatives):
    pos = torch.einsum("bd,bd->b", center, context)
    neg = torch.einsum("bkd,bd->bk", negatives, center)
    return (F.softplus(-pos) + F.softplus(neg).sum(dim=1)).mean()
'''}),
]


# Blind answers: written from the released student notebook alone (task text and visible tests),
# without the solution, the hidden tests or the checks (a/ch02_input_embeddings.py). They join the
# alternatives as written: where one failed, the task text or the tests were fixed, never the answer.
BLIND = [
    Answer("blind_dicts_textbook", "stoi/itos dicts, a dict-counting loop with max(counts, key=counts.get), weight[ids] lookup, x / clamped norm, clone + -inf + topk, bmm for negatives", source={
        "CharTokenizer": '''class CharTokenizer:
    """Character-level tokenizer: the vocabulary is the sorted set of characters of `text`."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.vocab_size = len(self.chars)
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}
        self.itos = {i: ch for i, ch in enumerate(self.chars)}

    def encode(self, s):
        """The list of ids of the characters of `s`; an unknown character raises ValueError."""
        ids = []
        for ch in s:
            if ch not in self.stoi:
                raise ValueError(f"unknown character {ch!r}")
            ids.append(self.stoi[ch])
        return ids

    def decode(self, ids):
        """The string whose characters have these ids."""
        return "".join(self.itos[int(i)] for i in ids)
''',
        "train_bpe": '''def _merge_pair(ids, pair, new_id):
    out, j = [], 0
    while j < len(ids):
        if j + 1 < len(ids) and ids[j] == pair[0] and ids[j + 1] == pair[1]:
            out.append(new_id)
            j += 2
        else:
            out.append(ids[j])
            j += 1
    return out


def train_bpe(text, num_merges):
    """Learn up to num_merges byte-level BPE merges from text; merge i creates id 256 + i."""
    ids = list(text.encode("utf-8"))
    merges = []
    for i in range(num_merges):
        if len(ids) < 2:
            break
        counts = {}
        for pair in zip(ids, ids[1:]):
            counts[pair] = counts.get(pair, 0) + 1
        best = max(counts, key=counts.get)
        if counts[best] < 2:
            break
        ids = _merge_pair(ids, best, 256 + i)
        merges.append(best)
    return merges
''',
        "bpe_encode": '''def bpe_encode(text, merges):
    """Encode text: its UTF-8 bytes, then every merge in training order (merge i -> id 256 + i)."""
    ids = list(text.encode("utf-8"))
    for i, pair in enumerate(merges):
        ids = _merge_pair(ids, tuple(pair), 256 + i)
    return ids
''',
        "bpe_decode": '''def bpe_decode(ids, merges):
    """Decode BPE ids back to text; byte sequences that are not valid UTF-8 become the replacement character."""
    table = {i: bytes([i]) for i in range(256)}
    for i, (a, b) in enumerate(merges):
        table[256 + i] = table[a] + table[b]
    data = b"".join(table[int(i)] for i in ids)
    return data.decode("utf-8", errors="replace")
''',
        "TokenEmbedding": '''class TokenEmbedding(nn.Module):
    """Embedding lookup scaled by sqrt(d_model); .weight has shape (vocab_size, d_model)."""

    def __init__(self, vocab_size, d_model):
        super().__init__()
        self.d_model = d_model
        self.weight = nn.Parameter(torch.randn(vocab_size, d_model) / math.sqrt(d_model))

    def forward(self, ids):
        return self.weight[ids] * math.sqrt(self.d_model)
''',
        "cosine_similarity_matrix": '''def cosine_similarity_matrix(x):
    """(N, d) -> (N, N) cosine similarity of every pair of rows; a zero row has similarity 0."""
    norms = x.norm(dim=1, keepdim=True).clamp_min(1e-8)
    unit = x / norms
    return unit @ unit.T
''',
        "nearest_neighbors": '''def nearest_neighbors(embeddings, index, k):
    """LongTensor (k,): the k rows most cosine-similar to row `index`, most similar first, without `index`."""
    sims = cosine_similarity_matrix(embeddings)[index].clone()
    sims[index] = float("-inf")
    return torch.topk(sims, k).indices.long()
''',
        "sgns_loss": '''def sgns_loss(center, context, negatives):
    """Skip-gram negative-sampling loss, mean over the batch; center, context: (B, d), negatives: (B, K, d)."""
    positive = (center * context).sum(dim=-1)                          # (B,)
    negative = torch.bmm(negatives, center.unsqueeze(-1)).squeeze(-1)  # (B, K)
    loss = -F.logsigmoid(positive) - F.logsigmoid(-negative).sum(dim=-1)
    return loss.mean()
''',
    }),
    Answer("blind_counter_bisect", "vocab list + bisect, Counter.most_common(1), rank-based encoding (lowest-rank pair first, minbpe style), bytes table as a list, F.embedding, F.normalize, argsort then drop index, einsum", source={
        "CharTokenizer": '''import bisect


class CharTokenizer:
    """Character-level tokenizer: the vocabulary is the sorted set of characters of `text`."""

    def __init__(self, text):
        self.vocab = sorted(set(text))

    @property
    def vocab_size(self):
        return len(self.vocab)

    def encode(self, s):
        """The list of ids of the characters of `s`; an unknown character raises ValueError."""
        out = []
        for ch in s:
            pos = bisect.bisect_left(self.vocab, ch)
            if pos == len(self.vocab) or self.vocab[pos] != ch:
                raise ValueError(f"unknown character {ch!r}")
            out.append(pos)
        return out

    def decode(self, ids):
        """The string whose characters have these ids."""
        n = len(self.vocab)
        chars = []
        for i in ids:
            i = int(i)
            if not 0 <= i < n:
                raise ValueError(f"id {i} is outside the vocabulary of size {n}")
            chars.append(self.vocab[i])
        return "".join(chars)
''',
        "train_bpe": '''from collections import Counter


def _replace(seq, a, b, new):
    result = []
    i = 0
    n = len(seq)
    while i < n:
        if i < n - 1 and seq[i] == a and seq[i + 1] == b:
            result.append(new)
            i += 2
        else:
            result.append(seq[i])
            i += 1
    return result


def train_bpe(text, num_merges):
    """Learn up to num_merges byte-level BPE merges from text; merge i creates id 256 + i."""
    seq = list(text.encode("utf-8"))
    learned = []
    while len(learned) < num_merges and len(seq) >= 2:
        counter = Counter(zip(seq, seq[1:]))  # insertion order = order of first occurrence
        (pair, count), = counter.most_common(1)  # first maximal pair on ties
        if count < 2:
            break
        seq = _replace(seq, pair[0], pair[1], 256 + len(learned))
        learned.append(pair)
    return learned
''',
        "bpe_encode": '''def bpe_encode(text, merges):
    """Encode text: its UTF-8 bytes, then every merge in training order (merge i -> id 256 + i)."""
    rank = {}
    for i, pair in enumerate(merges):
        rank.setdefault(tuple(pair), i)
    seq = list(text.encode("utf-8"))
    while len(seq) >= 2:
        present = set(zip(seq, seq[1:]))
        pair = min(present, key=lambda p: rank.get(p, float("inf")))
        if pair not in rank:
            break
        seq = _replace(seq, pair[0], pair[1], 256 + rank[pair])
    return seq
''',
        "bpe_decode": '''def bpe_decode(ids, merges):
    """Decode BPE ids back to text; byte sequences that are not valid UTF-8 become the replacement character."""
    vocab = [bytes([i]) for i in range(256)]
    for a, b in merges:
        vocab.append(vocab[a] + vocab[b])
    buffer = bytearray()
    for i in ids:
        buffer.extend(vocab[i])
    return bytes(buffer).decode("utf-8", errors="replace")
''',
        "TokenEmbedding": '''class TokenEmbedding(nn.Module):
    """Embedding lookup scaled by sqrt(d_model); .weight has shape (vocab_size, d_model)."""

    def __init__(self, vocab_size, d_model):
        super().__init__()
        self.scale = math.sqrt(d_model)
        self.weight = nn.Parameter(torch.randn(vocab_size, d_model) / self.scale)

    def forward(self, ids):
        ids = torch.as_tensor(ids, device=self.weight.device)
        return F.embedding(ids, self.weight) * self.scale
''',
        "cosine_similarity_matrix": '''def cosine_similarity_matrix(x):
    """(N, d) -> (N, N) cosine similarity of every pair of rows; a zero row has similarity 0."""
    unit = F.normalize(x, p=2.0, dim=-1, eps=1e-8)
    return unit @ unit.transpose(0, 1)
''',
        "nearest_neighbors": '''def nearest_neighbors(embeddings, index, k):
    """LongTensor (k,): the k rows most cosine-similar to row `index`, most similar first, without `index`."""
    unit = F.normalize(embeddings, dim=-1, eps=1e-8)
    sims = unit @ unit[index]                       # (N,)
    order = torch.argsort(sims, descending=True)
    order = order[order != index]                   # never the query row itself
    return order[:k].to(torch.long)
''',
        "sgns_loss": '''def sgns_loss(center, context, negatives):
    """Skip-gram negative-sampling loss, mean over the batch; center, context: (B, d), negatives: (B, K, d)."""
    pos_score = torch.einsum("bd,bd->b", context, center)
    neg_score = torch.einsum("bkd,bd->bk", negatives, center)
    per_pair = -(F.logsigmoid(pos_score) + F.logsigmoid(-neg_score).sum(-1))
    return per_pair.mean()
''',
    }),
    Answer("blind_string_tricks", "vocab kept as a str (str.find), explicit (count, first position) tie-break with min(), bpe_encode via chr()/str.replace, recursive-free stack expansion in decode, one-hot @ W, outer-product of norms, masked_fill + sort, logits concatenated", source={
        "CharTokenizer": '''class CharTokenizer:
    """Character-level tokenizer: the vocabulary is the sorted set of characters of `text`."""

    def __init__(self, text):
        self._alphabet = "".join(sorted(set(text)))
        self.vocab_size = len(self._alphabet)

    def encode(self, s):
        """The list of ids of the characters of `s`; an unknown character raises ValueError."""
        ids = [self._alphabet.find(ch) for ch in s]
        for ch, i in zip(s, ids):
            if i < 0:
                raise ValueError(f"unknown character {ch!r} (not in the training text)")
        return ids

    def decode(self, ids):
        """The string whose characters have these ids."""
        return "".join(map(self._alphabet.__getitem__, (int(i) for i in ids)))
''',
        "train_bpe": '''def train_bpe(text, num_merges):
    """Learn up to num_merges byte-level BPE merges from text; merge i creates id 256 + i."""
    tokens = list(text.encode("utf-8"))
    merges = []
    for step in range(num_merges):
        if len(tokens) < 2:
            break
        count, first = {}, {}
        for j in range(len(tokens) - 1):
            pair = (tokens[j], tokens[j + 1])
            count[pair] = count.get(pair, 0) + 1
            first.setdefault(pair, j)
        pair = min(count, key=lambda p: (-count[p], first[p]))
        if count[pair] < 2:
            break
        new_id = 256 + step
        merged = []
        j = 0
        while j < len(tokens):
            if tokens[j] == pair[0] and j + 1 < len(tokens) and tokens[j + 1] == pair[1]:
                merged.append(new_id)
                j += 2
            else:
                merged.append(tokens[j])
                j += 1
        tokens = merged
        merges.append(pair)
    return merges
''',
        "bpe_encode": '''def bpe_encode(text, merges):
    """Encode text: its UTF-8 bytes, then every merge in training order (merge i -> id 256 + i)."""
    # one code point per id: str.replace substitutes left to right without overlap, exactly the merge rule
    s = "".join(map(chr, text.encode("utf-8")))
    for i, (a, b) in enumerate(merges):
        s = s.replace(chr(a) + chr(b), chr(256 + i))
    return [ord(c) for c in s]
''',
        "bpe_decode": '''def bpe_decode(ids, merges):
    """Decode BPE ids back to text; byte sequences that are not valid UTF-8 become the replacement character."""
    children = {256 + i: (a, b) for i, (a, b) in enumerate(merges)}
    out = []
    stack = list(reversed([int(i) for i in ids]))
    while stack:
        t = stack.pop()
        if t < 256:
            out.append(t)
        else:
            a, b = children[t]
            stack.append(b)
            stack.append(a)
    return bytes(out).decode("utf-8", errors="replace")
''',
        "TokenEmbedding": '''class TokenEmbedding(nn.Module):
    """Embedding lookup scaled by sqrt(d_model); .weight has shape (vocab_size, d_model)."""

    def __init__(self, vocab_size, d_model):
        super().__init__()
        self.vocab_size, self.d_model = vocab_size, d_model
        self.weight = nn.Parameter(torch.randn(vocab_size, d_model) / math.sqrt(d_model))

    def forward(self, ids):
        # row lookup written as (one-hot of the ids) @ W
        one_hot = F.one_hot(ids.to(self.weight.device).long(), self.vocab_size).to(self.weight.dtype)
        return (one_hot @ self.weight) * self.d_model ** 0.5
''',
        "cosine_similarity_matrix": '''def cosine_similarity_matrix(x):
    """(N, d) -> (N, N) cosine similarity of every pair of rows; a zero row has similarity 0."""
    eps = 1e-8
    lengths = torch.sqrt((x * x).sum(dim=-1))
    lengths = torch.maximum(lengths, torch.full_like(lengths, eps))
    return (x @ x.T) / torch.outer(lengths, lengths)
''',
        "nearest_neighbors": '''def nearest_neighbors(embeddings, index, k):
    """LongTensor (k,): the k rows most cosine-similar to row `index`, most similar first, without `index`."""
    n = embeddings.shape[0]
    sims = cosine_similarity_matrix(embeddings)[index]
    is_self = torch.arange(n, device=embeddings.device) == (index % n)
    sims = sims.masked_fill(is_self, float("-inf"))
    _, order = torch.sort(sims, descending=True, stable=True)
    return order[:k]
''',
        "sgns_loss": '''def sgns_loss(center, context, negatives):
    """Skip-gram negative-sampling loss, mean over the batch; center, context: (B, d), negatives: (B, K, d)."""
    pos = (context * center).sum(-1, keepdim=True)                   # (B, 1)
    neg = (negatives * center.unsqueeze(1)).sum(-1)                  # (B, K)
    signed_logits = torch.cat([pos, -neg], dim=1)                   # real pair: +, noise: -
    return -F.logsigmoid(signed_logits).sum(dim=1).mean()
''',
    }),
    Answer("blind_inplace_float64", "try/except KeyError tokenizer, in-place list merging (del), index_select lookup, float64 cosine via linalg.vector_norm + einsum, python-sorted neighbours, float64 loss cast back", source={
        "CharTokenizer": '''class CharTokenizer:
    """Character-level tokenizer: the vocabulary is the sorted set of characters of `text`."""

    def __init__(self, text):
        alphabet = sorted(set(text))
        self.id_of = dict(zip(alphabet, range(len(alphabet))))
        self.char_of = alphabet
        self.vocab_size = len(alphabet)

    def __len__(self):
        return self.vocab_size

    def encode(self, s):
        """The list of ids of the characters of `s`; an unknown character raises ValueError."""
        try:
            return [self.id_of[c] for c in s]
        except KeyError as err:
            raise ValueError(f"unknown character {err.args[0]!r}") from None

    def decode(self, ids):
        """The string whose characters have these ids."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return "".join(self.char_of[i] for i in ids)
''',
        "train_bpe": '''def _merge_in_place(seq, pair, new_id):
    j = 0
    while j < len(seq) - 1:
        if seq[j] == pair[0] and seq[j + 1] == pair[1]:
            seq[j] = new_id
            del seq[j + 1]
        j += 1
    return seq


def train_bpe(text, num_merges):
    """Learn up to num_merges byte-level BPE merges from text; merge i creates id 256 + i."""
    seq = list(text.encode("utf-8"))
    merges = []
    next_id = 256
    while len(merges) < num_merges:
        if len(seq) < 2:
            break
        stats = {}
        for j in range(len(seq) - 1):
            key = (seq[j], seq[j + 1])
            stats[key] = stats.get(key, 0) + 1
        best_pair, best_count = None, 0
        for key, value in stats.items():  # strictly greater keeps the leftmost on ties
            if value > best_count:
                best_pair, best_count = key, value
        if best_count < 2:
            break
        _merge_in_place(seq, best_pair, next_id)
        merges.append(best_pair)
        next_id += 1
    return merges
''',
        "bpe_encode": '''def bpe_encode(text, merges):
    """Encode text: its UTF-8 bytes, then every merge in training order (merge i -> id 256 + i)."""
    seq = list(text.encode("utf-8"))
    for new_id, pair in enumerate(merges, start=256):
        if len(seq) < 2:
            break
        _merge_in_place(seq, tuple(pair), new_id)
    return seq
''',
        "bpe_decode": '''def bpe_decode(ids, merges):
    """Decode BPE ids back to text; byte sequences that are not valid UTF-8 become the replacement character."""
    expansion = [[b] for b in range(256)]
    for a, b in merges:
        expansion.append(expansion[a] + expansion[b])
    flat = []
    for i in ids:
        if i < 0 or i >= len(expansion):
            raise ValueError(f"unknown token id {i}")
        flat.extend(expansion[i])
    return str(bytes(flat), "utf-8", "replace")
''',
        "TokenEmbedding": '''class TokenEmbedding(nn.Module):
    """Embedding lookup scaled by sqrt(d_model); .weight has shape (vocab_size, d_model)."""

    def __init__(self, vocab_size, d_model):
        super().__init__()
        w = torch.empty(vocab_size, d_model)
        nn.init.normal_(w, mean=0.0, std=1.0 / math.sqrt(d_model))
        self.weight = nn.Parameter(w)
        self.register_buffer("scale", torch.tensor(float(d_model)).sqrt(), persistent=False)

    def forward(self, ids):
        flat = ids.reshape(-1).to(device=self.weight.device, dtype=torch.long)
        rows = self.weight.index_select(0, flat)
        return (rows * self.scale.to(rows.dtype)).reshape(*ids.shape, self.weight.shape[1])
''',
        "cosine_similarity_matrix": '''def cosine_similarity_matrix(x):
    """(N, d) -> (N, N) cosine similarity of every pair of rows; a zero row has similarity 0."""
    x64 = x.to(torch.float64)
    n = torch.linalg.vector_norm(x64, ord=2, dim=1).clamp(min=1e-8)
    dots = torch.einsum("id,jd->ij", x64, x64)
    return (dots / n[:, None] / n[None, :]).to(x.dtype)
''',
        "nearest_neighbors": '''def nearest_neighbors(embeddings, index, k):
    """LongTensor (k,): the k rows most cosine-similar to row `index`, most similar first, without `index`."""
    row = cosine_similarity_matrix(embeddings)[index].tolist()
    n = len(row)
    target = index % n
    candidates = [j for j in range(n) if j != target]
    candidates.sort(key=lambda j: row[j], reverse=True)
    return torch.tensor(candidates[:k], dtype=torch.long, device=embeddings.device)
''',
        "sgns_loss": '''def sgns_loss(center, context, negatives):
    """Skip-gram negative-sampling loss, mean over the batch; center, context: (B, d), negatives: (B, K, d)."""
    dtype = center.dtype
    c, o, n = center.double(), context.double(), negatives.double()
    pos = torch.matmul(o.unsqueeze(1), c.unsqueeze(2)).reshape(-1)        # (B,)
    neg = torch.matmul(n, c.unsqueeze(2)).squeeze(2)                      # (B, K)
    total = -F.logsigmoid(pos).sum() - F.logsigmoid(-neg).sum()
    return (total / center.shape[0]).to(dtype)
''',
    }),
    Answer("blind_functional_iterators", "vocab tuple + dict(map(reversed, enumerate)), itertools.pairwise counting, iterator-based merge, bytes table via b\"\".join, whole weight scaled then indexed, torch.where-clamped norms + torch.mm, torch.where(-inf) + topk under no_grad, loss as sum / B", source={
        "CharTokenizer": '''class CharTokenizer:
    """Character-level tokenizer: the vocabulary is the sorted set of characters of `text`."""

    def __init__(self, text):
        self.tokens = tuple(sorted(set(text)))
        self.vocab_size = len(self.tokens)
        self.lookup = dict(map(reversed, enumerate(self.tokens)))

    def encode(self, s):
        """The list of ids of the characters of `s`; an unknown character raises ValueError."""
        unknown = [c for c in s if c not in self.lookup]
        if unknown:
            raise ValueError(f"unknown character {unknown[0]!r}; the vocabulary has {self.vocab_size} characters")
        return list(map(self.lookup.__getitem__, s))

    def decode(self, ids):
        """The string whose characters have these ids."""
        return "".join([self.tokens[i] for i in map(int, ids)])
''',
        "train_bpe": '''from itertools import pairwise


def _merged(seq, pair, new_id):
    it = iter(seq)
    prev = next(it, None)
    if prev is None:
        return []
    out = []
    for cur in it:
        if prev is not None and (prev, cur) == pair:
            out.append(new_id)
            prev = None
        else:
            if prev is not None:
                out.append(prev)
            prev = cur
    if prev is not None:
        out.append(prev)
    return out


def train_bpe(text, num_merges):
    """Learn up to num_merges byte-level BPE merges from text; merge i creates id 256 + i."""
    seq = list(text.encode("utf-8"))
    merges = []
    for new_id in range(256, 256 + max(num_merges, 0)):
        counts = {}
        for pair in pairwise(seq):
            counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        top = max(counts.values())
        if top < 2:
            break
        pair = next(p for p, c in counts.items() if c == top)
        seq = _merged(seq, pair, new_id)
        merges.append(pair)
    return merges
''',
        "bpe_encode": '''def bpe_encode(text, merges):
    """Encode text: its UTF-8 bytes, then every merge in training order (merge i -> id 256 + i)."""
    seq = list(text.encode("utf-8"))
    for offset, (a, b) in enumerate(merges):
        seq = _merged(seq, (a, b), 256 + offset)
    return seq
''',
        "bpe_decode": '''def bpe_decode(ids, merges):
    """Decode BPE ids back to text; byte sequences that are not valid UTF-8 become the replacement character."""
    pieces = {i: bytes((i,)) for i in range(256)}
    for offset, (a, b) in enumerate(merges):
        pieces[256 + offset] = b"".join((pieces[a], pieces[b]))
    raw = b"".join(map(pieces.__getitem__, ids))
    return raw.decode(encoding="utf-8", errors="replace")
''',
        "TokenEmbedding": '''class TokenEmbedding(nn.Module):
    """Embedding lookup scaled by sqrt(d_model); .weight has shape (vocab_size, d_model)."""

    def __init__(self, vocab_size, d_model):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(vocab_size, d_model).div_(math.sqrt(d_model)))

    def forward(self, ids):
        d_model = self.weight.shape[-1]
        scaled = self.weight * math.sqrt(d_model)
        return scaled[ids.to(self.weight.device)]
''',
        "cosine_similarity_matrix": '''def cosine_similarity_matrix(x):
    """(N, d) -> (N, N) cosine similarity of every pair of rows; a zero row has similarity 0."""
    norm = x.pow(2).sum(dim=1).sqrt()
    norm = torch.where(norm < 1e-8, torch.full_like(norm, 1e-8), norm)
    unit = x / norm.unsqueeze(1)
    return torch.mm(unit, unit.t())
''',
        "nearest_neighbors": '''def nearest_neighbors(embeddings, index, k):
    """LongTensor (k,): the k rows most cosine-similar to row `index`, most similar first, without `index`."""
    with torch.no_grad():
        sims = cosine_similarity_matrix(embeddings.detach())[index]
        ids = torch.arange(sims.numel(), device=sims.device)
        sims = torch.where(ids == ids[index], torch.full_like(sims, -math.inf), sims)
        top = sims.topk(k, largest=True, sorted=True)
    return top.indices
''',
        "sgns_loss": '''def sgns_loss(center, context, negatives):
    """Skip-gram negative-sampling loss, mean over the batch; center, context: (B, d), negatives: (B, K, d)."""
    batch = center.shape[0]
    real = torch.sum(center * context, dim=1)
    noise = torch.sum(negatives * center[:, None, :], dim=2)
    return -(F.logsigmoid(real).sum() + F.logsigmoid(noise.neg()).sum()) / batch
''',
    }),
]

ALTERNATIVES += BLIND
