"""The model's own tokenizer and chat template, from the GGUF's metadata (no tokenizer.json, no hub).

`tokenizer.ggml.model` is "gpt2": byte-level BPE. The vocabulary and merges are the GGUF's,
spelled in GPT-2's byte alphabet. `tokenizer.ggml.pre` is "smollm": llama.cpp splits every
digit off on its own (`\\p{N}`), then applies GPT-2's split; the same as SmolLM2's own
tokenizer.json (Digits(individual_digits) then ByteLevel). Tokens of type 3 (control), such as
<|im_start|> and <|im_end|>, are special tokens matched whole in the text.

The chat template is the GGUF's `tokenizer.chat_template`, rendered with jinja2.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .format import LlmFormatError

CONTROL_TOKEN = 3  # llama.cpp's token type for control tokens
SUPPORTED_MODEL = "gpt2"
PRE_TOKENIZERS = ("smollm", "gpt2", "default")  # "smollm" splits digits; the others do not


@dataclass(frozen=True)
class GgufVocabulary:
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    pre: str
    bos: int
    eos: int
    chat_template: str | None

    @classmethod
    def read(cls, path: Path | str) -> GgufVocabulary:
        from .gguf_import import _field, _reader

        reader = _reader(Path(path))
        model = _field(reader, "tokenizer.ggml.model")
        if model != SUPPORTED_MODEL:
            raise LlmFormatError(f"tokenizer {model!r}: only byte-level BPE ({SUPPORTED_MODEL!r}) is supported")
        pre = _field(reader, "tokenizer.ggml.pre", required=False) or "default"
        if pre not in PRE_TOKENIZERS:
            raise LlmFormatError(f"pre-tokenizer {pre!r} is not supported (supported: {', '.join(PRE_TOKENIZERS)})")
        return cls(
            tokens=list(_field(reader, "tokenizer.ggml.tokens")),
            token_types=[int(t) for t in _field(reader, "tokenizer.ggml.token_type")],
            merges=list(_field(reader, "tokenizer.ggml.merges")),
            pre=pre,
            bos=int(_field(reader, "tokenizer.ggml.bos_token_id")),
            eos=int(_field(reader, "tokenizer.ggml.eos_token_id")),
            chat_template=_field(reader, "tokenizer.chat_template", required=False),
        )


def build_tokenizer(vocabulary: GgufVocabulary):
    """A `tokenizers.Tokenizer` for the vocabulary: byte-level BPE, digits split as its pre-tokenizer says."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    vocab = {token: index for index, token in enumerate(vocabulary.tokens)}
    merges = [tuple(merge.split(" ", 1)) for merge in vocabulary.merges]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if vocabulary.pre == "smollm":
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    else:
        tokenizer.pre_tokenizer = byte_level
    tokenizer.decoder = decoders.ByteLevel()
    special = [
        AddedToken(token, special=True, normalized=False)
        for token, kind in zip(vocabulary.tokens, vocabulary.token_types)
        if kind == CONTROL_TOKEN
    ]
    tokenizer.add_special_tokens(special)
    return tokenizer


class LlmTokenizer:
    """Text <-> token ids, and chat messages -> the prompt text the model was trained on."""

    def __init__(self, vocabulary: GgufVocabulary):
        self.vocabulary = vocabulary
        self.tokenizer = build_tokenizer(vocabulary)

    @property
    def eos(self) -> int:
        return self.vocabulary.eos

    def encode(self, text: str) -> list[int]:
        """Ids of `text`; special tokens written in it (<|im_start|>) are matched whole; no BOS is added
        (the GGUF says tokenizer.ggml.add_bos_token = false; the chat template writes its own markers)."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    def render_chat(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The GGUF's chat template applied to messages [{role, content}, ...]."""
        if not self.vocabulary.chat_template:
            raise LlmFormatError("the GGUF has no chat template")
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        template = environment.from_string(self.vocabulary.chat_template)
        return template.render(messages=messages, add_generation_prompt=add_generation_prompt)

    def chat_ids(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> list[int]:
        return self.encode(self.render_chat(messages, add_generation_prompt))


@cache
def packaged_tokenizer() -> LlmTokenizer:
    from .gguf_import import packaged_gguf

    return LlmTokenizer(GgufVocabulary.read(packaged_gguf()))
