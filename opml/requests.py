"""Asking for an inference: everything checked before anything is sent, then one requestInference.

The submitter's POST /inference-requests and `opml request` both come here: the model (by on-chain
id or by root M) must be registered and its file obtainable; the input must be what the model reads
(its byte length, or pixel values 0-255 for image models); the fee and step limit must be within
bounds. Only then is the transaction sent, and the request id read from its event.
"""

from __future__ import annotations

from dataclasses import dataclass

from web3.logs import DISCARD

from .chain.client import TransactionManager
from .chain.registry import Registry
from .errors import BadInput, NotFound
from .models.formats import InputType, parse_model


@dataclass(frozen=True)
class SentRequest:
    request_id: int
    tx_hash: bytes
    gas_used: int


def resolve_model_id(registry: Registry, model: int | str, registered: dict[bytes, int]) -> int:
    """The on-chain id of a model given by id or by root (0x-hex); `registered` maps roots to ids."""
    if isinstance(model, int) or (isinstance(model, str) and model.isdigit()):
        model_id = int(model)
        registry.model(model_id)  # NotFound if it is not registered
        return model_id
    try:
        root = bytes.fromhex(str(model).removeprefix("0x"))
    except ValueError:
        raise BadInput(f"model must be an on-chain id or a root (0x and 64 hex digits), not {model!r}") from None
    if len(root) != 32:
        raise BadInput(f"model must be an on-chain id or a root (0x and 64 hex digits), not {model!r}")
    if root not in registered:
        raise NotFound(f"no model with root {model} is registered on-chain (register it with the converter)")
    return registered[root]


def input_from_pixels(pixels: list[int], model_file: bytes) -> bytes:
    """Pixel values (0-255) as the input of an image model."""
    graph = parse_model(model_file)
    if graph.input_type != InputType.U8:
        raise BadInput("this model does not read pixels (its input is float32): send the input as bytes")
    if any(not 0 <= value <= 255 for value in pixels):
        raise BadInput("pixel values must be between 0 and 255")
    return bytes(pixels)


def check_input(input: bytes, model_file: bytes) -> None:
    graph = parse_model(model_file)
    if len(input) != graph.input_bytes:
        raise BadInput(
            f"the model reads {graph.input_bytes} bytes of input ({graph.input_type.name.lower()} "
            f"{'x'.join(map(str, graph.input_shape))}); got {len(input)}"
        )


def check_bounds(registry: Registry, fee: int, step_limit: int, balance: int) -> None:
    limit = registry.parameters.max_step_limit
    if not 1 <= step_limit <= limit:
        raise BadInput(f"step_limit must be between 1 and {limit}, not {step_limit}")
    if fee < 0:
        raise BadInput("fee cannot be negative")
    if fee >= balance:
        raise BadInput(f"the requester's balance ({balance} wei) cannot pay a fee of {fee} wei and the gas")


def send_request(
    registry: Registry, tx: TransactionManager, program_id: int, model_id: int, input: bytes, fee: int, step_limit: int
) -> SentRequest:
    """Send requestInference; the request id comes from the InferenceRequested event of the receipt."""
    sent = tx.send(registry.request_inference(program_id, model_id, input, step_limit), value=fee)
    receipt = registry.w3.eth.get_transaction_receipt(sent.tx_hash)
    events = registry.contract.events.InferenceRequested().process_receipt(receipt, errors=DISCARD)
    return SentRequest(events[0]["args"]["requestId"], sent.tx_hash, sent.gas_used)
