"""Chunking rules (reference section 10): 75-token chunks, BREAK, comma back-off, token counter."""
from __future__ import annotations

import pytest

from webui.conditioning import CHUNK_LENGTH, build_chunks, count_tokens, load_clip_tokenizer
from webui.conditioning.tokenizer import BOS_ID, EOS_ID

WORDS = ["cat", "dog", "red", "blue", "tree", "house", "car", "sun", "moon", "star"]


@pytest.fixture(scope="module")
def tok():
    return load_clip_tokenizer()


def ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def words(n: int, offset: int = 0) -> list[str]:
    return [WORDS[(i + offset) % len(WORDS)] for i in range(n)]


def test_words_are_single_tokens(tok) -> None:
    assert all(len(ids(tok, w)) == 1 for w in WORDS)
    assert ids(tok, ",") == [267]


def test_plain_prompt_is_one_padded_chunk(tok) -> None:
    chunks, count = build_chunks("a photo of a cat", tok)
    assert count == 5 and len(chunks) == 1
    expected = [BOS_ID] + ids(tok, "a photo of a cat") + [EOS_ID] * 71
    assert chunks[0].tokens == expected
    assert chunks[0].multipliers == [1.0] * 77


def test_empty_prompt(tok) -> None:
    chunks, count = build_chunks("", tok)
    assert count == 0
    assert [c.tokens for c in chunks] == [[BOS_ID] + [EOS_ID] * 76]


def test_300_tokens_make_4_chunks(tok) -> None:
    chunks, count = build_chunks(" ".join(words(300)), tok)
    assert count == 300 and len(chunks) == 4
    assert all(len(c.tokens) == 77 and c.tokens[0] == BOS_ID and c.tokens[-1] == EOS_ID for c in chunks)
    assert chunks[3].tokens[1:76] == ids(tok, " ".join(words(75, offset=225)))


def test_multipliers_follow_fragments(tok) -> None:
    chunks, _ = build_chunks("a (cat:1.5) [dog]", tok)
    assert chunks[0].multipliers[:4] == [1.0, 1.0, 1.5, pytest.approx(1 / 1.1)]
    assert chunks[0].tokens[1:4] == ids(tok, "a cat dog")


def test_break_starts_a_new_chunk(tok) -> None:
    chunks, count = build_chunks("cat BREAK dog", tok)
    assert len(chunks) == 2
    assert chunks[0].tokens[:3] == [BOS_ID, ids(tok, "cat")[0], EOS_ID]
    assert chunks[1].tokens[:3] == [BOS_ID, ids(tok, "dog")[0], EOS_ID]
    assert count == CHUNK_LENGTH + 1


def test_break_at_start_and_twice_make_padding_only_chunks(tok) -> None:
    chunks, _ = build_chunks("BREAK cat BREAK BREAK dog", tok)
    assert len(chunks) == 4
    assert chunks[0].tokens == [BOS_ID] + [EOS_ID] * 76
    assert chunks[2].tokens == [BOS_ID] + [EOS_ID] * 76


def test_break_inside_brackets_is_a_weighted_word(tok) -> None:
    chunks, _ = build_chunks("(cat BREAK dog)", tok)
    assert len(chunks) == 1
    assert chunks[0].tokens[1:4] == ids(tok, "cat break dog")
    assert chunks[0].multipliers[2] == pytest.approx(-1.1)


def test_emphasis_none_keeps_brackets_and_break_as_text(tok) -> None:
    chunks, _ = build_chunks("(cat) BREAK dog", tok, emphasis="None")
    assert len(chunks) == 1
    assert chunks[0].tokens[1:6] == ids(tok, "(cat) break dog")
    assert set(chunks[0].multipliers) == {1.0}


def test_comma_backoff_moves_words_after_the_last_comma(tok) -> None:
    head, tail = words(70), words(10, offset=3)
    text = " ".join(head) + " , " + " ".join(tail)
    chunks, count = build_chunks(text, tok, comma_backtrack=20)
    first = chunks[0].tokens[1:76]
    assert first[:71] == ids(tok, " ".join(head) + " ,")
    assert first[71:] == [EOS_ID] * 4
    assert chunks[1].tokens[1:11] == ids(tok, " ".join(tail))
    assert count == CHUNK_LENGTH + 10


def test_comma_backoff_disabled_or_too_far(tok) -> None:
    head, tail = words(70), words(10, offset=3)
    text = " ".join(head) + " , " + " ".join(tail)
    chunks, _ = build_chunks(text, tok, comma_backtrack=0)
    assert chunks[0].tokens[72:76] == ids(tok, " ".join(tail[:4]))
    assert chunks[1].tokens[1:7] == ids(tok, " ".join(tail[4:]))
    # comma 5 tokens back but a limit of 4: no back-off either
    limited, _ = build_chunks(text, tok, comma_backtrack=4)
    assert limited[0].tokens == chunks[0].tokens
    # exactly at the limit (75 - 70 == 5) it does back off
    at_limit, _ = build_chunks(text, tok, comma_backtrack=5)
    assert at_limit[0].tokens[72:76] == [EOS_ID] * 4


def test_count_tokens_uses_the_whole_prompt_pipeline() -> None:
    assert count_tokens("") == (0, 75)
    assert count_tokens("a cat") == (2, 75)
    assert count_tokens(" ".join(words(76))) == (76, 150)
    # tags are removed; the longest scheduled text and AND part wins
    assert count_tokens("<lora:x:1> cat [dog:red blue tree:5] AND sun") == (4, 75)
    # in a negative prompt a tag is text
    assert count_tokens("<lora:x:1>", negative=True)[0] > 0
