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
