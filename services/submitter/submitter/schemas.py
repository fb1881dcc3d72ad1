"""The submitter API's request bodies and its answer to POST; what GET answers is the read model's
(opml.readmodel.schemas), re-exported here."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from opml.errors import BadInput
from opml.readmodel.schemas import (  # noqa: F401  (the GET routes' response models)
    ClaimOut,
    GameOut,
    InferenceRequestOut,
    InferenceRequestPage,
    OutputOut,
    TransactionOut,
)

SEED_SEVEN = [0] * 784  # shape only; the real example is models/seed-mnist/input_7.bin
# Far more than any text model's tokens (a token is rarely under two characters): a bound on the work of
# tokenizing a text only to refuse it.
TEXT_MAX_CHARACTERS = 8_192
# A language model's prompt: no context holds more tokens than this many characters could make (SmolLM2's is 8,192).
PROMPT_MAX_CHARACTERS = 65_536
MAX_MESSAGES = 256


class ChatMessage(BaseModel):
    """One message of a chat, as the model's chat template reads it."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str = Field(..., max_length=PROMPT_MAX_CHARACTERS)


class InferenceRequestIn(BaseModel):
    """Ask for an inference: the model and input are checked before anything is sent on-chain."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"model": "1", "pixels": SEED_SEVEN, "fee": 1_000_000_000_000_000, "step_limit": 100_000_000},
                {
                    "model": "0x2f0d1c3e5b7a9e8d6c4b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d",
                    "input_base64": "AAAA...",
                },
                {"model": "2", "text": "A man is eating food."},
                {"model": "3", "input_f32": [0.0, 0.5, 1.0, -0.25]},
                {
                    "model": "4",
                    "messages": [{"role": "user", "content": "What is the capital of France?"}],
                    "max_new_tokens": 32,
                },
                {"model": "4", "prompt": "Once upon a time,", "max_new_tokens": 16},
            ]
        },
    )

    model: str = Field(
        ..., max_length=66, description="The model's on-chain id, or its root M as 0x-hex", examples=["1"]
    )
    program: int | None = Field(
        None,
        ge=1,
        lt=1 << 63,
        description="The on-chain program id. Default: the inference program for a seed-format model (the whole "
        "run in the VM), the node program for a graph-format model and the LLM node program for a language model "
        "(the two-phase game: computed natively, a dispute runs one node in the VM)",
    )
    input_base64: str | None = Field(
        None,
        max_length=1 << 22,
        description=(
            "The input bytes, base64, exactly as the inference program reads them: for a float32 model "
            "big-endian float32 (numpy: array.astype('>f4').tobytes(); numpy's default is little-endian, which "
            "reads as other numbers). Numbers are easier sent as input_f32"
        ),
    )
    input_f32: list[Annotated[float, Field(strict=True, allow_inf_nan=False)]] | None = Field(
        None,
        max_length=1 << 20,
        description=(
            "For float32 models: the input as JSON numbers, one per element of the model's input in its order "
            "(C, H, W for an image), converted here to big-endian float32; their count must be the model's "
            "element count, and each finite within float32's range"
        ),
        examples=[[0.0, 0.5, 1.0, -0.25]],
    )
    pixels: list[Annotated[int, Field(strict=True)]] | None = Field(
        None,
        max_length=1 << 20,
        description=(
            "For image models: pixel values 0-255, one per element of the input (C, H, W order). A u8 model "
            "reads the bytes themselves; a float32 model whose input is an image [C, H, W] of 1, 3 or 4 "
            "channels is given the same values as floats, 0.0 to 255.0, not scaled (a model that expects "
            "scaled or normalized values is sent them as input_f32)"
        ),
    )
    text: str | None = Field(
        None,
        max_length=TEXT_MAX_CHARACTERS,
        description=(
            "For text models (all-MiniLM-L6-v2, or any model reading token ids and an attention mask of its "
            "tokenizer's vocabulary): the sentence to embed. It is tokenized here, outside the VM, with the "
            "packaged tokenizer: [CLS] word pieces [SEP], padded to the model's length; the request's input "
            "is the token ids then the mask, big-endian int32. A text of more tokens than the model reads "
            "(16 for the exported all-MiniLM-L6-v2) is refused with 422, not cut."
        ),
        examples=["A man is eating food."],
    )
    prompt: str | None = Field(
        None,
        max_length=PROMPT_MAX_CHARACTERS,
        description=(
            "For language models (format oplm, e.g. SmolLM2-135M-Instruct): the text to continue, tokenized here as "
            "is (no chat template). The request asks for a greedy generation of up to max_new_tokens tokens; the "
            "input sent on-chain is big-endian u32 max_new_tokens, the prompt's length, then its token ids. A prompt "
            "that with its new tokens exceeds the model's context, or whose node runs need more steps than the "
            "chain allows, is refused with 422"
        ),
        examples=["Once upon a time,"],
    )
    messages: list[ChatMessage] | None = Field(
        None,
        min_length=1,
        max_length=MAX_MESSAGES,
        description=(
            "For language models: a chat, [{role: system|user|assistant, content}], rendered with the model's chat "
            "template with the assistant's turn opened (SmolLM2's adds its default system message when none is "
            "given); then as prompt"
        ),
    )
    max_new_tokens: int | None = Field(
        None,
        ge=1,
        strict=True,
        description=(
            "For language models: the most tokens to generate (the generation stops after the end-of-sequence "
            "token). Default and maximum: the submitter's LLM_MAX_NEW_TOKENS (64)"
        ),
    )
    fee: int | None = Field(
        None, ge=0, lt=1 << 128, strict=True, description="Wei paid to the claim that becomes final"
    )
    step_limit: int | None = Field(
        None,
        ge=1,
        lt=1 << 64,
        strict=True,
        description=(
            "Steps the run may take at most. Default: twice the model's estimated run (96 steps per "
            "multiply-add of its layers; all-MiniLM-L6-v2 takes about 1.63e10 steps), at least the "
            "submitter's DEFAULT_STEP_LIMIT, at most the chain's maxStepLimit and the submitter's "
            "MAX_STEP_LIMIT; a model whose run cannot fit is refused with 422. A step_limit below the least "
            "the model's run can take (64 steps per multiply-add of its layers, a lower bound) is refused with "
            "422: the run could only stop at the limit, with no result, and still pay the fee"
        ),
    )
    allow_step_limit_below_run: bool = Field(
        False,
        strict=True,
        description=(
            "Send a step_limit below the least the model's run can take anyway: the claim will be the state at "
            "the limit, not exited, with no result (to test the limit itself)"
        ),
    )

    @field_validator("input_base64")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise BadInput("input_base64 is not valid base64") from None
        return value

    def input_bytes(self) -> bytes | None:
        return None if self.input_base64 is None else base64.b64decode(self.input_base64)


class InferenceRequestAccepted(BaseModel):
    request_id: int
    url: str
    tx_hash: str
    gas_used: int
