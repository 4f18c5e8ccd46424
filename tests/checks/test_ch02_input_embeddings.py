"""The chapter-2 checks (llm_foundations.checks.ch02_input_embeddings): comparisons with hints, the random
texts, what each named mistake returns (it differs from the reference and is the mistake it names), and
the guard against calling the reference tokenizers and embeddings."""

import functools
import math
import random

import pytest
import torch
import torch.nn.functional as F

import llm_foundations.checks.ch02_input_embeddings as ch02
from llm_foundations.embeddings import TokenEmbedding, cosine_similarity_matrix, nearest_neighbors, sgns_loss
from llm_foundations.tokenizers import CharTokenizer, bpe_decode, bpe_encode, train_bpe
from llm_foundations.checks.ch02_input_embeddings import (
    as_int_list,
    as_merges,
    bpe_decode_mistakes,
    bpe_encode_mistakes,
    call_hinted,
    cosine_mistakes,
    expect_equal,
    expect_error_naming,
    expect_finite,
    forbid_reference,
    forbid_torch_functions,
    nearest_neighbor_mistakes,
    random_repetitive_text,
    random_unicode_text,
    sgns_loss_mistakes,
    token_embedding_mistakes,
    train_bpe_mistakes,
)


def test_known_mistakes_differ_from_the_right_answer_on_the_exercise_examples():
    for text, n in [("aaabdaaabac", 3), ("abab xyxy", 1), ("abcd", 3), ("aaaa", 5)]:
        right = train_bpe(text, n)
        assert any(m != right for m in train_bpe_mistakes(text, n).values()), text


def test_train_bpe_mistakes_are_the_mistakes_they_name():
    m = train_bpe_mistakes("aaabdaaabac", 3)
    assert train_bpe("aaabdaaabac", 3) == [(97, 97), (256, 97), (257, 98)]
    assert m["new ids start at 257 instead of 256"] == [(97, 97), (257, 97), (258, 98)]
    assert m["new ids start at 255 instead of 256"] == [(97, 97), (255, 97), (256, 98)]
    overlap = next(v for k, v in m.items() if k.startswith("overlapping occurrences"))
    assert overlap != train_bpe("aaabdaaabac", 3) and overlap[0] == (97, 97)
    # "abab": (a, b) occurs twice, (b, a) once; after one merge no pair occurs twice
    assert train_bpe("abab", 3) == [(97, 98)]
    assert next(v for k, v in train_bpe_mistakes("abab", 3).items() if "occurs once" in k) == [(97, 98), (256, 256)]
    # ties: xy, ya and ab occur twice each; xy first, ab last and smallest, ya largest
    ties = train_bpe_mistakes("xyabxyab", 1)
    assert train_bpe("xyabxyab", 1) == [(120, 121)]
    assert next(v for k, v in ties.items() if k.startswith("ties are broken towards the smallest")) == [(97, 98)]
    assert next(v for k, v in ties.items() if k.startswith("ties are broken towards the largest")) == [(121, 97)]
    assert next(v for k, v in ties.items() if k.startswith("ties are broken towards the pair that occurs last")) \
        == [(97, 98)]


def test_bpe_encode_and_decode_mistakes_differ_and_are_what_they_name():
    text = "aaab é é"
    merges = train_bpe(text * 3, 6)
    right = bpe_encode(text, merges)
    m = bpe_encode_mistakes(text, merges)
    assert m["no merge is applied"] == list(text.encode("utf-8"))
    for why, ids in m.items():
        assert ids != right, why
    # "é" is two bytes: a token ending inside it and the token after
    merges = [(195, 169)]
    ids = [104, 195, 169, 255]  # "h", the two bytes of "é", an invalid byte
    right = bpe_decode(ids, merges)
    assert right == "hé\ufffd"
    decoded = bpe_decode_mistakes(ids, merges)
    assert decoded["the bytes are decoded as latin-1 instead of UTF-8"] == bytes(ids).decode("latin-1")
    assert next(v for k, v in decoded.items() if "errors='ignore'" in k) == "hé"
    assert next(v for k, v in decoded.items() if "decoded on its own" in k) == "h\ufffd\ufffd\ufffd"
    for why, text in decoded.items():
        assert text != right, why


def test_embedding_mistakes_are_the_mistakes_they_name():
    emb = TokenEmbedding(10, 4)
    ids = torch.tensor([[1, 2, 9], [0, 0, 3]])
    right = emb(ids)
    m = token_embedding_mistakes(emb.weight, ids)
    torch.testing.assert_close(m["the rows are not multiplied by sqrt(d_model)"], right / 2)
    torch.testing.assert_close(m["the rows are divided by sqrt(d_model) instead of multiplied"], right / 4)
    torch.testing.assert_close(m["the rows are multiplied by d_model instead of sqrt(d_model)"], right * 2)

    x = torch.randn(5, 3) * torch.tensor([[1.0], [2.0], [3.0], [0.5], [4.0]])
    right = cosine_similarity_matrix(x)
    torch.testing.assert_close(right, F.cosine_similarity(x[:, None], x[None], dim=-1))
    cos = cosine_mistakes(x)
    torch.testing.assert_close(next(v for k, v in cos.items() if k.startswith("the vectors are not normalised")), x @ x.T)
    for why, wrong in cos.items():
        assert not torch.allclose(wrong, right, atol=1e-4), why


def test_nearest_neighbor_mistakes_are_the_mistakes_they_name():
    emb = torch.randn(8, 3) * torch.arange(1, 9.0)[:, None]
    right = nearest_neighbors(emb, 2, 3).tolist()
    m = {k.split(" (")[0]: v for k, v in nearest_neighbor_mistakes(emb, 2, 3).items()}
    assert m["the row itself is not excluded"] == [2] + right[:2]
    assert m["the neighbours are sorted from least to most similar"] == right[::-1]
    assert m["one neighbour too few is returned"] == right[:2]
    assert m["the most similar row is dropped as if it were the row itself, which was already excluded"][:2] == right[1:]
    sims = cosine_similarity_matrix(emb)[2]
    least = [i for i in sims.argsort().tolist() if i != 2][:3]
    assert m["the least similar rows are returned"] == least
    dots = emb @ emb[2]
    dots[2] = -math.inf
    assert m["the dot product is used instead of the cosine"] == dots.argsort(descending=True)[:3].tolist()
    for why, wrong in m.items():
        assert wrong != right, why


def test_sgns_loss_mistakes_differ_and_are_what_they_name():
    b, k, d = 4, 3, 5
    center, context, negatives = torch.randn(b, d), torch.randn(b, d), torch.randn(b, k, d)
    right = sgns_loss(center, context, negatives)
    m = {why.split(" (")[0]: value for why, value in sgns_loss_mistakes(center, context, negatives).items()}
    assert not any("broadcast" in why for why in m)  # K != B: no wrong broadcast is possible
    for why, value in m.items():
        assert not torch.allclose(value, right), why
    torch.testing.assert_close(m["the loss is summed over the batch instead of averaged"], right * b)
    torch.testing.assert_close(m["the negative term is left out"],
                               F.binary_cross_entropy_with_logits((center * context).sum(-1), torch.ones(b)))
    torch.testing.assert_close(m["the loss is not negated"] * -1, right)
    negatives_b = torch.randn(b, b, d)
    wrong = sgns_loss_mistakes(center, context, negatives_b)
    broadcast = next(v for k, v in wrong.items() if "broadcast" in k)
    paired = negatives_b * center  # negative k of every row meets center k
    assert not torch.allclose(broadcast, sgns_loss(center, context, negatives_b))
    torch.testing.assert_close(broadcast, (-F.logsigmoid((center * context).sum(-1))
                                           - F.logsigmoid(-paired.sum(-1)).sum(-1)).mean())


def test_random_texts_are_reproducible_valid_unicode():
    texts = [random_unicode_text(random.Random(seed), 200) for seed in range(5)]
    assert texts == [random_unicode_text(random.Random(seed), 200) for seed in range(5)]
    assert len(set(texts)) == 5
    for text in texts:
        assert text.encode("utf-8").decode("utf-8") == text  # no lone surrogates
        assert any(ord(c) > 127 for c in text) and any(ord(c) < 128 for c in text)
    repetitive = random_repetitive_text(random.Random(3), 100)
    assert len(train_bpe(repetitive, 5)) > 0 and len(set(repetitive)) < 20


def test_as_int_list_and_as_merges():
    assert as_int_list(torch.tensor([1, 2]), "ids") == [1, 2]
    assert as_int_list((1, torch.tensor(3)), "ids") == [1, 3]
    for bad, match in [(torch.tensor([1.0]), "dtype torch.float32"), ([1, True], "item 1 is True"),
                       ([1, 2.0], "item 1 is 2.0"), ("12", "expected a list of ints, got str")]:
        with pytest.raises(AssertionError, match=match):
            as_int_list(bad, "ids")
    assert as_merges([[97, 98], (256, 99)], "merges") == [(97, 98), (256, 99)]
    with pytest.raises(AssertionError, match=r"merge 1 is \(1, 2, 3\), expected a pair"):
        as_merges([(1, 2), (1, 2, 3)], "merges")
    with pytest.raises(AssertionError, match="expected a list of"):
        as_merges({(1, 2)}, "merges")


def test_expect_equal_shows_where_values_differ_and_names_the_mistake():
    assert expect_equal([1, 2], [1, 2], "ids") == [1, 2]
    with pytest.raises(AssertionError, match=r"first differ at position 1; lengths 3 and 3\)\nHint: look again"):
        expect_equal([1, 5, 3], [1, 2, 3], "ids", hint="look again")
    with pytest.raises(AssertionError, match="this is what happens when the merges run backwards"):
        expect_equal([9], [1, 2], "ids", hints={"the merges run backwards": [9], "never": [1, 2]})


def test_expect_error_naming_and_expect_finite():
    def unknown():
        raise KeyError("unknown character 'z'")

    expect_error_naming(KeyError, unknown, "z", "encode('z')")
    with pytest.raises(AssertionError, match="should name 'q'"):
        expect_error_naming(KeyError, unknown, "q", "encode('q')")
    with pytest.raises(AssertionError, match="expected KeyError, got ValueError"):
        expect_error_naming(KeyError, lambda: int("x"), "x", "int")
    with pytest.raises(AssertionError, match="nothing was raised"):
        expect_error_naming(KeyError, lambda: 1, "x", "f")
    assert torch.equal(expect_finite(torch.ones(2), "loss"), torch.ones(2))
    with pytest.raises(AssertionError, match=r"2 non-finite entries \(NaN, inf\)\.\nHint: logsigmoid"):
        expect_finite(torch.tensor([1.0, math.nan, math.inf]), "loss", hint="logsigmoid")
    with pytest.raises(AssertionError, match="expected a torch.Tensor"):
        expect_finite(1.0, "loss")


def test_forbid_torch_functions_names_the_built_in():
    x = torch.randn(3, 4)
    with pytest.raises(AssertionError, match="built-in cosine_similarity, the very thing.*from norms and a product"):
        with forbid_torch_functions("cos", ("cosine_similarity",), "norms and a product"):
            F.cosine_similarity(x[:, None], x[None], dim=-1)
    with forbid_torch_functions("cos", ("cosine_similarity",), "norms and a product"):
        x / x.norm(dim=-1, keepdim=True)


def test_forbid_reference_catches_a_direct_call_a_wrapper_and_a_subclass():
    ids = torch.tensor([1, 2])

    def wrapper(text, n):
        return list(train_bpe(text, n))

    class Subclass(TokenEmbedding):
        pass

    for name, run in [("direct", lambda: cosine_similarity_matrix(torch.randn(3, 2))),
                      ("wrapper", lambda: wrapper("aaa", 1)), ("subclass", lambda: Subclass(4, 2)(ids)),
                      ("a tokenizer", lambda: CharTokenizer("ab").encode("ab"))]:
        with pytest.raises(AssertionError, match="calls the course's reference code"):
            with forbid_reference(name):
                run()
    with forbid_reference("honest code"):
        weight = torch.nn.Parameter(torch.randn(4, 2))
        weight[ids] * math.sqrt(2)
        list("abc".encode("utf-8"))


@pytest.mark.parametrize("table", ["BPE_DECODE_ERROR_HINTS", "BPE_ENCODE_ERROR_HINTS"])
def test_call_hinted_turns_known_errors_into_hints(expect_hint_table, table):
    hints = getattr(ch02, table)
    expect_hint_table(functools.partial(call_hinted, hints=hints), hints)
    with pytest.raises(AssertionError, match="errors='replace'"):
        call_hinted(lambda: bytes([255]).decode("utf-8"), what="bpe_decode", hints=ch02.BPE_DECODE_ERROR_HINTS)
    with pytest.raises(AssertionError, match="not written this part yet"):  # even when the table lacks it
        call_hinted(lambda: (_ for _ in ()).throw(NotImplementedError()), what="f", hints={})
