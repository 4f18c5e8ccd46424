"""Bug zoo for exercise 10 (the full model): classic mistakes that must lose points, and unusual but
correct answers that must keep full marks."""

from submissions import Answer

ASSIGNMENT = "10_full_model"

MODEL = "Transformer"
LOSS = "seq2seq_loss"
GREEDY = "greedy_decode"

#: The graded training run (about 20 CPU seconds) is left out for mistakes, which all lose points
#: elsewhere; the correct alternatives still run it.
SLOW_TESTS = {"test_training"}

FORWARD = "        return self.generator(self.decode(tgt_ids, memory, tgt_mask, src_mask))  # (B, L_t, V_t)\n"
TIE_DECODER = "            self.decoder.embedding.weight = self.encoder.embedding.weight\n"
TIE_GENERATOR = "            self.generator.weight = self.encoder.embedding.weight\n"
STACKS = ("        self.encoder = Encoder(src_vocab_size, d_model, n_heads, d_ff, n_layers, dropout, max_len, norm_first)\n"
          "        self.decoder = Decoder(tgt_vocab_size, d_model, n_heads, d_ff, n_layers, dropout, max_len, norm_first)\n")
RAISE = ("        if share_embeddings and src_vocab_size != tgt_vocab_size:\n"
         "            raise ValueError(f\"tied embeddings need one vocabulary, got {src_vocab_size} and {tgt_vocab_size} tokens\")\n")
INIT = ("        for p in self.parameters():\n"
        "            if p.dim() > 1:\n"
        "                nn.init.xavier_uniform_(p)\n")

MISTAKES = [
    # Task 1: the model
    Answer("generator_with_bias", "gives the generator a bias",
           replace={MODEL: [("nn.Linear(d_model, tgt_vocab_size, bias=False)", "nn.Linear(d_model, tgt_vocab_size)")]}),
    Answer("memory_mask_forgotten", "does not pass the source mask to the decoder's cross-attention",
           replace={MODEL: [(FORWARD, FORWARD.replace("tgt_mask, src_mask)", "tgt_mask)"))]}),
    Answer("encoder_without_mask", "does not pass the source mask to the encoder",
           replace={MODEL: [("memory = self.encode(src_ids, src_mask)", "memory = self.encode(src_ids)")]}),
    Answer("src_mask_as_tgt_mask", "gives the source mask to the decoder's self-attention",
           replace={MODEL: [(FORWARD, FORWARD.replace("tgt_mask, src_mask)", "src_mask, src_mask)"))]}),
    Answer("tgt_mask_dropped", "does not pass a given tgt_mask on to the decoder",
           replace={MODEL: [("        return self.decoder(tgt_ids, memory, tgt_mask, memory_mask)",
                             "        return self.decoder(tgt_ids, memory, None, memory_mask)")]}),
    Answer("target_padding_mask_not_causal", "uses the target's padding mask instead of the causal mask",
           replace={MODEL: [("        return self.decoder(tgt_ids, memory, tgt_mask, memory_mask)",
                             ("        if tgt_mask is None:\n"
                              "            tgt_mask = padding_mask(tgt_ids, PAD)\n"
                              "        return self.decoder(tgt_ids, memory, tgt_mask, memory_mask)"))]}),
    Answer("not_tied", "ignores share_embeddings (three separate matrices)",
           replace={MODEL: [(TIE_DECODER, "            pass\n"), (TIE_GENERATOR, "")]}),
    Answer("ties_only_generator", "ties the generator to the encoder's embedding but not the decoder's embedding",
           replace={MODEL: [(TIE_DECODER, "")]}),
    Answer("ties_by_copying", "copies the embedding's values instead of sharing the Parameter",
           replace={MODEL: [(TIE_DECODER, "            self.decoder.embedding.weight.data.copy_(self.encoder.embedding.weight.data)\n"),
                            (TIE_GENERATOR, "            self.generator.weight.data.copy_(self.encoder.embedding.weight.data)\n")]}),
    Answer("no_value_error", "ties embeddings of different vocabularies without raising ValueError",
           replace={MODEL: [(RAISE, "")]}),
    Answer("decoder_source_vocabulary", "builds the decoder with the source vocabulary size",
           replace={MODEL: [("self.decoder = Decoder(tgt_vocab_size", "self.decoder = Decoder(src_vocab_size")]}),
    Answer("settings_not_passed", "does not pass dropout, max_len and norm_first on to the stacks",
           replace={MODEL: [(STACKS, STACKS.replace(", dropout, max_len, norm_first)", ")"))]}),
    Answer("forward_returns_probabilities", "returns softmax probabilities instead of logits",
           replace={MODEL: [(FORWARD, FORWARD.replace("src_mask))", "src_mask)).softmax(-1)"))]}),
    Answer("decode_returns_logits", "applies the generator in decode (decode must return hidden states)",
           replace={MODEL: [("        return self.decoder(tgt_ids, memory, tgt_mask, memory_mask)",
                             "        return self.generator(self.decoder(tgt_ids, memory, tgt_mask, memory_mask))"),
                            (FORWARD, "        return self.decode(tgt_ids, memory, tgt_mask, src_mask)\n")]}),
    Answer("imports_the_reference", "imports the course's reference implementation", source={
        MODEL: "from llm_foundations.model import Transformer\n",
        GREEDY: "from llm_foundations.model import greedy_decode\n",
    }),
    Answer("subclasses_the_reference", "subclasses the course's Transformer", source={MODEL: '''
import llm_foundations.model


class Transformer(llm_foundations.model.Transformer):
    """The course's model under another name."""
'''}),
    # Task 2: the loss
    Answer("loss_not_shifted", "scores the model on its own input tokens (no shift)",
           replace={LOSS: [("inputs, targets = tgt_ids[:, :-1], tgt_ids[:, 1:]", "inputs, targets = tgt_ids, tgt_ids")]}),
    Answer("loss_shifted_wrong_way", "feeds tgt[:, 1:] and predicts tgt[:, :-1]",
           replace={LOSS: [("inputs, targets = tgt_ids[:, :-1], tgt_ids[:, 1:]",
                            "inputs, targets = tgt_ids[:, 1:], tgt_ids[:, :-1]")]}),
    Answer("loss_counts_pad", "does not ignore the PAD targets",
           replace={LOSS: [(", ignore_index=pad_id)", ")")]}),
    Answer("loss_without_source_mask", "calls the model without the source padding mask",
           replace={LOSS: [("model(src_ids, inputs, padding_mask(src_ids, pad_id))", "model(src_ids, inputs)")]}),
    Answer("loss_summed", "sums the token losses instead of averaging them",
           replace={LOSS: [("ignore_index=pad_id)", "ignore_index=pad_id, reduction=\"sum\")")]}),
    Answer("loss_hard_codes_pad", "uses PAD = 0 instead of the pad_id argument",
           replace={LOSS: [("padding_mask(src_ids, pad_id)", "padding_mask(src_ids, PAD)"),
                           ("ignore_index=pad_id", "ignore_index=PAD")]}),
    # Task 3: greedy decoding
    Answer("greedy_no_eos_fill", "lets a finished row go on producing tokens after EOS",
           replace={GREEDY: [("            next_id = next_id.masked_fill(finished, eos_id)  # a finished row only repeats EOS\n", "")]}),
    Answer("greedy_fills_with_pad", "fills finished rows with PAD instead of EOS",
           replace={GREEDY: [("next_id.masked_fill(finished, eos_id)", "next_id.masked_fill(finished, PAD)")]}),
    Answer("greedy_off_by_one", "returns max_len + 1 tokens (the loop condition is off by one)",
           replace={GREEDY: [("while ids.size(1) < max_len", "while ids.size(1) <= max_len")]}),
    Answer("greedy_no_early_stop", "always decodes max_len tokens, even when every row has finished",
           replace={GREEDY: [("while ids.size(1) < max_len and not finished.all():", "while ids.size(1) < max_len:")]}),
    Answer("greedy_without_bos", "drops the BOS column from the result",
           replace={GREEDY: [("    model.train(was_training)\n    return ids", "    model.train(was_training)\n    return ids[:, 1:]")]}),
    Answer("greedy_argmax_wrong_axis", "takes the argmax over the batch instead of the vocabulary",
           replace={GREEDY: [(".argmax(dim=-1)", ".argmax(dim=0)")]}),
    Answer("greedy_first_position", "uses the logits of the first position instead of the last",
           replace={GREEDY: [("hidden[:, -1]", "hidden[:, 0]")]}),
    Answer("greedy_dropout_on", "decodes in training mode (dropout on)",
           replace={GREEDY: [("    model.eval()  # no dropout while decoding\n", "")]}),
    Answer("greedy_mode_not_restored", "leaves the model in eval mode",
           replace={GREEDY: [("    model.train(was_training)\n", "")]}),
    Answer("greedy_without_source_mask", "decodes without the source mask in the cross-attention",
           replace={GREEDY: [("model.decode(ids, memory, None, src_mask)", "model.decode(ids, memory)")]}),
]

ALTERNATIVES = [
    Answer("transformer_module_dict", "keeps the parts in an nn.ModuleDict behind properties", source={MODEL: '''
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
'''}),
    Answer("transformer_explicit_shared_table", "creates the shared table itself and applies the generator with F.linear",
           source={MODEL: '''
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
'''}),
    Answer("transformer_default_init", "keeps PyTorch's default initialisation (no Xavier)",
           replace={MODEL: [(INIT, "")]}),
    Answer("loss_log_softmax_gather", "computes the loss with log_softmax, gather and a mask", source={LOSS: '''
def seq2seq_loss(model, batch, pad_id=PAD):
    src_ids, tgt_ids = batch
    logits = model(src_ids, tgt_ids[:, :-1], src_mask=padding_mask(src_ids, pad_id)).float()
    log_probs = torch.log_softmax(logits, dim=-1)
    nexts = tgt_ids[:, 1:]
    picked = log_probs.gather(2, nexts.unsqueeze(2)).squeeze(2)
    real = (nexts != pad_id).to(picked.dtype)
    return -(picked * real).sum() / real.sum()
'''}),
    Answer("loss_with_course_helper", "uses the course's sequence_loss for the cross-entropy", source={LOSS: '''
from llm_foundations.training import sequence_loss


def seq2seq_loss(model, batch, pad_id=PAD):
    src, tgt = batch
    logits = model(src, tgt[:, :-1], padding_mask(src, pad_id))
    return sequence_loss(logits, tgt[:, 1:], ignore_index=pad_id)
'''}),
    Answer("greedy_kv_cache", "decodes with the decoder's KV cache, one new token per step", source={GREEDY: '''
def greedy_decode(model, src_ids, bos_id, eos_id, max_len, src_mask=None):
    mode = model.training
    model.train(False)
    try:
        with torch.no_grad():
            memory = model.encode(src_ids, src_mask)
            caches = model.decoder.new_caches()
            batch = src_ids.shape[0]
            out = torch.full((batch, 1), bos_id, dtype=torch.long, device=src_ids.device)
            alive = torch.ones(batch, dtype=torch.bool, device=src_ids.device)
            step_input = out
            while out.shape[1] < max_len and alive.any():
                h = model.decoder(step_input, memory, memory_mask=src_mask, caches=caches)
                token = model.generator(h[:, -1]).argmax(-1)
                token = torch.where(alive, token, torch.full_like(token, eos_id))
                alive = alive & (token != eos_id)
                step_input = token.unsqueeze(1)
                out = torch.cat((out, step_input), dim=1)
        return out
    finally:
        model.train(mode)
'''}),
    Answer("greedy_full_forward", "runs the whole model on the prefix at every step and collects tokens in a list",
           source={GREEDY: '''
def greedy_decode(model, src_ids, bos_id, eos_id, max_len, src_mask=None):
    restore = model.training
    model.eval()
    columns = [torch.full((len(src_ids),), bos_id, dtype=torch.long, device=src_ids.device)]
    done = [False] * len(src_ids)
    for _ in range(max_len - 1):
        if all(done):
            break
        with torch.no_grad():
            logits = model(src_ids, torch.stack(columns, dim=1), src_mask)
        best = logits[:, -1, :].max(dim=-1).indices
        for row in range(len(src_ids)):
            if done[row]:
                best[row] = eos_id
            elif int(best[row]) == eos_id:
                done[row] = True
        columns.append(best)
    if restore:
        model.train()
    return torch.stack(columns, dim=1)
'''}),
]


# Blind answers: written from the released student notebook alone (task text and visible tests),
# without the solution, the hidden tests or the checks (c/ch10_full_model.py). They join the
# alternatives as written: where one failed, the task text or the tests were fixed, never the answer.
BLIND = [
    Answer("blind_canonical", "textbook: build, xavier on every p.dim() > 1, then tie by assignment; cross_entropy(ignore_index); full-prefix greedy loop with a finished mask", source={
        "Transformer": '''class Transformer(nn.Module):
    """Encoder, decoder and a bias-free generator; share_embeddings ties the three (V, d_model) matrices."""

    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=512, n_heads=8, d_ff=2048, n_layers=6, dropout=0.1,
                 max_len=512, norm_first=True, share_embeddings=False):
        super().__init__()
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError("share_embeddings needs src_vocab_size == tgt_vocab_size")
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
        "seq2seq_loss": '''def seq2seq_loss(model, batch, pad_id=PAD):
    """Mean next-token cross-entropy of model on batch = (src_ids, tgt_ids), PAD targets not counted."""
    src_ids, tgt_ids = batch
    logits = model(src_ids, tgt_ids[:, :-1], padding_mask(src_ids, pad_id)).float()
    target = tgt_ids[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=pad_id)
''',
        "greedy_decode": '''def greedy_decode(model, src_ids, bos_id, eos_id, max_len, src_mask=None):
    """Greedy decoding in eval mode: (B, n <= max_len) ids starting with bos_id, eos_id after a row's end."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        memory = model.encode(src_ids, src_mask)
        B = src_ids.size(0)
        ids = torch.full((B, 1), bos_id, dtype=torch.long, device=src_ids.device)
        finished = torch.zeros(B, dtype=torch.bool, device=src_ids.device)
        while ids.size(1) < max_len and not bool(finished.all()):
            hidden = model.decode(ids, memory, None, src_mask)
            next_id = model.generator(hidden[:, -1]).argmax(dim=-1)
            next_id = torch.where(finished, torch.full_like(next_id, eos_id), next_id)
            ids = torch.cat([ids, next_id[:, None]], dim=1)
            finished = finished | (next_id == eos_id)
    model.train(was_training)
    return ids
''',
    }),
    Answer("blind_tie_first_flinear", "tie BEFORE init (init over the deduplicated parameters), logits via F.linear with the generator weight; sum-reduced CE / number of non-PAD tokens; preallocated EOS buffer with early break", source={
        "Transformer": '''class Transformer(nn.Module):
    """Encoder, decoder and a bias-free generator; share_embeddings ties the three (V, d_model) matrices."""

    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=512, n_heads=8, d_ff=2048, n_layers=6, dropout=0.1,
                 max_len=512, norm_first=True, share_embeddings=False):
        super().__init__()
        settings = dict(d_model=d_model, n_heads=n_heads, d_ff=d_ff, n_layers=n_layers, dropout=dropout,
                        max_len=max_len, norm_first=norm_first)
        self.encoder = Encoder(src_vocab_size, **settings)
        self.decoder = Decoder(tgt_vocab_size, **settings)
        self.generator = nn.Linear(d_model, tgt_vocab_size, bias=False)
        if share_embeddings:
            if src_vocab_size != tgt_vocab_size:
                raise ValueError(f"cannot tie embeddings of {src_vocab_size} and {tgt_vocab_size} tokens")
            shared = self.encoder.embedding.weight
            self.decoder.embedding.weight = shared
            self.generator.weight = shared
        for name, param in self.named_parameters():
            if param.ndim >= 2:
                nn.init.xavier_uniform_(param)

    def encode(self, src_ids, src_mask=None):
        return self.encoder(src_ids, src_mask=src_mask)

    def decode(self, tgt_ids, memory, tgt_mask=None, memory_mask=None):
        return self.decoder(tgt_ids, memory, tgt_mask=tgt_mask, memory_mask=memory_mask)

    def forward(self, src_ids, tgt_ids, src_mask=None, tgt_mask=None):
        h = self.decode(tgt_ids, self.encode(src_ids, src_mask), tgt_mask=tgt_mask, memory_mask=src_mask)
        return F.linear(h, self.generator.weight)
''',
        "seq2seq_loss": '''def seq2seq_loss(model, batch, pad_id=PAD):
    """Mean next-token cross-entropy of model on batch = (src_ids, tgt_ids), PAD targets not counted."""
    src, tgt = batch
    decoder_input, target = tgt[:, :-1], tgt[:, 1:]
    logits = model(src, decoder_input, padding_mask(src, pad_id)).float()
    total = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=pad_id, reduction="sum")
    count = (target != pad_id).sum()
    return total / count
''',
        "greedy_decode": '''def greedy_decode(model, src_ids, bos_id, eos_id, max_len, src_mask=None):
    """Greedy decoding in eval mode: (B, n <= max_len) ids starting with bos_id, eos_id after a row's end."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            B = src_ids.shape[0]
            out = torch.full((B, max(max_len, 1)), eos_id, dtype=torch.long, device=src_ids.device)
            out[:, 0] = bos_id
            memory = model.encode(src_ids, src_mask)
            done = torch.zeros(B, dtype=torch.bool, device=src_ids.device)
            n = 1
            while n < max_len:
                h = model.decode(out[:, :n], memory, None, src_mask)
                best = model.generator(h[:, -1, :]).argmax(-1)
                out[:, n] = best.masked_fill(done, eos_id)
                done |= out[:, n] == eos_id
                n += 1
                if done.all():
                    break
            return out[:, :n]
    finally:
        model.train(was_training)
''',
    }),
    Answer("blind_default_init", "NO xavier (text calls it only 'recommended'; PyTorch/course default init); log_softmax + gather + masked mean; per-row python bookkeeping of finished rows", source={
        "Transformer": '''class Transformer(nn.Module):
    """Encoder, decoder and a bias-free generator; share_embeddings ties the three (V, d_model) matrices."""

    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=512, n_heads=8, d_ff=2048, n_layers=6, dropout=0.1,
                 max_len=512, norm_first=True, share_embeddings=False):
        super().__init__()
        if share_embeddings and tgt_vocab_size != src_vocab_size:
            raise ValueError("tied embeddings need one vocabulary")
        self.encoder = Encoder(src_vocab_size, d_model, n_heads, d_ff, n_layers, dropout, max_len, norm_first)
        self.decoder = Decoder(tgt_vocab_size, d_model, n_heads, d_ff, n_layers, dropout, max_len, norm_first)
        self.generator = nn.Linear(d_model, tgt_vocab_size, bias=False)
        if share_embeddings:
            self.generator.weight = self.encoder.embedding.weight
            self.decoder.embedding.weight = self.encoder.embedding.weight

    def encode(self, src_ids, src_mask=None):
        return self.encoder(src_ids, src_mask)

    def decode(self, tgt_ids, memory, tgt_mask=None, memory_mask=None):
        return self.decoder(tgt_ids, memory, tgt_mask, memory_mask)

    def forward(self, src_ids, tgt_ids, src_mask=None, tgt_mask=None):
        memory = self.encode(src_ids, src_mask)
        hidden = self.decode(tgt_ids, memory, tgt_mask=tgt_mask, memory_mask=src_mask)
        return self.generator(hidden)
''',
        "seq2seq_loss": '''def seq2seq_loss(model, batch, pad_id=PAD):
    """Mean next-token cross-entropy of model on batch = (src_ids, tgt_ids), PAD targets not counted."""
    src_ids, tgt_ids = batch
    logits = model(src_ids, tgt_ids[:, :-1], padding_mask(src_ids, pad_id)).float()
    targets = tgt_ids[:, 1:]
    log_probs = torch.log_softmax(logits, dim=-1)
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, L_t - 1)
    keep = (targets != pad_id).to(picked.dtype)
    return -(picked * keep).sum() / keep.sum()
''',
        "greedy_decode": '''def greedy_decode(model, src_ids, bos_id, eos_id, max_len, src_mask=None):
    """Greedy decoding in eval mode: (B, n <= max_len) ids starting with bos_id, eos_id after a row's end."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        memory = model.encode(src_ids, src_mask)
        rows = [[bos_id] for _ in range(src_ids.size(0))]
        finished = [False] * len(rows)
        while len(rows[0]) < max_len and not all(finished):
            ids = torch.tensor(rows, dtype=torch.long, device=src_ids.device)
            logits = model.generator(model.decode(ids, memory, None, src_mask))[:, -1]
            choice = logits.argmax(-1).tolist()
            for b, token in enumerate(choice):
                if finished[b]:
                    token = eos_id
                rows[b].append(int(token))
                if token == eos_id:
                    finished[b] = True
        result = torch.tensor(rows, dtype=torch.long, device=src_ids.device)
    model.train(was_training)
    return result
''',
    }),
    Answer("blind_manual_xavier_kvcache", "hand-written xavier bound uniform_ under no_grad; boolean-selected non-PAD positions then mean CE; greedy decoding with the course decoder's KV caches (new_caches) and an inline cached step", source={
        "Transformer": '''import math as _math


class Transformer(nn.Module):
    """Encoder, decoder and a bias-free generator; share_embeddings ties the three (V, d_model) matrices."""

    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=512, n_heads=8, d_ff=2048, n_layers=6, dropout=0.1,
                 max_len=512, norm_first=True, share_embeddings=False):
        super().__init__()
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError("share_embeddings=True requires equal vocabularies")
        self.share_embeddings = share_embeddings
        self.encoder = Encoder(src_vocab_size, d_model, n_heads, d_ff, n_layers, dropout, max_len, norm_first)
        self.decoder = Decoder(tgt_vocab_size, d_model, n_heads, d_ff, n_layers, dropout, max_len, norm_first)
        self.generator = nn.Linear(d_model, tgt_vocab_size, bias=False)
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() == 2:
                    fan_out, fan_in = p.shape
                    bound = _math.sqrt(6.0 / (fan_in + fan_out))
                    p.uniform_(-bound, bound)
                elif p.dim() > 2:
                    nn.init.xavier_uniform_(p)
        if share_embeddings:
            table = self.encoder.embedding.weight
            self.decoder.embedding.weight = table
            self.generator.weight = table

    def encode(self, src_ids, src_mask=None):
        memory = self.encoder(src_ids, src_mask)
        return memory

    def decode(self, tgt_ids, memory, tgt_mask=None, memory_mask=None):
        hidden = self.decoder(tgt_ids, memory, tgt_mask, memory_mask)
        return hidden

    def forward(self, src_ids, tgt_ids, src_mask=None, tgt_mask=None):
        return self.generator(self.decode(tgt_ids, self.encode(src_ids, src_mask), tgt_mask, src_mask))
''',
        "seq2seq_loss": '''def seq2seq_loss(model, batch, pad_id=PAD):
    """Mean next-token cross-entropy of model on batch = (src_ids, tgt_ids), PAD targets not counted."""
    src_ids, tgt_ids = batch
    logits = model(src_ids, tgt_ids[:, :-1], padding_mask(src_ids, pad_id)).float()
    gold = tgt_ids[:, 1:]
    real = gold != pad_id
    return F.cross_entropy(logits[real], gold[real])
''',
        "greedy_decode": '''def _cached_step(decoder, new_ids, memory, caches, memory_mask):
    T = len(caches[0])
    L = new_ids.size(1)
    x = decoder.positions(decoder.embedding(new_ids), offset=T)
    mask = torch.ones(L, T + L, dtype=torch.bool, device=new_ids.device).tril(diagonal=T)
    for layer, cache in zip(decoder.layers, caches):
        x = layer(x, memory, mask, memory_mask, cache=cache)
    return x if decoder.norm is None else decoder.norm(x)


def greedy_decode(model, src_ids, bos_id, eos_id, max_len, src_mask=None):
    """Greedy decoding in eval mode: (B, n <= max_len) ids starting with bos_id, eos_id after a row's end."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        memory = model.encode(src_ids, src_mask)
        caches = model.decoder.new_caches()
        ids = torch.full((src_ids.size(0), 1), bos_id, dtype=torch.long, device=src_ids.device)
        finished = torch.zeros(src_ids.size(0), dtype=torch.bool, device=src_ids.device)
        for _ in range(max_len - 1):
            if finished.all():
                break
            h = _cached_step(model.decoder, ids[:, -1:], memory, caches, src_mask)
            token = model.generator(h[:, -1]).argmax(-1)
            token[finished] = eos_id
            finished = finished | token.eq(eos_id)
            ids = torch.cat((ids, token.unsqueeze(-1)), dim=-1)
    model.train(was_training)
    return ids
''',
    }),
    Answer("blind_chained_tie_f64loss", "ValueError before building, chained tie assignment, init via modules()/parameters(recurse=False); float64 nll_loss cast back to float32; inference_mode + torch.where + try/finally", source={
        "Transformer": '''class Transformer(nn.Module):
    """Encoder, decoder and a bias-free generator; share_embeddings ties the three (V, d_model) matrices."""

    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=512, n_heads=8, d_ff=2048, n_layers=6, dropout=0.1,
                 max_len=512, norm_first=True, share_embeddings=False):
        super().__init__()
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError(f"share_embeddings: src_vocab_size {src_vocab_size} != tgt_vocab_size {tgt_vocab_size}")
        self.encoder = Encoder(src_vocab_size, d_model, n_heads, d_ff, n_layers, dropout=dropout, max_len=max_len,
                               norm_first=norm_first)
        self.decoder = Decoder(tgt_vocab_size, d_model, n_heads, d_ff, n_layers, dropout=dropout, max_len=max_len,
                               norm_first=norm_first)
        self.generator = nn.Linear(d_model, tgt_vocab_size, bias=False)
        if share_embeddings:
            self.decoder.embedding.weight = self.generator.weight = self.encoder.embedding.weight
        seen = set()
        for module in self.modules():
            for p in module.parameters(recurse=False):
                if id(p) not in seen and p.dim() > 1:
                    seen.add(id(p))
                    nn.init.xavier_uniform_(p)

    def encode(self, src_ids, src_mask=None):
        return self.encoder(src_ids, src_mask)

    def decode(self, tgt_ids, memory, tgt_mask=None, memory_mask=None):
        return self.decoder(tgt_ids, memory, tgt_mask, memory_mask)

    def forward(self, src_ids, tgt_ids, src_mask=None, tgt_mask=None):
        memory = self.encode(src_ids, src_mask)
        out = self.decode(tgt_ids, memory, tgt_mask, src_mask)
        return out @ self.generator.weight.t()
''',
        "seq2seq_loss": '''def seq2seq_loss(model, batch, pad_id=PAD):
    """Mean next-token cross-entropy of model on batch = (src_ids, tgt_ids), PAD targets not counted."""
    src_ids, tgt_ids = batch
    src_mask = padding_mask(src_ids, pad_id)
    logits = model(src_ids, tgt_ids[:, :-1], src_mask).float()
    V = logits.shape[-1]
    log_p = F.log_softmax(logits.double().view(-1, V), dim=-1)
    loss = F.nll_loss(log_p, tgt_ids[:, 1:].contiguous().view(-1), ignore_index=pad_id, reduction="mean")
    return loss.float()
''',
        "greedy_decode": '''def greedy_decode(model, src_ids, bos_id, eos_id, max_len, src_mask=None):
    """Greedy decoding in eval mode: (B, n <= max_len) ids starting with bos_id, eos_id after a row's end."""
    mode = model.training
    model.train(False)
    try:
        with torch.inference_mode():
            device = src_ids.device
            memory = model.encode(src_ids, src_mask)
            ids = torch.full((src_ids.shape[0], 1), bos_id, dtype=torch.long, device=device)
            ended = torch.zeros(src_ids.shape[0], dtype=torch.bool, device=device)
            eos = torch.tensor(eos_id, dtype=torch.long, device=device)
            for _ in range(1, max_len):
                if bool(ended.all()):
                    break
                scores = model.generator(model.decode(ids, memory, memory_mask=src_mask))
                nxt = torch.where(ended, eos, scores[:, -1].argmax(-1))
                ended = torch.logical_or(ended, nxt == eos)
                ids = torch.cat([ids, nxt.unsqueeze(1)], 1)
        return ids.clone()
    finally:
        model.train(mode)
''',
    }),
]

ALTERNATIVES += BLIND
