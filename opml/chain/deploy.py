"""Deploying the contracts and registering the default program and model: what `opml deploy` does.

Everything is sent through a `TransactionManager`, so the same code deploys to anvil
(with a dev key), to a Hardhat node, or to a public chain (with a funded key).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from web3 import Web3

from .. import resources
from ..guest import INFERENCE, LLM_GRAPH, NODE, built
from ..models.formats import model_root
from ..protocol.parameters import Parameters
from ..protocol.types import ProgramKind
from ..vm.elf import Program as ElfProgram
from ..vm.execution import Execution
from .client import TransactionManager, with_retries
from .contracts import Artifact
from .registry import Deployment, Registry


@dataclass(frozen=True)
class ProgramImage:
    """A guest program as the registry knows it: the root P of its program region, its entry, and the game its
    requests play."""

    root: bytes
    entry: int
    kind: ProgramKind = ProgramKind.WHOLE_RUN


def program_image(program: ElfProgram, kind: ProgramKind = ProgramKind.WHOLE_RUN) -> ProgramImage:
    roots = Execution(program).region_roots()
    return ProgramImage(roots["program"], program.entry, kind)


def inference_program() -> ElfProgram:
    """The whole-run inference program: a request's claim is the final state of the whole model's run."""
    return ElfProgram.from_file(built(INFERENCE.name))


def node_program() -> ElfProgram:
    """The node program of the two-phase game: a dispute runs one node of a graph (docs/two-phase.md)."""
    return ElfProgram.from_file(built(NODE.name))


def llm_node_program() -> ElfProgram:
    """The LLM node program of the two-phase game: a dispute runs one node of a generation's graph (docs/llm-graph.md)."""
    return ElfProgram.from_file(built(LLM_GRAPH.name))


def seed_model() -> bytes:
    return (resources.seed_model_dir() / "model.bin").read_bytes()


def deploy_contracts(w3: Web3, tx: TransactionManager, parameters: Parameters) -> Deployment:
    start_block = with_retries(lambda: w3.eth.block_number, what="reading the block number")
    addresses = {}
    for name, args in (("MIPS", ()), ("Proofs", ()), ("InferenceRegistry", None)):
        artifact = Artifact.load(name)
        if args is None:
            args = (addresses["MIPS"], addresses["Proofs"], parameters.as_struct())
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        addresses[name] = tx.send(factory.constructor(*args), intent=f"deploy {name}").contract_address
    chain_id = with_retries(lambda: w3.eth.chain_id, what="reading the chain id")
    return Deployment(chain_id, addresses["MIPS"], addresses["InferenceRegistry"], parameters, start_block)


def register_program(registry: Registry, tx: TransactionManager, image: ProgramImage) -> int:
    tx.send(registry.register_program(image.root, image.entry, image.kind),
            intent=f"register program {image.root.hex()} {image.kind.name.lower()}")  # fmt: skip
    return registry.count("program")


def register_model(registry: Registry, tx: TransactionManager, model: bytes, uri: str) -> int:
    root = model_root(model)
    tx.send(registry.register_model(root, Web3.keccak(model), uri), intent=f"register model {root.hex()}")
    return registry.count("model")


def deploy_with_defaults(w3: Web3, tx: TransactionManager, parameters: Parameters, model_uri: str) -> Deployment:
    """Deploy, then register the inference program (whole runs), the node programs of the two-phase game (graph
    models', LLM generations') and the seed MNIST model; their ids go in the deployment."""
    deployment = deploy_contracts(w3, tx, parameters)
    registry = Registry(w3, deployment.registry)
    program_id = register_program(registry, tx, program_image(inference_program()))
    node_program_id = register_program(registry, tx, program_image(node_program(), ProgramKind.GRAPH_NODES))
    llm_program_id = register_program(registry, tx, program_image(llm_node_program(), ProgramKind.GRAPH_NODES))
    model_id = register_model(registry, tx, seed_model(), model_uri)
    return replace(deployment, program_id=program_id, node_program_id=node_program_id, llm_program_id=llm_program_id,
                   model_id=model_id)  # fmt: skip
