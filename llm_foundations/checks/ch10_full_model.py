"""Checks for the full-model exercise (chapter 10).

Task 1, the encoder-decoder assembly: the course's Transformer with random weights to compare
with, copying its weights into a student's model, what common assembly mistakes return, and a
guard against calling the course's reference or PyTorch's own Transformer. (The greedy-decoding,
sequence-to-sequence loss and date helpers served the exercise's earlier tasks and the tests of
this module; they stay available.)

Tasks 2-7, the student's own GPT: the course's GPT as the exercise specifies it
(:func:`course_gpt`), copying its weights into the exercise's parameter layout
(:data:`GPT_LAYOUT`, :func:`copy_gpt_weights`), what common GPT and loss mistakes return, a
model wrapper that records how ``generate`` calls the model (:class:`CallRecorder`), the graded
training run on tiny Shakespeare (:data:`GPT_RUN`), and a guard against the course's GPT, its
attention, chapter 7's sampling and PyTorch's attention (:data:`forbid_gpt_reference`).

Used by the test cells of ``solutions/10_full_model``; :mod:`llm_foundations.checks.core` holds the
general checks (``expect_close`` and friends).

Dimension letters: ``B`` batch, ``L_s`` source length, ``L_t`` target length, ``V`` vocabulary
size, ``d_model`` model width. Masks are boolean, **True = may attend**.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import llm_foundations.attention as _attention
import llm_foundations.model as _reference
import llm_foundations.sampling as _sampling
import llm_foundations.training as _training
import llm_foundations.checks.core as core
from llm_foundations.attention import padding_mask
from llm_foundations.dates import (
    BOS,
    EOS,
    PAD,
    VOCAB,
    date_batches,
    decode_ids,
    encode_batch,
    random_dates,
)
from llm_foundations.checks.core import randomize_norms
from llm_foundations.training import train

__all__ = [
    "GPT_LAYOUT",
    "GPT_RUN",
    "GRADED_RUN",
    "CallRecorder",
    "copy_gpt_weights",
    "course_gpt",
    "expect_tokens_equal",
    "forbid_gpt_reference",
    "gpt_mistakes",
    "gpt_training_run",
    "lm_loss_mistakes",
    "reference_lm_loss",
    "call",
    "copy_weights",
    "course_transformer",
    "date_split",
    "dates_exact_match",
    "eos_scenario",
    "expect_every_parameter_learns",
    "expect_greedy_equal",
    "forbid_reference",
    "graded_training_run",
    "greedy_mask_mistakes",
    "greedy_reference",
    "one_batch_losses",
    "reference_seq2seq_loss",
    "seq2seq_loss_mistakes",
    "transformer_mistakes",
    "transformer_param_count",
]


# --------------------------------------------------------------------------------------------
# the model



def _add_mistake(wrong: dict[str, Tensor], explanation: str, fn: Callable[[], Tensor]) -> None:
    """Record what a mistake returns; a mistake that cannot run on these shapes is no hint."""
    try:
        wrong[explanation] = fn()
    except Exception:  # noqa: BLE001, S110
        pass

def course_transformer(src_vocab_size: int, tgt_vocab_size: int, d_model: int, n_heads: int, d_ff: int,
                       n_layers: int, norm_first: bool = True, share_embeddings: bool = False, dropout: float = 0.0,
                       max_len: int = 64, seed: int = 0) -> nn.Module:
    """The course's reference :class:`~llm_foundations.model.Transformer` in eval mode, seeded, with
    random LayerNorm gains and biases (the defaults, ones and zeros, would hide a misplaced norm)."""
    torch.manual_seed(seed)
    model = _reference.Transformer(src_vocab_size, tgt_vocab_size, d_model, n_heads, d_ff, n_layers, dropout=dropout,
                                   max_len=max_len, norm_first=norm_first, share_embeddings=share_embeddings)
    randomize_norms(model, d_model, torch.Generator().manual_seed(seed + 1))
    return model.eval()


def transformer_param_count(src_vocab_size: int, tgt_vocab_size: int, d_model: int, d_ff: int, n_layers: int,
                            norm_first: bool = True, share_embeddings: bool = False) -> int:
    """Trainable parameters of ``Transformer(...)``, counted from the parts.

    Encoder layer: one attention ``4(d^2 + d)``, a feed-forward network ``2 d d_ff + d_ff + d``,
    two LayerNorms ``2 * 2d``; a decoder layer has two attentions and three LayerNorms; pre-LN adds
    a final LayerNorm after each stack. Embeddings: one ``(V, d)`` matrix when shared, otherwise
    the source embedding, the target embedding and the generator (``V_t x d``, no bias).
    """
    attention, ffn, norm = 4 * (d_model * d_model + d_model), 2 * d_model * d_ff + d_ff + d_model, 2 * d_model
    layers = n_layers * ((attention + ffn + 2 * norm) + (2 * attention + ffn + 3 * norm))
    final = 2 * norm if norm_first else 0
    tables = src_vocab_size * d_model if share_embeddings else (src_vocab_size + 2 * tgt_vocab_size) * d_model
    return layers + final + tables


def copy_weights(source: nn.Module, target: nn.Module, what: str = "your Transformer") -> None:
    """Load ``source``'s ``encoder``, ``decoder`` and ``generator`` weights into ``target``'s.

    Both follow the contract (``.encoder`` an :class:`~llm_foundations.encoder.Encoder`,
    ``.decoder`` a :class:`~llm_foundations.decoder.Decoder`, ``.generator`` an
    ``nn.Linear(d_model, V_t, bias=False)``), so their parts have the same state-dict keys
    however the whole model is organised.
    """
    for name in ("encoder", "decoder", "generator"):
        part = getattr(target, name, None)
        if not isinstance(part, nn.Module):
            raise AssertionError(  # noqa: TRY004 - a failed check, for the grader
                f"{what} has no submodule `.{name}`, got {part!r:.100}. The model keeps its parts as "
                "`self.encoder` (Encoder), `self.decoder` (Decoder) and `self.generator` (nn.Linear).")
        try:
            part.load_state_dict(getattr(source, name).state_dict())
        except RuntimeError as error:
            hint = ""
            if name == "generator" and "bias" in str(error):
                hint = (" Hint: the generator has no bias, nn.Linear(d_model, tgt_vocab_size, bias=False): with tied "
                        "weights it is exactly the transposed embedding matrix.")
            elif "size mismatch" in str(error):
                hint = " Hint: check which vocabulary size (source or target) and which widths each part gets."
            raise AssertionError(f"copying the course model's weights into {what}.{name} failed: "
                                 f"{str(error).splitlines()[0]} {str(error).splitlines()[-1].strip()}{hint}") from None


def transformer_mistakes(model: nn.Module, src_ids: Tensor, tgt_ids: Tensor, src_mask: Tensor | None,
                         tgt_mask: Tensor | None = None, output: str = "logits") -> dict[str, Tensor]:
    """What common assembly mistakes return with ``model``'s weights (a course Transformer): ``{explanation: logits}``.

    ``output="hidden"``: what they make ``decode`` return instead (the decoder's outputs, before the generator).
    """
    enc, dec = model.encoder, model.decoder
    gen = model.generator if output == "logits" else nn.Identity()
    wrong: dict[str, Tensor] = {}

    def add(explanation: str, fn: Callable[[], Tensor]) -> None:
        _add_mistake(wrong, explanation, fn)

    with torch.no_grad():
        memory = enc(src_ids, src_mask)
        right = gen(dec(tgt_ids, memory, tgt_mask, src_mask))
        if src_mask is not None:
            add("the source mask does not reach the decoder's cross-attention: pass src_mask on as decode's "
                "memory_mask, or the decoder reads the source padding", lambda: gen(dec(tgt_ids, memory, tgt_mask, None)))
            add("the source mask does not reach the encoder: encode(src_ids, src_mask)",
                lambda: gen(dec(tgt_ids, enc(src_ids, None), tgt_mask, src_mask)))
            add("no mask reaches either stack: forward must give src_mask to the encoder and to the decoder's "
                "cross-attention", lambda: gen(dec(tgt_ids, enc(src_ids, None), tgt_mask, None)))
        if tgt_mask is None:
            add("the decoder's self-attention is not causal: leave the causal mask to the Decoder (it always applies "
                "it) instead of building a mask of your own", lambda: gen(dec(tgt_ids, memory, None, src_mask, causal=False)))
        if output == "logits":
            add("the logits went through a softmax: forward returns raw scores (logits); the loss applies the softmax",
                lambda: right.softmax(-1))
            add("the logits went through a log-softmax: forward returns raw scores (logits)",
                lambda: right.log_softmax(-1))
    return wrong


# --------------------------------------------------------------------------------------------
# greedy decoding


@torch.no_grad()
def greedy_reference(model: nn.Module, src_ids: Tensor, bos_id: int, eos_id: int, max_len: int,
                     src_mask: Tensor | None = None, logits_fn: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """Greedy decoding WITHOUT a cache, through ``model(src_ids, prefix, src_mask)`` at every step.

    Eval mode (the mode is restored after); each row starts with ``bos_id``; the argmax of the
    last position's logits is appended; a row that produced ``eos_id`` gets ``eos_id`` from then
    on; the loop stops when every row has finished or the rows have ``max_len`` tokens.
    ``logits_fn(prefix)`` replaces the model call (to compute what a mistake decodes).
    """
    was_training = model.training
    model.eval()
    try:
        batch = src_ids.size(0)
        ids = torch.full((batch, 1), bos_id, dtype=torch.long, device=src_ids.device)  # (B, 1)
        done = torch.zeros(batch, dtype=torch.bool, device=src_ids.device)  # (B,)
        for _ in range(max_len - 1):
            if bool(done.all()):
                break
            logits = model(src_ids, ids, src_mask) if logits_fn is None else logits_fn(ids)  # (B, t, V)
            scores = logits[:, -1]  # (B, V): the prediction after the last token
            token = torch.where(done, torch.full_like(done, eos_id, dtype=torch.long), scores.argmax(-1))
            done = done | (token == eos_id)
            ids = torch.cat([ids, token[:, None]], dim=1)
        return ids
    finally:
        model.train(was_training)


def greedy_mask_mistakes(model: nn.Module, src_ids: Tensor, bos_id: int, eos_id: int, max_len: int,
                         src_mask: Tensor) -> dict[str, Tensor]:
    """What greedy decoding returns when ``src_mask`` misses the encoder, the decoder, or both:
    ``{explanation: ids}`` (``model`` is a course Transformer)."""
    def run(encoder_mask, decoder_mask):
        return greedy_reference(model, src_ids, bos_id, eos_id, max_len, logits_fn=lambda ids: model.generator(
            model.decode(ids, model.encode(src_ids, encoder_mask), None, decoder_mask)))

    return {
        "src_mask is not given to the model at all: encode(src_ids, src_mask) and the decoder's memory_mask both "
        "need it": run(None, None),
        "src_mask does not reach the decoder: decode(ids, memory, None, src_mask), so that the cross-attention "
        "ignores the source padding": run(src_mask, None),
        "src_mask does not reach the encoder: encode(src_ids, src_mask)": run(None, src_mask),
    }


def _eos_case(seed: int, vocab_size: int, batch: int, d_model: int, n_layers: int) -> tuple[nn.Module, Tensor, Tensor]:
    model = course_transformer(vocab_size, vocab_size, d_model, 4, 2 * d_model, n_layers, seed=seed).double()
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(3, vocab_size, (batch, 6), generator=gen)
    src[batch // 4:, 5 - seed % 3:] = PAD  # most rows padded, by 1 to 3 tokens
    return model, src, padding_mask(src, PAD)


@functools.cache
def _eos_seed(kind: str, vocab_size: int, max_len: int, batch: int, d_model: int, n_layers: int) -> int:
    for seed in range(200):
        model, src, mask = _eos_case(seed, vocab_size, batch, d_model, n_layers)
        out = greedy_reference(model, src, BOS, EOS, max_len, mask)
        finished = (out == EOS).any(dim=1)
        first = {int((row == EOS).nonzero()[0]) for row in out if (row == EOS).any()}
        if kind == "all_early" and bool(finished.all()) and out.size(1) < max_len and len(first) >= 2:
            return seed
        if kind == "mixed" and 0 < int(finished.sum()) < batch and out.size(1) == max_len and len(first) >= 2:
            return seed
    raise RuntimeError(f"no random model shows the greedy-decoding scenario {kind!r}")


def eos_scenario(kind: str, vocab_size: int = 7, max_len: int = 12, batch: int = 8,
                 d_model: int = 16, n_layers: int = 2) -> tuple[nn.Module, Tensor, Tensor]:
    """A random course Transformer (float64, eval mode) and a padded source batch on which greedy
    decoding (``BOS = 1``, ``EOS = 2``, ``PAD = 0``) shows a given way of stopping.

    ``kind``: ``"all_early"`` every row produces EOS, at two different steps at least, before
    ``max_len`` (the output is narrower than ``max_len``); ``"mixed"`` some rows finish (at two
    different steps at least) and some never do. Seeds are tried in order until one shows it, so
    the scenario holds whatever the reference's initialisation.

    Returns:
        ``(model, src_ids (B, L_s), src_mask (B, 1, 1, L_s))``.
    """
    seed = _eos_seed(kind, vocab_size, max_len, batch, d_model, n_layers)
    return _eos_case(seed, vocab_size, batch, d_model, n_layers)


def expect_greedy_equal(got: object, expected: Tensor, what: str, bos_id: int, eos_id: int, max_len: int,
                        mistakes: dict[str, Tensor] | None = None, hint: str = "") -> None:
    """Fail unless ``got`` equals the greedy decoding ``expected``, explaining the usual differences.

    ``mistakes``: ``{explanation: what that mistake returns}`` (e.g. decoding without the source
    mask); ``hint``: said when no known difference explains the result.
    """
    got = core.expect_tensor(got, what)
    if got.dtype != torch.long:
        raise AssertionError(f"{what}: the ids must be a torch.long tensor, got dtype {got.dtype}")
    got = got.detach().cpu()
    expected = expected.detach().cpu()
    if got.shape == expected.shape and torch.equal(got, expected):
        return
    fallback, hint = hint, ""
    matched = [explanation for explanation, ids in (mistakes or {}).items()
               if ids.shape == got.shape and torch.equal(ids.cpu(), got)]
    if matched:
        hint = f"this is what happens when {matched[0]}."
    elif got.dim() != 2 or got.size(0) != expected.size(0):
        hint = "return one row per source, (B, n): the tokens of each row along dim 1."
    elif got.size(1) > max_len:
        hint = (f"rows may have at most max_len={max_len} tokens, the BOS included: stop when ids.size(1) == max_len "
                "(an off-by-one in the loop).")
    elif not bool((got[:, 0] == bos_id).all()):
        hint = f"every row starts with bos_id={bos_id}: begin with a (B, 1) column of it and append to it."
    elif got.size(1) > expected.size(1) and torch.equal(got[:, :expected.size(1)], expected):
        hint = ("the decoding goes on after every row has produced eos_id: stop early once all rows have finished, "
                "so the result is narrower than max_len.")
    elif got.size(1) == expected.size(1):
        after_eos = torch.zeros_like(got, dtype=torch.bool)
        seen = torch.zeros(got.size(0), dtype=torch.bool)
        for t in range(1, got.size(1)):
            after_eos[:, t] = seen
            seen = seen | (got[:, t] == eos_id)
        if bool((after_eos & (got != eos_id)).any()):
            hint = (f"a row that has produced eos_id={eos_id} must hold eos_id from then on: keep a `finished` flag "
                    "per row and replace the next token of finished rows by eos_id.")
        elif got.size(1) > 2 and bool((got[:, 1:] == got[:, 1:2]).all()) and not bool((expected[:, 1:] == expected[:, 1:2]).all()):
            hint = ("every step appends the same token: take the prediction at the LAST position, "
                    "logits[:, -1], the one after the newest token.")
    message = f"{what} returned\n{got}\nbut greedy decoding gives\n{expected}"
    hint = hint or fallback or ("at each step append the argmax over the vocabulary (dim=-1) of the logits at the "
                                "last position, in eval mode, with the source mask given to the model.")
    raise AssertionError(f"{message}\nHint: {hint}")


# --------------------------------------------------------------------------------------------
# the loss


def reference_seq2seq_loss(model: nn.Module, batch: tuple[Tensor, Tensor], pad_id: int = PAD) -> Tensor:
    """Teacher forcing: the model reads ``tgt[:, :-1]`` and is scored on predicting ``tgt[:, 1:]``;
    the mean negative log-likelihood over the target tokens that are not ``pad_id``."""
    src_ids, tgt_ids = batch
    logits = model(src_ids, tgt_ids[:, :-1], padding_mask(src_ids, pad_id)).float()  # (B, L_t - 1, V)
    answers = tgt_ids[:, 1:]  # (B, L_t - 1): position t predicts token t + 1
    nll = -logits.log_softmax(-1).gather(-1, answers[..., None]).squeeze(-1)  # (B, L_t - 1)
    counted = answers != pad_id
    return nll[counted].sum() / counted.sum()


def seq2seq_loss_mistakes(model: nn.Module, batch: tuple[Tensor, Tensor], pad_id: int = PAD) -> dict[str, Tensor]:
    """What common mistakes in the teacher-forcing loss return: ``{explanation: scalar}``."""
    src_ids, tgt_ids = batch
    keep = padding_mask(src_ids, pad_id)
    wrong: dict[str, Tensor] = {}

    def ce(logits: Tensor, targets: Tensor, reduction: str = "mean", ignore: int = pad_id) -> Tensor:
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=ignore, reduction=reduction)

    def add(explanation: str, fn: Callable[[], Tensor]) -> None:
        try:
            wrong[explanation] = fn().detach()
        except Exception:  # noqa: BLE001, S110 - a mistake that cannot run is no hint
            pass

    with torch.no_grad():
        add("the targets are not shifted: the model reads tgt[:, :-1] and must predict the NEXT tokens, tgt[:, 1:] "
            "(scoring it on tgt itself asks it to copy its input)", lambda: ce(model(src_ids, tgt_ids, keep), tgt_ids))
        add("input and targets are shifted the wrong way round: the model reads tgt[:, :-1] (it starts with BOS) and "
            "predicts tgt[:, 1:]", lambda: ce(model(src_ids, tgt_ids[:, 1:], keep), tgt_ids[:, :-1]))
        add("the PAD positions of the targets are counted: pass ignore_index=pad_id to the cross-entropy",
            lambda: ce(model(src_ids, tgt_ids[:, :-1], keep), tgt_ids[:, 1:], ignore=-100))
        add("the source padding mask is missing: call the model with padding_mask(src_ids, pad_id)",
            lambda: ce(model(src_ids, tgt_ids[:, :-1]), tgt_ids[:, 1:]))
        if pad_id != PAD:
            add(f"the pad_id argument is not used (PAD = {PAD} is): here the padding id is {pad_id}, for the source "
                "mask and for ignore_index", lambda: ce(model(src_ids, tgt_ids[:, :-1], padding_mask(src_ids, PAD)),
                                                       tgt_ids[:, 1:], ignore=PAD))
        add("the losses are summed, not averaged: the loss is the MEAN over the target tokens that are not PAD",
            lambda: ce(model(src_ids, tgt_ids[:, :-1], keep), tgt_ids[:, 1:], reduction="sum"))

        def per_sequence():
            logits = model(src_ids, tgt_ids[:, :-1], keep).float()
            answers = tgt_ids[:, 1:]
            nll = F.cross_entropy(logits.transpose(1, 2), answers, ignore_index=pad_id, reduction="none")
            counted = (answers != pad_id).float()
            return ((nll * counted).sum(1) / counted.sum(1).clamp_min(1)).mean()

        add("each sequence's loss is averaged first and then the sequences: average over all the non-PAD target "
            "tokens of the batch at once, so that every token counts the same", per_sequence)
    return wrong


# --------------------------------------------------------------------------------------------
# dates and training


def date_split(n_train: int, n_held_out: int, train_seed: int, held_out_seed: int
               ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Training pairs and held-out pairs whose source never occurs among the training sources."""
    training = random_dates(n_train, seed=train_seed)
    seen = {source for source, _ in training}
    candidates = random_dates(2 * n_held_out + 100, seed=held_out_seed)
    held_out = [pair for pair in candidates if pair[0] not in seen][:n_held_out]
    return training, held_out


@torch.no_grad()
def dates_exact_match(model: nn.Module, pairs: list[tuple[str, str]], batch_size: int = 250,
                      device: torch.device | str | None = None,
                      decode: Callable[..., Tensor] | None = None) -> float:
    """Fraction of ``pairs`` whose greedy decoding (``decode``, default :func:`greedy_reference`) is the ISO date.

    Outputs have at most 12 tokens: BOS, the 10 characters of ``YYYY-MM-DD`` and EOS.
    """
    decode = decode or greedy_reference
    device = device or next(model.parameters()).device
    correct = 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        src = encode_batch([s for s, _ in chunk]).to(device)
        out = decode(model, src, BOS, EOS, 12, padding_mask(src, PAD))
        correct += sum(decode_ids(row) == target for row, (_, target) in zip(out.cpu(), chunk))
    return correct / len(pairs)


#: The graded training run: the model, the data and the budget, and the exact-match accuracy on
#: held-out dates it must reach. The course's Transformer reaches 0.70 with these settings (0.67
#: to 0.75 with other seeds, that is other initialisations and batch orders), in about 18 CPU
#: seconds; a model that cannot learn the task stays near 0.
GRADED_RUN = {"d_model": 64, "n_heads": 4, "d_ff": 256, "n_layers": 1, "steps": 600, "batch_size": 16, "lr": 3e-3,
              "warmup": 60, "seed": 0, "train_seed": 10, "held_out_seed": 11, "held_out": 500, "threshold": 0.4}


def graded_training_run(transformer_class: type, device: torch.device | str = "cpu",
                        loss_fn: Callable | None = None, settings: dict | None = None) -> tuple[float, list[float], float]:
    """Train a fresh ``transformer_class(V, V, ...)`` on dates as :data:`GRADED_RUN` says.

    The model is built right after ``torch.manual_seed(seed)`` (and the same for the data order),
    trained with :func:`llm_foundations.training.train` and ``loss_fn`` (default
    :func:`reference_seq2seq_loss`), then decoded greedily (:func:`greedy_reference`) on held-out
    dates whose source strings never occur in training.

    Returns:
        ``(exact-match accuracy, losses per step, seconds)``.
    """
    s = {**GRADED_RUN, **(settings or {})}
    vocab = len(VOCAB)
    training, held_out = date_split(s["steps"] * s["batch_size"], s["held_out"], s["train_seed"], s["held_out_seed"])
    torch.manual_seed(s["seed"])
    model = transformer_class(vocab, vocab, d_model=s["d_model"], n_heads=s["n_heads"], d_ff=s["d_ff"],
                              n_layers=s["n_layers"], dropout=0.0, max_len=64, share_embeddings=True).to(device)
    started = time.perf_counter()
    losses = train(model, loss_fn or reference_seq2seq_loss, date_batches(training, s["batch_size"], seed=s["seed"]),
                   s["steps"], lr=s["lr"], warmup=s["warmup"], progress=False)
    accuracy = dates_exact_match(model, held_out)
    return accuracy, losses, time.perf_counter() - started


def expect_every_parameter_learns(model: nn.Module, loss: Tensor, what: str) -> None:
    """Fail unless ``loss.backward()`` gives every weight matrix of ``model`` a non-zero gradient.

    Matrices only: a key projection's bias adds the same ``q . b_k`` to every score of a row, which
    the softmax cancels, so its gradient is zero in exact arithmetic (a correct answer may get exactly 0).
    """
    model.zero_grad(set_to_none=True)
    loss.backward()
    names = [name for name, p in model.named_parameters()
             if p.dim() > 1 and (p.grad is None or not bool(p.grad.abs().sum() > 0))]
    if names:
        raise AssertionError(
            f"{what}: {len(names)} parameter(s) get no gradient from the loss, e.g. {names[:4]}. Every part of the "
            "model must take part in computing the logits: is a submodule built but never called, or is a mask "
            "hiding everything?")
    model.zero_grad(set_to_none=True)


def one_batch_losses(model: nn.Module, batch: tuple[Tensor, Tensor], steps: int = 40, lr: float = 3e-3) -> list[float]:
    """Train ``model`` on one batch over and over (the course's loss) and return the losses: a model
    that can learn anything drives them down quickly."""
    return train(model, reference_seq2seq_loss, iter(lambda: batch, None), steps, lr=lr, warmup=5, progress=False)


# --------------------------------------------------------------------------------------------
# the student's GPT


def course_gpt(vocab_size: int, d_model: int, n_heads: int, d_ff: int, n_layers: int, max_len: int,
               seed: int = 0) -> nn.Module:
    """The course's :class:`~llm_foundations.model.GPT` as the exercise's ``GPT`` is specified: biases,
    GPT-2's tanh GELU, LayerNorm eps 1e-5, chapters 4 and 6's code (``fused=False``); seeded, in eval
    mode, in float64, with weights of order one (GPT-2's small ones would hide a missing scale) and random
    LayerNorm gains and biases and linear biases (zeros would hide a misplaced norm or a missing bias)."""
    torch.manual_seed(seed)
    model = _reference.GPT(vocab_size, d_model, n_heads, d_ff, n_layers, max_len, activation="gelu_tanh", fused=False)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # weights of order one, so that every mistake shows in the logits
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) / math.sqrt(module.in_features))
                if module.bias is not None:
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
        model.embedding.weight.copy_(torch.randn(model.embedding.weight.shape, generator=generator))
        model.positions.weight.copy_(torch.randn(model.positions.weight.shape, generator=generator))
    randomize_norms(model, d_model, generator)
    return model.double().eval()


#: The parameter layout the exercise's ``GPT`` must have (its ``state_dict`` keys, ``{i}`` a block).
GPT_LAYOUT = (
    "embedding.weight (V, d_model), positions.weight (max_len, d_model); per block i: blocks.i.norm1.weight/bias, "
    "blocks.i.attn.w_q/w_k/w_v/w_o.weight/bias (or one blocks.i.attn.w_qkv of 3 * d_model outputs: q, k, v), "
    "blocks.i.norm2.weight/bias, blocks.i.linear1.weight/bias (d_ff, d_model), blocks.i.linear2.weight/bias "
    "(d_model, d_ff); norm.weight/bias; head.weight (V, d_model), the same Parameter as embedding.weight")


def gpt_state_dict(course: nn.Module, fused_qkv: bool = False) -> dict[str, Tensor]:
    """The course GPT's weights under the exercise's names (:data:`GPT_LAYOUT`)."""
    state = {"embedding.weight": course.embedding.weight, "positions.weight": course.positions.weight,
             "norm.weight": course.norm.weight, "norm.bias": course.norm.bias, "head.weight": course.head.weight}
    for i, block in enumerate(course.layers):
        attn = block.self_attn
        parts = {"norm1": block.sublayers[0].norm, "norm2": block.sublayers[1].norm, "linear1": block.ffn.linear1,
                 "linear2": block.ffn.linear2, "attn.w_o": attn.w_o}
        if fused_qkv:
            state[f"blocks.{i}.attn.w_qkv.weight"] = torch.cat([attn.w_q.weight, attn.w_k.weight, attn.w_v.weight])
            state[f"blocks.{i}.attn.w_qkv.bias"] = torch.cat([attn.w_q.bias, attn.w_k.bias, attn.w_v.bias])
        else:
            parts.update({"attn.w_q": attn.w_q, "attn.w_k": attn.w_k, "attn.w_v": attn.w_v})
        for name, module in parts.items():
            state[f"blocks.{i}.{name}.weight"] = module.weight
            state[f"blocks.{i}.{name}.bias"] = module.bias
    return {key: value.detach() for key, value in state.items()}


def copy_gpt_weights(course: nn.Module, model: nn.Module, what: str = "your GPT") -> None:
    """Load the course GPT's weights into the exercise's ``GPT`` (:data:`GPT_LAYOUT`); a failed check
    names the parameters that do not fit."""
    keys = set(model.state_dict())
    fused = any(key.endswith("attn.w_qkv.weight") for key in keys)
    state = gpt_state_dict(course, fused_qkv=fused)
    missing, unexpected = sorted(set(state) - keys), sorted(keys - set(state))
    if missing or unexpected:
        raise AssertionError(
            f"copying the course GPT's weights into {what} failed: it has no parameter {missing[:4]}" * bool(missing)
            + (" and " if missing and unexpected else "")
            + f"it has parameters the task does not name, {unexpected[:4]}" * bool(unexpected)
            + f". The task asks for this layout: {GPT_LAYOUT}.")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if "size mismatch" in line]
        raise AssertionError(f"copying the course GPT's weights into {what} failed: {lines[:2] or str(error)[:300]}. "
                             f"The task asks for this layout: {GPT_LAYOUT}.") from None


def gpt_mistakes(course: nn.Module, ids: Tensor) -> dict[str, Tensor]:
    """What common mistakes in a GPT make its logits, with ``course``'s weights: ``{explanation: logits}``."""
    wrong: dict[str, Tensor] = {}
    blocks = list(course.layers)

    def run(attend: Callable, norm_first: bool = True, positions: bool = True, final_norm: bool = True,
            activation: Callable = lambda h: F.gelu(h, approximate="tanh")) -> Tensor:
        x = course.embedding(ids)
        if positions:
            x = x + course.positions.weight[: ids.size(1)]
        for block in blocks:
            n1, n2 = block.sublayers[0].norm, block.sublayers[1].norm
            ffn = lambda h: block.ffn.linear2(activation(block.ffn.linear1(h)))  # noqa: E731
            if norm_first:
                x = x + attend(block.self_attn, n1(x))
                x = x + ffn(n2(x))
            else:
                x = n1(x + attend(block.self_attn, x))
                x = n2(x + ffn(x))
        return course.head(course.norm(x) if final_norm else x)

    def attention(causal: str = "tril", scale: bool = True, axis: int = -1) -> Callable:
        def attend(attn: nn.Module, h: Tensor) -> Tensor:
            heads = attn.n_heads
            q, k, v = (_reference.split_heads(w(h), heads) for w in (attn.w_q, attn.w_k, attn.w_v))
            scores = q @ k.transpose(-2, -1)
            if scale:
                scores = scores / math.sqrt(q.size(-1))
            length = h.size(1)
            keep = {"tril": torch.ones(length, length, dtype=torch.bool).tril(),
                    "strict": torch.ones(length, length, dtype=torch.bool).tril(-1),
                    "none": torch.ones(length, length, dtype=torch.bool),
                    "triu": torch.ones(length, length, dtype=torch.bool).triu()}[causal]
            scores = scores.masked_fill(~keep, float("-inf"))
            weights = torch.nan_to_num(scores.softmax(axis))
            return attn.w_o(_reference.merge_heads(weights @ v))
        return attend

    def add(explanation: str, fn: Callable[[], Tensor]) -> None:
        _add_mistake(wrong, explanation, fn)

    with torch.no_grad():
        add("the attention is not causal: mask the scores of later keys (j > i) with -inf before the softmax",
            lambda: run(attention("none")))
        add("the mask lets each position see the keys AFTER it (triu): keep the keys j <= i, torch.tril",
            lambda: run(attention("triu")))
        add("the mask hides the diagonal: a position may attend to itself, keep j <= i (tril, not tril(-1))",
            lambda: run(attention("strict")))
        add("the scores are not divided by sqrt(d_head) (the head width, d_model // n_heads)",
            lambda: run(attention(scale=False)))
        add("the softmax runs over the queries: normalise over the keys, the last dimension",
            lambda: run(attention(axis=-2)))
        add("the blocks are post-LN: the task's blocks are pre-LN, x + attn(norm1(x)), then x + ffn(norm2(x))",
            lambda: run(attention(), norm_first=False))
        add("the learned positions are not added to the token embeddings",
            lambda: run(attention(), positions=False))
        add("the final LayerNorm (self.norm) is not applied before the head", lambda: run(attention(), final_norm=False))
        add("the feed-forward activation is ReLU: the task asks for GPT-2's GELU, F.gelu(h, approximate='tanh')",
            lambda: run(attention(), activation=torch.relu))
        add("the feed-forward activation is the exact GELU: GPT-2's is F.gelu(h, approximate='tanh')",
            lambda: run(attention(), activation=F.gelu))
        right = run(attention())
        add("the logits went through a softmax: forward returns raw scores (logits)", lambda: right.softmax(-1))
    return wrong


def reference_lm_loss(model: nn.Module, ids: Tensor) -> Tensor:
    """The language-modelling loss: the model reads ``ids[:, :-1]`` and is scored on ``ids[:, 1:]``."""
    logits = model(ids[:, :-1]).float()  # (B, L - 1, V)
    return -logits.log_softmax(-1).gather(-1, ids[:, 1:, None]).mean()


def lm_loss_mistakes(model: nn.Module, ids: Tensor) -> dict[str, Tensor]:
    """What common mistakes in the language-modelling loss return: ``{explanation: scalar}``."""
    def ce(logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction=reduction)

    with torch.no_grad():
        return {
            "the targets are not shifted: position t must predict the NEXT token, ids[:, t + 1] (scoring the logits "
            "of ids[:, :-1] on ids[:, :-1] asks the model to copy its input)": ce(model(ids[:, :-1]), ids[:, :-1]),
            "the model reads all of ids and is scored on ids itself: read ids[:, :-1], predict ids[:, 1:]":
                ce(model(ids), ids),
            "the shift goes the wrong way: read ids[:, :-1] and predict ids[:, 1:]": ce(model(ids[:, 1:]), ids[:, :-1]),
            "the losses are summed, not averaged: the loss is the mean over all predicted tokens":
                ce(model(ids[:, :-1]), ids[:, 1:], reduction="sum"),
            "the loss is the cross-entropy of softmax probabilities: F.cross_entropy takes the raw logits":
                ce(model(ids[:, :-1]).softmax(-1), ids[:, 1:]),
        }


class CallRecorder(nn.Module):
    """A model wrapper that records the ids length and the cache of every forward call (for ``generate``'s tests)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.max_len = model.max_len
        self.lengths: list[int] = []
        self.cached: list[bool] = []

    def new_caches(self) -> list:
        return self.model.new_caches()

    def forward(self, ids: Tensor, caches: list | None = None) -> Tensor:
        self.lengths.append(ids.size(1))
        self.cached.append(caches is not None)
        return self.model(ids, caches=caches)


def expect_tokens_equal(got: object, expected: Tensor, what: str, hint: str = "") -> None:
    """Fail unless ``got`` is the long tensor ``expected``, saying where the tokens first differ."""
    got = core.expect_tensor(got, what)
    if got.dtype != torch.long:
        raise AssertionError(f"{what}: the ids must be a torch.long tensor, got dtype {got.dtype}")
    got, expected = got.detach().cpu(), expected.detach().cpu()
    if got.shape != expected.shape:
        raise AssertionError(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)} (the prompt "
                             "followed by max_new_tokens new tokens)" + (f". Hint: {hint}" if hint else ""))
    if not torch.equal(got, expected):
        if got.dim() == 1:  # one token per row
            rows = (got != expected).nonzero().flatten().tolist()
            raise AssertionError(f"{what}: got the tokens {got.tolist()}, expected {expected.tolist()} (they differ in "
                                 f"rows {rows[:8]})" + (f". Hint: {hint}" if hint else ""))
        row, col = (got != expected).nonzero()[0].tolist()[:2]
        raise AssertionError(f"{what}: row {row} differs first at position {col}: got {got[row].tolist()}, expected "
                             f"{expected[row].tolist()}" + (f". Hint: {hint}" if hint else ""))


def shakespeare_ids() -> tuple[Tensor, int]:
    """Tiny Shakespeare (:func:`llm_foundations.text.load_corpus`, no download) as character ids, and the vocabulary size."""
    from llm_foundations.text import load_corpus
    from llm_foundations.tokenizers import CharTokenizer
    text = load_corpus(download=False, verbose=False)
    tokenizer = CharTokenizer(text)
    return torch.tensor(tokenizer.encode(text)), tokenizer.vocab_size


#: The graded training run of the exercise's GPT: a fresh ``GPT(V, 64, 4, 256, 2, 64)`` (seed 0)
#: trained for 250 steps of 16 windows of 65 characters of tiny Shakespeare (the first 90%) with
#: :func:`reference_lm_loss`, then its loss on 8 batches of 32 windows of the last 10%.
GPT_RUN = {"d_model": 64, "n_heads": 4, "d_ff": 256, "n_layers": 2, "max_len": 64, "steps": 250, "batch_size": 16,
           "lr": 3e-3, "warmup": 25, "seed": 0, "threshold": 2.6}


def gpt_training_run(gpt_class: type, device: torch.device | str = "cpu",
                     settings: dict | None = None) -> tuple[float, list[float], float]:
    """Train a fresh ``gpt_class`` on tiny Shakespeare as :data:`GPT_RUN` says.

    Returns:
        ``(held-out loss, training losses per step, seconds)``.
    """
    from llm_foundations.text import lm_batches
    s = {**GPT_RUN, **(settings or {})}
    ids, vocab = shakespeare_ids()
    split = int(0.9 * ids.numel())
    torch.manual_seed(s["seed"])
    model = gpt_class(vocab, s["d_model"], s["n_heads"], s["d_ff"], s["n_layers"], s["max_len"]).to(device)
    batches = ((torch.cat([x, y[:, -1:]], dim=1),) for x, y in lm_batches(ids[:split], s["max_len"], s["batch_size"],
                                                                           seed=s["seed"]))
    started = time.perf_counter()
    losses = train(model, lambda m, batch: reference_lm_loss(m, batch[0]), batches, s["steps"], lr=s["lr"],
                   warmup=s["warmup"], progress=False)
    model.eval()
    with torch.no_grad():
        held_out = lm_batches(ids[split:], s["max_len"], 32, seed=1)
        loss = sum(float(reference_lm_loss(model, torch.cat([x, y[:, -1:]], 1).to(device)))
                   for x, y in (next(held_out) for _ in range(8))) / 8
    return loss, losses, time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# guards and errors


#: Python functions whose use does not earn a task's points: the course's reference answers.
REFERENCE_FUNCTIONS = {
    "Transformer": (_reference.Transformer.__init__, _reference.Transformer.forward, _reference.Transformer.encode,
                    _reference.Transformer.decode),
    "greedy_decode": (_reference.greedy_decode.__wrapped__, _reference.beam_decode.__wrapped__),
    "seq2seq_loss": (reference_seq2seq_loss,),
}
_GPT_PARTS = (_reference.GPT.forward, _reference.GPT.__init__, _reference.GPTBlock.forward, _reference.GPTBlock.__init__,
              _reference.GPTFeedForward.forward, _reference.MultiHeadAttention.forward,
              _reference.MultiHeadAttention.__init__, _attention.scaled_dot_product_attention,
              _attention.KVCache.update)
_SAMPLING = (_sampling.sample_next_token, _sampling.top_k_filter, _sampling.top_p_filter,
             _sampling.softmax_with_temperature, _sampling.gumbel_max_sample)
#: The GPT tasks: the student writes attention, block, model, loss, sampling and generation; none
#: of the course's versions may be called (``generate``'s tests run it on the course GPT, whose
#: forward is allowed there).
GPT_REFERENCE_FUNCTIONS = {
    "GPT": _GPT_PARTS + (_reference.GPT.generate.__wrapped__,),
    "lm_loss": (reference_lm_loss, _training.sequence_loss),
    "sample_next_token": _SAMPLING,
    "generate": (_reference.GPT.generate.__wrapped__,) + _SAMPLING,
}
_PYTORCH_FUNCTIONS = (nn.Transformer.forward, nn.TransformerEncoder.forward, nn.TransformerDecoder.forward,
                      nn.TransformerEncoderLayer.forward, nn.TransformerDecoderLayer.forward,
                      nn.MultiheadAttention.forward)
#: What a test says when the student's code ran PyTorch's own Transformer.
CALLS_PYTORCH = (
    "{what} calls PyTorch's own Transformer ({name}). Assemble the model from the course's Encoder and Decoder: "
    "PyTorch's modules are not what this exercise asks for."
)
CALLS_PYTORCH_ATTENTION = (
    "{what} calls PyTorch's own attention ({name}). Write the causal self-attention yourself, from matrix products "
    "and a softmax, as in chapter 4."
)


#: Error messages this chapter's mistakes produce, and what they probably mean (they take
#: precedence over the general hints of :func:`llm_foundations.checks.core.call`).
_ERROR_HINTS = {
    "does not broadcast to the attention scores": "a mask does not fit its attention. The source mask "
    "(B, 1, 1, L_s) belongs to the encoder and to the decoder's cross-attention (decode's memory_mask); the "
    "decoder's self-attention takes tgt_mask, (L_t, L_t) or None for causal.",
    "must be a boolean tensor": "masks are boolean, True = may attend: build them with padding_mask(ids, pad_id).",
    "Expected input batch_size": "flatten the logits to (B * L, V) and the targets to (B * L,) for F.cross_entropy, "
    "and make sure that both cover the same positions (L_t - 1 of them).",
    "Expected target size": "F.cross_entropy wants the logits as (N, V) and the targets as (N,): flatten them both.",
    "unexpected keyword argument": "keep the signatures of the task: Transformer.forward(src_ids, tgt_ids, "
    "src_mask=None, tgt_mask=None), decode(tgt_ids, memory, tgt_mask=None, memory_mask=None); GPT.forward(ids, "
    "caches=None), CausalSelfAttention.forward(x, cache=None), Block.forward(x, cache=None).",
    "argmax(): Expected reduction dim": "take the argmax over the vocabulary, the last dimension (dim=-1).",
    "index out of range in self": "an embedding was asked for an id it does not have. With a cache, the new tokens "
    "sit at positions T..T+L-1 (T tokens cached), and T + L may not exceed max_len: crop the context first.",
    "must match the size of tensor": "two tensors do not fit. In greedy_decode: the next token of each row is the "
    "argmax over the VOCABULARY of the last position's logits, logits[:, -1].argmax(dim=-1), shape (B,), appended "
    "as a column, next_id[:, None]. Elsewhere: print the shapes.",
}

#: :func:`llm_foundations.checks.core.call`, with this chapter's hints for known errors.
call = core.hinted_call(_ERROR_HINTS)


#: Fail if the code in the block calls the reference answer to ``task`` (a key of
#: :data:`REFERENCE_FUNCTIONS`), a checking helper of this module, or PyTorch's own Transformer
#: modules. The rest of the package stays allowed: the exercise builds on ``Encoder``, ``Decoder``
#: and ``padding_mask`` on purpose, and the tests of ``greedy_decode`` run it on the course's Transformer.
forbid_reference = core.reference_guard(
    REFERENCE_FUNCTIONS, helpers=(greedy_reference, transformer_mistakes, seq2seq_loss_mistakes,
                                  greedy_mask_mistakes, dates_exact_match, copy_weights),
    pytorch=_PYTORCH_FUNCTIONS, calls_pytorch=CALLS_PYTORCH)

#: The guard of the GPT tasks (a key of :data:`GPT_REFERENCE_FUNCTIONS`): the course's GPT, its
#: blocks and attention, chapter 7's sampling, this module's helpers, PyTorch's own attention
#: modules and its fused attention kernels.
forbid_gpt_reference = core.reference_guard(
    GPT_REFERENCE_FUNCTIONS, helpers=(gpt_mistakes, reference_lm_loss, lm_loss_mistakes, copy_gpt_weights,
                                      gpt_state_dict),
    pytorch=_PYTORCH_FUNCTIONS, calls_pytorch=CALLS_PYTORCH_ATTENTION, builtins=core.BUILTIN_ATTENTION)
