"""InferenceRegistry from Python, typed: parameters, requests, claims, games and results as dataclasses.

`Registry` reads the contract into these types (never by tuple index) and builds the
contract calls that a `TransactionManager` sends. The status enums mirror the Solidity
ones value for value.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from eth_abi import encode
from web3 import Web3
from web3.contract import Contract

from ..errors import BadInput, NotFound
from ..protocol import dissection
from ..protocol.claims import Claim as ClaimArguments
from ..protocol.claims import GraphClaim, LinkProof, StepProof, compact_siblings
from ..protocol.parameters import Parameters
from ..protocol.types import (
    Claim,
    ClaimStatus,
    Game,
    GameStatus,
    Model,
    Phase,
    Program,
    ProgramKind,
    Request,
    RequestStatus,
    Result,
    ResultKind,
    Turn,
)
from .client import with_retries
from .contracts import Artifact, deploy

ZERO_ADDRESS = "0x" + "00" * 20
ENUMS = {kind.__name__: kind for kind in (RequestStatus, ClaimStatus, GameStatus, Turn, Phase, ResultKind, ProgramKind)}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _from_struct(cls, abi_outputs: list[dict], values: tuple) -> Any:
    """A dataclass from a struct returned by a call, matching ABI component names to field names."""
    names = [_snake(component["name"]) for component in abi_outputs]
    kwargs = dict(zip(names, values, strict=True))
    for item in fields(cls):
        value = kwargs.get(item.name)
        if isinstance(value, bytes | bytearray):
            kwargs[item.name] = bytes(value)
        elif item.type in ENUMS:
            kwargs[item.name] = ENUMS[item.type](value)
    return cls(**kwargs)


@dataclass(frozen=True)
class Deployment:
    """What the services need to find the contracts: written by `opml deploy` / the chain/ scripts."""

    chain_id: int
    mips: str
    registry: str
    parameters: Parameters
    start_block: int = 0
    program_id: int = 0  # the default inference program (whole runs)
    node_program_id: int = 0  # the node program (the two-phase game of graph models)
    llm_program_id: int = 0  # the LLM node program (the two-phase game of an OPLM model's generations)
    model_id: int = 0  # the default model (the seed MNIST MLP)
    extra: dict = field(default_factory=dict)

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> Deployment:
        try:
            data = json.loads(Path(path).read_text())
            data["parameters"] = Parameters(**data["parameters"])
            return cls(**data)
        except FileNotFoundError:
            raise NotFound(f"no deployment file at {path}: deploy first (`opml deploy` or `opml up`)") from None
        except (ValueError, TypeError, KeyError) as error:
            raise BadInput(f"{path} is not a deployment file: {error}") from None


def deploy_registry(w3: Web3, parameters: Parameters = Parameters(), sender: str | None = None) -> Deployment:
    """Deploy MIPS, the stateless Proofs and the registry from an unlocked account (a dev chain)."""
    start_block = w3.eth.block_number
    mips = deploy(w3, Artifact.load("MIPS"), sender=sender)
    proofs = deploy(w3, Artifact.load("Proofs"), sender=sender)
    registry = deploy(w3, Artifact.load("InferenceRegistry"), mips.address, proofs.address, parameters.as_struct(),
                      sender=sender)  # fmt: skip
    return Deployment(w3.eth.chain_id, mips.address, registry.address, parameters, start_block)


class Registry:
    """Typed reads of the registry, and the calls that change it (unsent: send them with a TransactionManager).

    Reads are of the latest block, or of one block for a registry pinned with `at(block)`: every read of a
    report made through one pinned registry sees the chain at the same moment, whatever is mined meanwhile."""

    def __init__(self, w3: Web3, address: str, block: int | None = None):
        self.w3 = w3
        self.contract: Contract = w3.eth.contract(address=address, abi=Artifact.load("InferenceRegistry").abi)
        self._outputs = {entry["name"]: entry["outputs"] for entry in self.contract.abi if entry["type"] == "function"}
        self._parameters: Parameters | None = None
        self.block = block  # None: the latest block

    @property
    def address(self) -> str:
        return self.contract.address

    def at(self, block: int) -> Registry:
        """The same registry read at `block` (a block number): every read (`request`, `claim`, `game`, ...) is an
        eth_call at that block; its contract and parameters are shared. Chain time (`now`) stays the chain's
        present, for the clocks of what was read."""
        self.parameters  # immutable: read once, shared by every pinned copy
        pinned = copy.copy(self)
        pinned.block = block
        return pinned

    def _read(self, what: str, call) -> Any:
        if self.block is None:
            return with_retries(call.call, what=what)
        return with_retries(lambda: call.call(block_identifier=self.block), what=f"{what} at block {self.block}")

    # --- reads -------------------------------------------------------------------------------------

    @property
    def parameters(self) -> Parameters:
        if self._parameters is None:
            values = {
                item.name: self._read("reading parameters", getattr(self.contract.functions, _camel(item.name))())
                for item in fields(Parameters)
            }
            self._parameters = Parameters(**values)
        return self._parameters

    def request(self, request_id: int) -> Request:
        request = self._struct(Request, "getRequest", request_id)
        if request.status == RequestStatus.NONE:
            raise NotFound(f"no request {request_id}")
        return request

    def claim(self, claim_id: int) -> Claim:
        claim = self._struct(Claim, "getClaim", claim_id)
        if claim.status == ClaimStatus.NONE:
            raise NotFound(f"no claim {claim_id}")
        return claim

    def game(self, game_id: int) -> Game:
        game = self._struct(Game, "getGame", game_id)
        if game.status == GameStatus.NONE:
            raise NotFound(f"no game {game_id}")
        return game

    def result(self, request_id: int) -> Result | None:
        is_final, values = self._read(f"reading result {request_id}", self.contract.functions.resultOf(request_id))
        if not is_final:
            return None
        components = self._outputs["resultOf"][1]["components"]
        return _from_struct(Result, components, values)

    def program(self, program_id: int) -> Program:
        root, entry, kind = self._read("reading a program", self.contract.functions.programs(program_id))
        if bytes(root) == b"\x00" * 32:
            raise NotFound(f"no program {program_id}")
        return Program(bytes(root), entry, ProgramKind(kind))

    def model(self, model_id: int) -> Model:
        root, file_hash, uri = self._read("reading a model", self.contract.functions.models(model_id))
        if bytes(root) == b"\x00" * 32:
            raise NotFound(f"no model {model_id}")
        return Model(bytes(root), bytes(file_hash), uri)

    def count(self, what: str) -> int:
        """Number of programs, models, requests, claims or games so far."""
        return self._read(f"counting {what}", getattr(self.contract.functions, f"{what}Count")())

    def balance_of(self, account: str) -> int:
        return self._read("reading a balance", self.contract.functions.balances(account))

    def burned(self) -> int:
        return self._read("reading the burned total", self.contract.functions.burned())

    def lead_claim(self, request_id: int, final_state_hash: bytes) -> int:
        """The claim that committed first to this result (it earns the fee if the result wins), 0 for none."""
        key = Web3.keccak(encode(["uint256", "bytes32"], [request_id, final_state_hash]))
        claim_id, _ = self._read("reading a lead", self.contract.functions.leadOf(key))
        return claim_id

    def game_of(self, claim_id: int, challenger: str) -> int:
        return self._read("reading a game id", self.contract.functions.gameOf(claim_id, challenger))

    def points(self, lo: int, hi: int) -> list[int]:
        """The dissection points of [lo, hi], computed here exactly as the contract does."""
        return dissection.points(lo, hi, self.parameters.arity)

    def now(self) -> int:
        """Chain time as the next block will see it: the pending block's timestamp where the node has one
        (anvil and Hardhat do; an idle dev chain's latest block can be minutes old), else the latest's."""

        def read() -> int:
            try:
                return self.w3.eth.get_block("pending")["timestamp"]
            except Exception:  # nodes without a pending block
                return self.w3.eth.get_block("latest")["timestamp"]

        return with_retries(read, what="reading chain time")

    def _struct(self, cls, function: str, *args) -> Any:
        values = self._read(
            f"{function}({', '.join(map(str, args))})", getattr(self.contract.functions, function)(*args)
        )
        return _from_struct(cls, self._outputs[function][0]["components"], values)

    # --- calls -------------------------------------------------------------------------------------

    @staticmethod
    def commitment(request_id: int, result_id: bytes, claimant: str) -> bytes:
        """keccak256(abi.encode(requestId, resultId, claimant)), as commitmentOf computes it; a claim's result id is
        `claim.result_id` (its final state's hash, or for a graph claim graphResultIdOf(root, node count))."""
        return Web3.keccak(encode(["uint256", "bytes32", "address"], [request_id, result_id, claimant]))

    def register_program(self, root: bytes, entry: int, kind: ProgramKind = ProgramKind.WHOLE_RUN):
        return self.contract.functions.registerProgram(root, entry, int(kind))

    def register_model(self, root: bytes, file_hash: bytes, uri: str):
        return self.contract.functions.registerModel(root, file_hash, uri)

    def request_inference(
        self, program_id: int, model_id: int, input: bytes, step_limit: int, consumer: str = ZERO_ADDRESS
    ):
        return self.contract.functions.requestInference(program_id, model_id, input, consumer, step_limit)

    def cancel(self, request_id: int):
        return self.contract.functions.cancel(request_id)

    def cancellable_at(self, request_id: int) -> int:
        """When `cancel` may end the request (with live claims: the last resort's time), in chain time."""
        return self._read("reading a cancellation time", self.contract.functions.cancellableAt(request_id))

    def commit_claim(self, request_id: int, claim: ClaimArguments, claimant: str):
        """Commit to `claim` as `claimant`'s result of `request_id` (the request must be open)."""
        return self.contract.functions.commitClaim(request_id, self.commitment(request_id, claim.result_id, claimant))

    def submit_claim(self, request_id: int, claim: ClaimArguments):
        """Reveal a claim: a whole run's final state, or a graph run's values root and node count."""
        if isinstance(claim, GraphClaim):
            return self.contract.functions.submitGraphClaim(request_id, claim.values_root, claim.node_count)
        return self.contract.functions.submitClaim(request_id, claim.state_data)

    def finalize(self, claim_id: int, claim: ClaimArguments):
        """The call that makes `claim` (the claim's true final state) the request's result, whatever its kind:
        finalize with the output for OUTPUT and STEP_LIMIT_REACHED, finalizeMalformed with the output region's
        leaf proofs for MALFORMED_OUTPUT and OUTPUT_TOO_LARGE; for a graph claim, finalizeGraph with its output
        value's siblings, or finalizeGraphTooLarge with the first leaf of its region."""
        if isinstance(claim, GraphClaim):
            if claim.kind == ResultKind.OUTPUT_TOO_LARGE:
                return self.contract.functions.finalizeGraphTooLarge(
                    claim_id, claim.first_leaf.as_struct(), compact_siblings(claim.siblings)
                )
            return self.contract.functions.finalizeGraph(claim_id, claim.output, compact_siblings(claim.siblings))
        if claim.proof is not None:
            return self.contract.functions.finalizeMalformed(claim_id, claim.state_data, claim.proof.as_struct())
        return self.contract.functions.finalize(claim_id, claim.state_data, claim.output, list(claim.siblings))

    def settle(self, claim_id: int):
        return self.contract.functions.settle(claim_id)

    def challenge(self, claim_id: int):
        return self.contract.functions.challenge(claim_id)

    def bisect(self, game_id: int, hashes: list[bytes]):
        return self.contract.functions.bisect(game_id, hashes)

    def select(self, game_id: int, segment: int, hashes: list[bytes]):
        return self.contract.functions.select(game_id, segment, hashes)

    def resolve(self, game_id: int, witness: StepProof):
        return self.contract.functions.resolve(game_id, witness.state_data, witness.proof)

    def link(self, game_id: int, proof: LinkProof):
        return self.contract.functions.link(
            game_id, proof.encoded_openings(), proof.final_state, list(proof.output_region_siblings)
        )

    def timeout(self, game_id: int):
        return self.contract.functions.timeout(game_id)

    def withdraw(self):
        return self.contract.functions.withdraw()

    def withdraw_to(self, to: str):
        return self.contract.functions.withdrawTo(to)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
