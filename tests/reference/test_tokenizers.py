"""llm_foundations.tokenizers: the character tokenizer and byte-level BPE."""
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_foundations.checks.ch02_input_embeddings import random_repetitive_text, random_unicode_text
from llm_foundations.tokenizers import (
    CharTokenizer,
    bpe_decode,
    bpe_encode,
    bpe_token_strings,
    bpe_vocabulary,
    merge_pair,
    pair_counts,
    train_bpe,
)

# ----------------------------------------------------------------------------- characters


def test_char_tokenizer_vocabulary_is_sorted_and_ids_are_positions():
    tok = CharTokenizer("hello world")
    assert tok.vocab == [" ", "d", "e", "h", "l", "o", "r", "w"]
    assert tok.vocab_size == 8
    assert tok.encode("hello") == [3, 2, 4, 4, 5]
    assert tok.decode([3, 2, 4, 4, 5]) == "hello"
    assert tok.decode(torch.tensor([7, 5, 6])) == "wor"


def test_char_tokenizer_does_not_depend_on_order_of_appearance():
    assert CharTokenizer("cba").encode("abc") == CharTokenizer("abcabc").encode("abc") == [0, 1, 2]


def test_char_tokenizer_unknown_character_raises_naming_it():
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError, match="'z'"):
        tok.encode("abz")
    with pytest.raises(ValueError, match="🙂"):
        tok.encode("a🙂")
    with pytest.raises(ValueError, match="outside"):
        tok.decode([3])
    with pytest.raises(TypeError):
        CharTokenizer(b"bytes")


def test_char_tokenizer_empty_text():
    tok = CharTokenizer("")
    assert tok.vocab_size == 0 and tok.encode("") == [] and tok.decode([]) == ""


@settings(max_examples=100, deadline=None)
@given(st.text(), st.data())
def test_char_tokenizer_round_trip_on_any_text(text, data):
    tok = CharTokenizer(text)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert all(tok.vocab[i] == ch for i, ch in zip(ids, text))
    assert tok.vocab == sorted(tok.vocab) and len(set(tok.vocab)) == tok.vocab_size
    if text:
        part = data.draw(st.text(alphabet=text))
        assert tok.decode(tok.encode(part)) == part


# ----------------------------------------------------------------------------- BPE


def test_pair_counts_count_overlapping_pairs_in_order_of_first_occurrence():
    counts = pair_counts([1, 1, 1, 2, 1, 1])
    assert counts == {(1, 1): 3, (1, 2): 1, (2, 1): 1}
    assert list(counts) == [(1, 1), (1, 2), (2, 1)]


@pytest.mark.parametrize("ids,expected", [
    ([1, 1, 1], [9, 1]),
    ([1, 1, 1, 1], [9, 9]),
    ([1, 2, 1, 1, 3], [1, 2, 9, 3]),
    ([1], [1]),
    ([], []),
])
def test_merge_pair_left_to_right_without_overlap(ids, expected):
    assert merge_pair(ids, (1, 1), 9) == expected


def test_train_bpe_textbook_example():
    # "aaabdaaabac": aa (4 times) -> 256; then (256, a) and (a, b) tie at 2, (256, a) occurs first -> 257;
    # then (257, b) -> 258; then no pair occurs twice, so training stops after 3 merges.
    merges = train_bpe("aaabdaaabac", 10)
    assert merges == [(97, 97), (256, 97), (257, 98)]
    assert bpe_encode("aaabdaaabac", merges) == [258, 100, 258, 97, 99]


def test_train_bpe_ties_go_to_the_pair_that_occurs_first():
    assert train_bpe("abab xyxy", 1) == [(97, 98)]
    assert train_bpe("xyxy abab", 1) == [(120, 121)]


def test_train_bpe_stops_when_no_pair_occurs_twice():
    assert train_bpe("abcd", 5) == []
    assert train_bpe("", 5) == []
    assert train_bpe("a", 5) == []
    assert train_bpe("aaaa", 5) == [(97, 97)]  # aaaa -> [256, 256]; (256, 256) occurs once
    assert train_bpe("aaa", 5) == [(97, 97)]  # (a, a) occurs twice, overlapping: aaa -> [256, 97]
    assert train_bpe("abab", 0) == []


def test_train_bpe_respects_num_merges_and_validates_it():
    text = "the cat and the hat and the bat " * 5
    assert len(train_bpe(text, 3)) == 3
    assert train_bpe(text, 3) == train_bpe(text, 10)[:3]
    with pytest.raises(ValueError, match="non-negative"):
        train_bpe(text, -1)
    with pytest.raises(ValueError, match="UTF-8"):
        train_bpe("lone \ud800 surrogate", 2)


def test_train_bpe_works_on_bytes_of_multibyte_characters():
    merges = train_bpe("🙂🙂🙂🙂", 10)
    # the four bytes F0 9F 99 82 repeat: the first merge is the first byte pair
    assert merges[0] == (0xF0, 0x9F)
    # then (256, 99), (257, 82) = the emoji, (258, 258) = two emoji; the last pair occurs once
    assert merges == [(0xF0, 0x9F), (256, 0x99), (257, 0x82), (258, 258)]
    assert bpe_encode("🙂🙂🙂🙂", merges) == [259, 259]
    assert bpe_vocabulary(merges)[-1] == "🙂🙂".encode()


def _naive_bpe(text, num_merges):
    """An independent re-implementation: tokens as bytes objects, merges found by scanning."""
    seq = [bytes([b]) for b in text.encode("utf-8")]
    id_of = {bytes([i]): i for i in range(256)}
    merges = []
    for step in range(num_merges):
        adjacent = [(seq[j], seq[j + 1]) for j in range(len(seq) - 1)]
        # (count, -first position) is largest for the most frequent pair that occurs first
        scored = {pair: (adjacent.count(pair), -adjacent.index(pair)) for pair in adjacent}
        if not scored:
            break
        best = max(scored, key=scored.get)
        if scored[best][0] < 2:
            break
        new = []
        j = 0
        while j < len(seq):
            if j + 1 < len(seq) and (seq[j], seq[j + 1]) == best:
                new.append(best[0] + best[1])
                j += 2
            else:
                new.append(seq[j])
                j += 1
        seq = new
        id_of[best[0] + best[1]] = 256 + step
        merges.append((id_of[best[0]], id_of[best[1]]))
    return merges, [id_of[t] for t in seq]


def test_train_bpe_matches_a_naive_reimplementation_on_random_texts():
    rng = random.Random(0)
    for _ in range(60):
        text = random_repetitive_text(rng, rng.randint(0, 60))
        n = rng.randint(0, 25)
        merges = train_bpe(text, n)
        expected_merges, expected_ids = _naive_bpe(text, n)
        assert merges == expected_merges, text
        assert bpe_encode(text, merges) == expected_ids, text


def test_bpe_encode_equals_lowest_rank_first_encoding():
    """Applying merges in training order equals the common 'merge the lowest-ranked pair present' loop."""
    rng = random.Random(1)
    for _ in range(40):
        merges = train_bpe(random_repetitive_text(rng, 80), 30)
        text = random_repetitive_text(rng, 50)
        ids = list(text.encode())
        rank = {pair: i for i, pair in enumerate(merges)}
        while len(ids) > 1:
            pairs = set(zip(ids, ids[1:]))
            best = min(pairs, key=lambda p: rank.get(p, float("inf")))
            if best not in rank:
                break
            ids = merge_pair(ids, best, 256 + rank[best])
        assert bpe_encode(text, merges) == ids


def test_bpe_decode_replaces_invalid_utf8_and_joins_bytes_before_decoding():
    assert bpe_decode([240, 159], []) == "\ufffd"
    assert bpe_decode([0xFF, 104, 105], []) == "\ufffdhi"
    merges = [(240, 159), (153, 130)]  # the emoji's bytes in two tokens
    assert bpe_encode("🙂", merges) == [256, 257]
    assert bpe_decode([256, 257], merges) == "🙂"
    assert bpe_token_strings([256, 257], merges) == ["\\xf0\\x9f", "\\x99\\x82"]  # halves are not characters
    assert bpe_token_strings(bpe_encode("é!", []), []) == ["\\xc3", "\\xa9", "!"]
    with pytest.raises(ValueError, match="outside"):
        bpe_decode([258], merges)
    with pytest.raises(ValueError, match="exist before"):
        bpe_decode([1], [(256, 1)])


@settings(max_examples=150, deadline=None)
@given(st.text(), st.integers(0, 30))
def test_bpe_round_trip_on_any_text(text, num_merges):
    merges = train_bpe(text, num_merges)
    ids = bpe_encode(text, merges)
    assert bpe_decode(ids, merges) == text
    assert all(0 <= i < 256 + len(merges) for i in ids)
    assert len(ids) <= len(text.encode("utf-8"))


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1), st.text())
def test_bpe_round_trip_on_text_unseen_in_training(train_text, text):
    merges = train_bpe(train_text * 3, 20)
    assert bpe_decode(bpe_encode(text, merges), merges) == text


def test_bpe_round_trip_on_random_unicode_from_a_local_generator():
    rng = random.Random(2)
    merges = train_bpe(random_unicode_text(rng, 400), 60)
    for _ in range(50):
        text = random_unicode_text(rng, rng.randint(0, 80))
        assert bpe_decode(bpe_encode(text, merges), merges) == text


def test_bpe_decode_of_arbitrary_bytes_equals_python_replace():
    rng = random.Random(3)
    for _ in range(50):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 20)))
        assert bpe_decode(list(data), []) == data.decode("utf-8", errors="replace")


def test_training_compresses_the_training_text():
    text = "the quick brown fox jumps over the lazy dog. " * 10
    merges = train_bpe(text, 50)
    assert len(bpe_encode(text, merges)) < len(text.encode()) / 5


# ----------------------------------------------------------------------------- GPT-2's byte-level BPE

from llm_foundations.corpus import SAMPLE_TEXT  # noqa: E402
from llm_foundations.tokenizers import GPT2_PATTERN, ByteLevelBPE, bytes_to_unicode  # noqa: E402

hf_tokenizers = pytest.importorskip("tokenizers")

# any string a Python program can hold and encode as UTF-8 (no lone surrogates)
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
# text shaped like GPT-2's pieces: letters, digits, punctuation, runs of spaces and newlines, contractions
PIECE_TEXT = st.lists(st.sampled_from(["the", " the", "The", "  ", "\n", "\n\n", " ", "'s", "'ll", "42", " 7",
                                       "!!", " ,", "café", " 日本", "🙂", "\t", "x", " 's", "e", "d."]),
                      max_size=25).map("".join)


def _exported(bpe: ByteLevelBPE, folder) -> "hf_tokenizers.Tokenizer":
    """Hugging Face's own byte-level BPE, read from the files the course tokenizer writes."""
    vocab, merges = bpe.save_gpt2_files(folder)
    return hf_tokenizers.ByteLevelBPETokenizer(vocab, merges)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A BPE the course trains (chapter 2's train_bpe, merges across pieces included), its GPT-2-style
    version, and the version Hugging Face's tokenizers library builds from the exported files."""
    bpe = ByteLevelBPE.from_merges(train_bpe(SAMPLE_TEXT + " naïve café, 日本語 🙂🙂!", 300))
    return bpe, _exported(bpe, tmp_path_factory.mktemp("bpe"))


def test_gpt2s_byte_stand_ins():
    mapping = bytes_to_unicode()
    assert len(set(mapping.values())) == 256
    assert mapping[ord(" ")] == "Ġ" and mapping[ord("\n")] == "Ċ" and mapping[ord("a")] == "a"
    assert all(mapping[b] == chr(b) for b in b"!~\xa1\xff")


def test_the_pattern_cuts_words_numbers_punctuation_and_spaces():
    bpe = ByteLevelBPE.from_merges([])
    assert bpe.pieces("Hello world, it's 2024!\n\n  ok") == [
        "Hello", " world", ",", " it", "'s", " 2024", "!", "\n\n ", " ok"]
    assert "\\p{L}" in GPT2_PATTERN


@settings(max_examples=300, deadline=None)
@given(st.one_of(ANY_TEXT, PIECE_TEXT))
def test_encodes_any_text_to_the_ids_of_hugging_faces_byte_level_bpe(trained, text):
    bpe, reference = trained
    ids = bpe.encode(text)
    expected = reference.encode(text).ids
    assert ids == expected, f"{text!r}: course {ids}, tokenizers {expected}"
    assert bpe.decode(ids) == text


@settings(max_examples=30, deadline=None)
@given(st.text(st.sampled_from("ab cd.,\n'sé🙂1"), max_size=200), st.integers(0, 60))
def test_any_trained_bpe_matches_hugging_face_on_its_own_text(tmp_path_factory, text, num_merges):
    for bpe in (ByteLevelBPE.from_merges(train_bpe(text, num_merges)), ByteLevelBPE.train(text, num_merges)):
        reference = _exported(bpe, tmp_path_factory.mktemp("bpe"))
        assert bpe.encode(text) == reference.encode(text).ids
        assert bpe.decode(bpe.encode(text)) == text


def test_files_round_trip(trained, tmp_path):
    bpe, _ = trained
    again = ByteLevelBPE.from_gpt2_files(*bpe.save_gpt2_files(tmp_path))
    assert again.vocab == bpe.vocab and again.merges == bpe.merges
    assert again.encode(SAMPLE_TEXT) == bpe.encode(SAMPLE_TEXT)


def test_training_never_merges_across_pieces():
    text = "the cat sat on the mat. the end. the end. " * 20
    bpe = ByteLevelBPE.train(text, 40)
    tokens = bpe.tokens(text)
    assert "Ġthe" in tokens and "Ġend" in tokens
    for token in set(tokens):
        as_text = bpe.decode([bpe.vocab[token]])
        assert bpe.pieces(as_text) == [as_text], f"token {as_text!r} spans more than one of GPT-2's pieces"
    crossing = ByteLevelBPE.from_merges(train_bpe(text, 40))  # chapter 2's BPE learns tokens such as "the "
    assert any(len(crossing.pieces(crossing.decode([i]))) > 1 for i in crossing.vocab.values())


def test_a_vocabulary_without_every_byte_or_with_a_dangling_merge_is_refused():
    bpe = ByteLevelBPE.from_merges([])
    with pytest.raises(ValueError, match="byte"):
        ByteLevelBPE({"a": 0}, [])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        ByteLevelBPE(bpe.vocab, [("a", "b")])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        bpe.decode([256])
