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
