"""Reverts decoded into names and arguments, and a node that does not answer.

A revert's data is a 4-byte selector and ABI-encoded arguments. The selectors of every
custom error in our contracts (and Solidity's Error(string) and Panic(uint256)) are read
from the forge artifacts, so `TxReverted.name` reads like the Solidity source:
`TxReverted("NotYourTurn", {"gameId": 3, "caller": "0x.."})`.
"""

from __future__ import annotations

import functools
from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector

from ..errors import Conflict, Unavailable
from .contracts import Artifact

ERROR_SOURCES = ("InferenceRegistry", "Proofs", "MIPS", "VMState", "MemoryProof", "InferenceLayout")
_BUILTIN = {
    function_signature_to_4byte_selector("Error(string)"): ("Error", ["string"], ["message"]),
    function_signature_to_4byte_selector("Panic(uint256)"): ("Panic", ["uint256"], ["code"]),
}


class TxReverted(Conflict):
    """The chain refused a transaction; `name` and `args` are the contract's custom error."""

    def __init__(self, name: str, args: dict[str, Any] | None = None, *, action: str = ""):
        args = args or {}
        shown = ", ".join(f"{key}={_show(value)}" for key, value in args.items())
        super().__init__(f"{action + ': ' if action else ''}reverted with {name}({shown})", details={"error": name})
        self.name = name
        self.args_ = args


class ChainUnavailable(Unavailable):
    """The chain node does not answer."""


def _show(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


def _type_of(entry: dict) -> str:
    if entry["type"].startswith("tuple"):
        return "(" + ",".join(_type_of(c) for c in entry["components"]) + ")" + entry["type"][5:]
    return entry["type"]


@functools.cache
def _selectors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    table = dict(_BUILTIN)
    for source in ERROR_SOURCES:
        try:
            abi = Artifact.load(source, build=False).abi
        except Exception:  # a library without an artifact of its own: its errors are in its users' ABIs
            continue
        for entry in abi:
            if entry["type"] != "error":
                continue
            types = [_type_of(i) for i in entry["inputs"]]
            selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(types)})")
            table[selector] = (entry["name"], types, [i["name"] for i in entry["inputs"]])
    return table


def decode_revert(data: bytes | str | None) -> tuple[str, dict[str, Any]]:
    """(name, arguments) of a revert's data; ("unknown", {"data": ..}) for data we cannot read."""
    if isinstance(data, str):
        data = bytes.fromhex(data.removeprefix("0x")) if data else b""
    if not data or len(data) < 4:
        return "unknown", {}
    known = _selectors().get(data[:4])
    if known is None:
        return "unknown", {"data": data}
    name, types, names = known
    try:
        values = decode(types, data[4:])
    except Exception:
        return name, {"data": data[4:]}
    return name, dict(zip(names, values, strict=True))


def revert_data(error: Exception) -> bytes | str | None:
    """The revert data web3 attached to a contract error, if any."""
    data = getattr(error, "data", None)
    if isinstance(data, dict):  # some nodes nest it
        data = data.get("data")
    return data
