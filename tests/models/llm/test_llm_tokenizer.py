"""The tokenizer built from the GGUF's vocabulary and merges against transformers' tokenizer for the same GGUF."""

from __future__ import annotations

import pytest

from opml.models.llm.gguf_import import packaged_gguf
from opml.models.llm.tokenizer import packaged_tokenizer

TEXTS = [
    "Hello world",
    "What is 2+2? It's 4.",
    "In 2024, prices rose 12.5% to $1,234,567.",
    "Café naïve façade — déjà vu!",
    "日本語のテキストです。",
    "Привет, как дела?",
    "emoji 🙂🚀 test",
    "  leading spaces and\ttabs\nnewlines\n\n",
    "x² + y² = z²",
    "١٢٣ Arabic digits",
    "<|im_start|>user\nhi<|im_end|>",
    "don't you'll we've I'M",
    "ΑΒΓ αβγ",
    "한국어 문장",
    "code: def f(x):\n    return x**2",
    "Ünïcödé ß ẞ",
    "🇫🇷 flags 👨‍👩‍👧",
    "mixed123abc456",
    "   ",
    "tab\t\tx",
    "¿Cuál es el río más largo del mundo?",
    "<|endoftext|><repo_name>opml",
]


@pytest.fixture(scope="module")
def theirs():
    from transformers import AutoTokenizer

    path = packaged_gguf()
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def test_the_same_ids_as_transformers(theirs):
    ours = packaged_tokenizer()
    for text in TEXTS:
        assert ours.encode(text) == theirs.encode(text, add_special_tokens=False), text
        assert ours.decode(ours.encode(text)) == text


def test_the_chat_template_gives_the_same_prompt(theirs):
    ours = packaged_tokenizer()
    for messages in (
        [{"role": "user", "content": "Hi there"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Ça va ?"}],
        [
            {"role": "user", "content": "1+1?"},
            {"role": "assistant", "content": "2"},
            {"role": "user", "content": "2+2?"},
        ],
    ):
        expected = theirs.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert ours.render_chat(messages) == expected
        ids = theirs.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        assert ours.chat_ids(messages) == list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def test_a_space_before_a_numeric_symbol_splits_as_llama_cpp_does(theirs):
    """The GGUF says pre-tokenizer "smollm": every \\p{N} character on its own (as llama.cpp and SmolLM2's own
    tokenizer.json do). transformers' GGUF loader knows no "smollm" and keeps GPT-2's split, where " ²" is one
    piece; digits never merge with anything in this vocabulary, so only such rare symbols differ."""
    ours = packaged_tokenizer()
    assert ours.encode(" ²") == [216, 19133]  # "Ġ", "Â²"
    assert theirs.encode(" ²", add_special_tokens=False) == [3351, 127]  # "ĠÂ", "²"
