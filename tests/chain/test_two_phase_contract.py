"""Proofs.sol's checks of the linked two-phase game (docs/two-phase.md) against the Python side, on a real anvil:
the node header and the node run's start state from roots (opml.vm.node_run), S_0 and the openings of the value
tree (opml.graph.tree), and Proofs.link on real node runs of the committed node program (the seed model, every
node), which must return the Execution's initial and final state hashes."""

import random
from dataclasses import replace
from pathlib import Path

import pytest
from web3.exceptions import ContractLogicError

from opml.chain.contracts import Artifact, deploy
from opml.graph.native import evaluate
from opml.graph.tree import EMPTY_SLOT, VALUE_TREE_DEPTH, ValueTree, input_state, root_from_siblings
from opml.graph.values import value_root
from opml.guest import NODE, built
from opml.models.formats import model_root
from opml.protocol.claims import LinkProof, Opening
from opml.vm import layout as L
from opml.vm.elf import Program
from opml.vm.execution import Execution
from opml.vm.merkle import ZERO_HASHES
from opml.vm.node_run import NodeHeader, node_start_state_hash

SEED = Path(__file__).resolve().parents[2] / "models" / "seed-mnist"
STEP_LIMIT = 200_000_000  # a graph request's step limit bounds each node's run; the seed's largest is 2.3M steps
MAX_NODE = (1 << VALUE_TREE_DEPTH) - 1


@pytest.fixture(scope="module")
def proofs(w3):
    return deploy(w3, Artifact.load("Proofs"))


def random_root(rng: random.Random) -> bytes:
    return rng.randbytes(32)


def compressed(siblings) -> tuple[bytes, ...]:
    """Siblings with every empty subtree (Z[h]) given as 32 zero bytes, which Proofs.stateWith reads as Z[h]."""
    return tuple(bytes(32) if sibling == ZERO_HASHES[h] else sibling for h, sibling in enumerate(siblings))


def test_node_header_and_start_state_equal_node_run(proofs):
    """Proofs.nodeHeader and nodeStartState against NodeHeader and node_start_state_hash, for random roots, entries,
    nodes, node counts and 0 to MAX_OPERANDS operand slots."""
    rng = random.Random(18)
    for case in range(40):
        node = rng.choice([0, 1, rng.randrange(MAX_NODE), MAX_NODE - 1])
        node_count = rng.choice([node + 1, rng.randrange(node + 1, MAX_NODE + 1), 1])
        slots = [rng.randrange(node + 1) for _ in range(case % (L.MAX_OPERANDS + 1))]
        operand_roots = [random_root(rng) for _ in slots]
        program, input_, model = random_root(rng), random_root(rng), random_root(rng)
        entry = rng.randrange(0, 1 << 30) * 4

        header = bytes(proofs.functions.nodeHeader(node, node_count, slots).call())
        assert header == NodeHeader(node, node_count, tuple(slots)).to_bytes()
        onchain = proofs.functions.nodeStartState(program, entry, input_, model, header, operand_roots).call()
        expected = node_start_state_hash(program, entry, input_, model, node, node_count, slots, operand_roots)
        assert bytes(onchain) == expected, case


def test_input_state_equals_the_value_trees_s0(proofs):
    """Proofs.inputState (the start state of a graph request) and regionRoot against input_state and value_root."""
    rng = random.Random(0)
    for length in [0, 1, 4, 28, 29, 60, 784, 1000, 4097]:
        data = rng.randbytes(length)
        root = bytes(proofs.functions.regionRoot(data).call())
        assert root == value_root(data)
        assert bytes(proofs.functions.inputState(root).call()) == input_state(data) == ValueTree([root]).state(0)


@pytest.mark.parametrize("values", [1, 2, 7, 33, 1000])
def test_openings_equal_the_value_trees(proofs, values):
    """Proofs.stateWith on ValueTree's siblings gives its S_t for any slot at or before t, and for the slot after
    it gives S_t when empty and S_{t+1} when set (what the link checks of the disputed value); isGraphOutputOf
    accepts value n of S_n and nothing else."""
    rng = random.Random(values)
    roots = [random_root(rng) for _ in range(values)]
    tree = ValueTree(roots)
    last = len(roots) - 1
    for t in sorted({0, last, *(rng.randrange(last + 1) for _ in range(3))}):
        state = tree.state(t)
        for slot in sorted({0, t, rng.randrange(t + 1)}):
            siblings = tree.siblings(slot, t)
            assert root_from_siblings(slot, roots[slot], siblings) == state
            assert bytes(proofs.functions.stateWith(roots[slot], slot, siblings).call()) == state
            assert bytes(proofs.functions.stateWith(roots[slot], slot, compressed(siblings)).call()) == state
        if t < last:
            siblings = tree.siblings(t + 1, t)
            assert bytes(proofs.functions.stateWith(EMPTY_SLOT, t + 1, siblings).call()) == state
            assert bytes(proofs.functions.stateWith(roots[t + 1], t + 1, siblings).call()) == tree.state(t + 1)
            assert bytes(proofs.functions.stateWith(EMPTY_SLOT, t + 1, compressed(siblings)).call()) == state

    output = rng.randbytes(40)
    roots[-1] = value_root(output)
    tree = ValueTree(roots)
    siblings = tree.siblings(last, last)
    assert proofs.functions.isGraphOutputOf(output, last, siblings, tree.state(last)).call()
    assert not proofs.functions.isGraphOutputOf(output + b"\x00", last, siblings, tree.state(last)).call()
    if last > 0:
        assert not proofs.functions.isGraphOutputOf(output, last - 1, siblings, tree.state(last)).call()


@pytest.fixture(scope="module")
def seed_run():
    model = (SEED / "model.bin").read_bytes()
    input_ = (SEED / "input_7.bin").read_bytes()
    return model, input_, evaluate(model, input_)


def link_of(run, node: int, execution: Execution) -> LinkProof:
    """The link of `node` from the native run's value tree and the node run's final state."""
    openings = run.link_openings(node)

    def opening(slot_opening) -> Opening:
        return Opening(slot_opening.root, tuple(slot_opening.siblings))

    return LinkProof(
        operand_slots=tuple(slot for slot, _ in run.operands(node)),
        operands=tuple(opening(o) for o in openings.operands),
        input=opening(openings.input),
        output=opening(openings.output),
        final_state=execution.run().final_state.encode(),
        output_region_siblings=tuple(execution.output_siblings()),
    )


def node_run_struct(program_root, entry, model, run, node, node_count=None, step_limit=STEP_LIMIT):
    """Proofs.NodeRun: the registered program and model, the agreed node, the claim's node count, the step limit
    and the game's agreed and disputed phase-1 states."""
    node_count = run.node_count if node_count is None else node_count
    return (program_root, entry, model_root(model), node, node_count, step_limit, run.state(node), run.state(node + 1))


def test_link_accepts_real_node_runs_of_the_node_program(proofs, seed_run):
    """For every node of the seed model: Proofs.link on the native run's openings, the node program's real run and
    LinkProof.encoded_openings() returns the Execution's initial and final state hashes, its steps and the header."""
    model, input_, run = seed_run
    program = Program.from_file(built(NODE.name))
    for node in range(run.node_count):
        operands = run.operands(node)
        execution = Execution.node_run(
            program, model=model, input=input_, node=node, node_count=run.node_count, operands=operands
        )
        result = execution.run()
        assert result.exit_code == 0 and result.output == run.values[node + 1]
        proof = link_of(run, node, execution)
        nodes_run = node_run_struct(execution.region_roots()["program"], program.entry, model, run, node)
        start, final, steps, header = proofs.functions.link(
            nodes_run, proof.encoded_openings(), proof.final_state, list(proof.output_region_siblings)
        ).call()
        assert bytes(start) == execution.initial_state.hash, node
        assert bytes(final) == result.final_state.hash
        assert steps == result.steps
        assert bytes(header) == NodeHeader(node, run.node_count, tuple(s for s, _ in operands)).to_bytes()


def test_link_refuses_a_node_run_that_does_not_hold_the_disputed_value(proofs, seed_run):
    """The same link with one operand root tampered, the disputed value moved, a step limit below the run, another
    node's run, or the node count of an intermediate value: refused, or (the node count) another start state."""
    model, input_, run = seed_run
    program = Program.from_file(built(NODE.name))
    node = 1
    execution = Execution.node_run(
        program, model=model, input=input_, node=node, node_count=run.node_count, operands=run.operands(node)
    )
    proof = link_of(run, node, execution)
    program_root = execution.region_roots()["program"]
    nodes_run = node_run_struct(program_root, program.entry, model, run, node)

    def call(node_run, link: LinkProof):
        return proofs.functions.link(
            node_run, link.encoded_openings(), link.final_state, list(link.output_region_siblings)
        ).call()

    tampered = Opening(bytes(32 - 1) + b"\x01", proof.operands[0].siblings)
    with pytest.raises(ContractLogicError):
        call(nodes_run, replace(proof, operands=(tampered,)))
    moved = Opening(proof.output.value, tuple(run.tree.siblings(node, node)))
    with pytest.raises(ContractLogicError):
        call(nodes_run, replace(proof, output=moved))
    with pytest.raises(ContractLogicError):
        call(
            node_run_struct(program_root, program.entry, model, run, node, step_limit=execution.run().steps - 1), proof
        )
    other = Execution.node_run(
        program, model=model, input=input_, node=2, node_count=run.node_count, operands=run.operands(2)
    )
    with pytest.raises(ContractLogicError):
        call(nodes_run, link_of(run, node, other))

    start, *_ = call(node_run_struct(program_root, program.entry, model, run, node, node_count=node + 1), proof)
    assert bytes(start) != execution.initial_state.hash  # the claim's node count is in the header
    intermediate = Execution.node_run(
        program, model=model, input=input_, node=node, node_count=node + 1, operands=run.operands(node)
    )
    assert bytes(start) == intermediate.initial_state.hash
    assert intermediate.run().exit_code == 30  # EXIT_WRONG_NODE_COUNT: no exited-0 run to link from there


def test_the_registry_links_the_seed_models_node_0_from_the_nodes_own_start_state(w3, seed_run):
    """The whole link on the registry: a graph claim of the seed model's run, challenged twice, phase 1 narrowed to
    node 0 (one operand, the input), linked with the node program's real run, its openings' siblings given as
    ValueTree gives them and, in the other game, with every empty subtree as zero bytes. The game's agreed state is
    then the Execution's initial state (the registry built it from the registered P and M) and its disputed one
    the run's final state. The link transactions' gas is printed (issue 18's target: 150,000 for a whole link)."""
    from opml.chain.contracts import send
    from opml.chain.registry import Registry, deploy_registry
    from opml.protocol.claims import GraphClaim
    from opml.protocol.parameters import Parameters
    from opml.protocol.types import Phase, ProgramKind

    model, input_, run = seed_run
    program = Program.from_file(built(NODE.name))
    node = 0
    execution = Execution.node_run(
        program, model=model, input=input_, node=node, node_count=run.node_count, operands=run.operands(node)
    )
    parameters = Parameters(challenge_window=3600, clock_budget=3600)
    registry = Registry(w3, deploy_registry(w3, parameters).registry)
    owner, claimant, *challengers = w3.eth.accounts[:4]
    send(w3, registry.register_program(execution.region_roots()["program"], program.entry, ProgramKind.GRAPH_NODES))
    send(w3, registry.register_model(model_root(model), bytes(32), "seed"))
    program_id = registry.contract.functions.programCount().call()
    model_id = registry.contract.functions.modelCount().call()
    send(w3, registry.request_inference(program_id, model_id, input_, STEP_LIMIT), owner, value=10**15)
    request_id = registry.contract.functions.requestCount().call()

    claim = GraphClaim(run.final_state, run.node_count, run.output, tuple(run.output_opening().siblings))
    send(w3, registry.commit_claim(request_id, claim, claimant), claimant)
    w3.provider.make_request("evm_mine", [])  # the reveal's gas estimate must see a later block than the commitment
    send(w3, registry.submit_claim(request_id, claim), claimant, value=parameters.claim_bond)
    claim_id = registry.contract.functions.claimCount().call()
    link = link_of(run, node, execution)
    challenger = challengers[0]
    send(w3, registry.challenge(claim_id), challenger, value=parameters.challenge_bond)
    game_id = registry.game_of(claim_id, challenger)
    while (game := registry.game(game_id)).hi - game.lo > 1:
        hashes = [run.state(t) for t in registry.points(game.lo, game.hi)[1:-1]]
        send(w3, registry.bisect(game_id, hashes), claimant)
        send(w3, registry.select(game_id, 0, hashes), challenger)  # toward node 0
    assert (game.lo, game.hi) == (node, node + 1)
    # as the agents send it: the value tree's empty subtrees as zero words (Opening.as_struct), same roots
    gas = send(w3, registry.link(game_id, link), claimant).gasUsed
    game = registry.game(game_id)
    assert game.phase == Phase.RUN
    assert game.lo_hash == execution.initial_state.hash
    assert game.hi_hash == execution.run().final_state.hash and game.hi == execution.run().steps
    print(f"\nlink of the seed model's node 0 (1 operand) on anvil: {gas:,} gas")
    assert gas <= 130_000  # 145,829 with every sibling sent in full
