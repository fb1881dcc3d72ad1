"""Node runs of the linked two-phase game on the vm-worker over real HTTP (docs/two-phase.md): the seed model's
nodes give the start state the registry builds, and the final state, value, states and proofs of
`Execution.node_run` in-process; the id covers the node; bad nodes are 422s; the store rebuilds a node run."""

from __future__ import annotations

import base64
import struct

import httpx
import numpy as np
import pytest

from opml.game.remote import ExecutionRequest, NodeRun, RemoteTrace, execution_id
from opml.game.solver import Solver
from opml.game.trace import LocalTrace
from opml.graph.native import EXIT_WRONG_OPERANDS, GraphRun, evaluate
from opml.graph.values import decode_value, encode_value, value_root
from opml.guest import INFERENCE, NODE, built
from opml.models.formats import model_root
from opml.protocol import dissection
from opml.vm.elf import Program
from opml.vm.execution import Execution
from opml.vm.merkle import keccak256
from opml.vm.node_run import NodeHeader, node_start_state_hash

from .conftest import b64, hex0x, metric, running_worker, unhex

STEP_LIMIT = 1 << 30
SMALL_NODE = 2  # the seed model's second linear: about 27,000 steps
INPUT_NODE = 0  # reads slot 0, the request's input: about 2.3 million steps


@pytest.fixture(scope="module")
def node_elf() -> Program:
    return Program.from_file(built(NODE.name))


@pytest.fixture(scope="module")
def node_root(node_elf) -> bytes:
    return Execution(node_elf).region_roots()["program"]


@pytest.fixture(scope="module")
def graph_run(seed_model, seed_input) -> GraphRun:
    return evaluate(seed_model, seed_input)


def node_body(run: GraphRun, node: int, model: bytes, input: bytes, program: bytes | None = None, **changes) -> dict:
    """POST /executions for node `node` of the honest run (the model inline), with `changes` to its node object."""
    body = {
        "program": None if program is None else {"root": hex0x(program)},
        "model": {"base64": b64(model)},
        "input_base64": b64(input),
        "step_limit": STEP_LIMIT,
        "node": {
            "index": node,
            "count": run.node_count,
            "operands": [{"slot": slot, "value_base64": b64(value)} for slot, value in run.operands(node)],
        },
    }
    body["node"].update(changes)
    return body


def local_node(program: Program, run: GraphRun, node: int, model: bytes, input: bytes) -> Execution:
    return Execution.node_run(
        program, model=model, input=input, node=node, node_count=run.node_count, operands=run.operands(node)
    )


@pytest.mark.parametrize("node", [INPUT_NODE, SMALL_NODE])
def test_a_node_run_is_the_librarys_node_run(worker, node_elf, node_root, graph_run, seed_model, seed_input, node):
    response = httpx.post(f"{worker}/executions", json=node_body(graph_run, node, seed_model, seed_input), timeout=60)
    assert response.status_code == 201, response.text
    execution = response.json()
    local = local_node(node_elf, graph_run, node, seed_model, seed_input)
    trace = LocalTrace(local, STEP_LIMIT)
    claim = trace.final_claim()

    # The start state: the Execution's, and the registry's from roots alone (what Linked reports).
    M, I = model_root(seed_model), value_root(seed_input)  # noqa: E741 - the spec's names
    slots = [slot for slot, _ in graph_run.operands(node)]
    operand_roots = [graph_run.roots[slot] for slot in slots]
    linked = node_start_state_hash(node_root, node_elf.entry, I, M, node, graph_run.node_count, slots, operand_roots)
    assert unhex(execution["initial_state_hash"]) == local.initial_state.hash == linked
    assert execution["roots"] == {"program": hex0x(node_root), "model": hex0x(M), "input": hex0x(I)}
    assert execution["node"] == {
        "index": node,
        "count": graph_run.node_count,
        "operands": [{"slot": slot, "root": hex0x(root)} for slot, root in zip(slots, operand_roots)],
        "header_root": hex0x(NodeHeader(node, graph_run.node_count, tuple(slots)).root),
    }
    golden = httpx.get(f"{worker}/executions/{execution['id']}/golden").json()
    assert unhex(golden["initial_state"]) == local.initial_state.encode() and golden["node"] == execution["node"]

    # The result: the node's value, its root V, the final state and the output's siblings (the link's proof).
    result = execution["result"]
    assert execution["status"] == "done" and result["exited"] and result["exit_code"] == 0
    assert result["kind"] == "output" and unhex(result["output"]) == graph_run.values[node + 1] == claim.output
    assert unhex(result["output_root"]) == graph_run.roots[node + 1]
    assert unhex(result["final_state"]) == claim.state_data and unhex(result["final_state_hash"]) == claim.hash
    assert [unhex(s) for s in result["output_siblings"]] == list(claim.siblings) == local.output_siblings()

    # States and proofs within the node's run.
    steps = result["steps"]
    points = [0, 1, *dissection.interior_points(0, steps, 16), steps - 1, steps, steps + 7]
    states = httpx.post(f"{worker}/executions/{execution['id']}/states", json={"steps": points})
    assert states.status_code == 200, states.text
    assert [unhex(h) for h in states.json()["hashes"]] == trace.state_hashes(points)
    for step in (0, steps // 3, steps - 1):
        proof = httpx.get(f"{worker}/executions/{execution['id']}/proof", params={"step": step})
        assert proof.status_code == 200 and proof.json() == local.proof_at(step).to_json()


def test_the_id_is_the_clients_and_covers_the_header_and_every_operand(
    worker, node_root, graph_run, seed_model, seed_input
):
    node = SMALL_NODE  # reads slot 2
    value = graph_run.values[2]
    other_value = encode_value(np.zeros(decode_value(value).shape, np.float32))
    variants = {
        "honest": {},
        "another operand value": {"operands": [{"slot": 2, "value_base64": b64(other_value)}]},
        "another slot": {"operands": [{"slot": 1, "value_base64": b64(graph_run.values[1])}]},
        "another index": {"index": 3},
        "another count": {"count": graph_run.node_count + 1},
        "no operand": {"operands": []},
        "one more operand": {
            "operands": [{"slot": 2, "value_base64": b64(value)}, {"slot": 0, "value_base64": b64(seed_input)}]
        },
    }
    M, I = model_root(seed_model), value_root(seed_input)  # noqa: E741
    ids = {}
    for name, changes in variants.items():
        body = node_body(graph_run, node, seed_model, seed_input, **changes)
        response = httpx.post(f"{worker}/executions", json=body, timeout=60)
        assert response.status_code == 201, (name, response.text)
        ids[name] = response.json()["id"]
        spec = body["node"]
        operands = tuple((o["slot"], unhex_b64(o["value_base64"])) for o in spec["operands"])
        request = ExecutionRequest(
            step_limit=STEP_LIMIT,
            input=seed_input,
            program_root=node_root,
            model_root=M,
            node=NodeRun(spec["index"], spec["count"], operands),
        )
        assert ids[name] == hex0x(request.content_id()), name
        header = NodeHeader(spec["index"], spec["count"], tuple(slot for slot, _ in operands))
        roots = [value_root(v) for _, v in operands]
        preimage = node_root + M + I + struct.pack(">Q", STEP_LIMIT) + header.to_bytes() + b"".join(roots)
        assert (
            ids[name] == hex0x(keccak256(preimage)) == hex0x(execution_id(node_root, M, I, STEP_LIMIT, header, roots))
        )
        if name not in ("honest", "another operand value"):
            assert response.json()["result"]["exit_code"] != 0  # the node program refuses a node not the graph's
    assert len(set(ids.values())) == len(variants)
    wrong_slot = httpx.get(f"{worker}/executions/{ids['another slot']}").json()
    assert wrong_slot["result"]["exit_code"] == EXIT_WRONG_OPERANDS
    # A whole run's id stays keccak256(P || M || I || step_limit): not any node run's.
    assert execution_id(node_root, M, I, STEP_LIMIT) == keccak256(node_root + M + I + struct.pack(">Q", STEP_LIMIT))
    assert hex0x(execution_id(node_root, M, I, STEP_LIMIT)) not in ids.values()


def unhex_b64(text: str) -> bytes:
    return base64.b64decode(text)


def test_a_remote_trace_over_a_node_run_is_the_local_trace(
    worker, node_elf, node_root, graph_run, seed_model, seed_input
):
    """What an agent does in phase 2: the node run's trace from the worker, checked against the game's start
    state, played by the solver exactly as over a local trace."""
    node = SMALL_NODE
    request = ExecutionRequest(
        step_limit=STEP_LIMIT,
        input=seed_input,
        program_root=node_root,
        model=seed_model,
        node=NodeRun(node, graph_run.node_count, graph_run.operands(node)),
    )
    remote = RemoteTrace(worker, request)
    local = LocalTrace(local_node(node_elf, graph_run, node, seed_model, seed_input), STEP_LIMIT)
    slots = [slot for slot, _ in graph_run.operands(node)]
    linked = node_start_state_hash(
        node_root, node_elf.entry, value_root(seed_input), model_root(seed_model), node, graph_run.node_count, slots,
        [graph_run.roots[slot] for slot in slots],
    )  # fmt: skip
    assert remote.initial_state_hash() == linked
    assert remote.execution_id == hex0x(request.content_id())
    claim = remote.final_claim()
    assert claim == local.final_claim() and claim.exited and claim.output == graph_run.values[node + 1]
    remote_solver, truth = Solver(remote, 16), Solver(local, 16)
    lo, hi = 0, claim.steps
    while hi - lo > 1:
        bisection = remote_solver.bisection(lo, hi)
        assert bisection == truth.bisection(lo, hi)
        lying = [b"\x01" * 32 if i == 1 else h for i, h in enumerate(bisection)]
        index = remote_solver.disputed_segment(lo, hi, lying)
        assert index == truth.disputed_segment(lo, hi, lying) == 1
        lo, hi = dissection.segment(lo, hi, 16, index)
    assert remote.step_witness(lo) == truth.step_witness(lo)
    # The program left out: the worker's node program, and the same execution.
    default = ExecutionRequest(step_limit=STEP_LIMIT, input=seed_input, model=seed_model, node=request.node)
    assert RemoteTrace(worker, default).execution_id == remote.execution_id


def test_a_replica_sharing_the_store_rebuilds_a_node_run_it_never_saw(
    tmp_path, node_elf, graph_run, seed_model, seed_input
):
    local = local_node(node_elf, graph_run, SMALL_NODE, seed_model, seed_input)
    with running_worker(tmp_path) as first:
        created = httpx.post(f"{first}/executions", json=node_body(graph_run, SMALL_NODE, seed_model, seed_input))
        assert created.status_code == 201, created.text
    with running_worker(tmp_path, cache_bytes=1) as replica:  # and evicts it after every use
        assert httpx.get(f"{replica}/executions/{created.json()['id']}").json() == created.json()
        states = httpx.post(f"{replica}/executions/{created.json()['id']}/states", json={"steps": [5, 20_000]})
        assert [unhex(h) for h in states.json()["hashes"]] == [local.state_at(s).hash for s in (5, 20_000)]
        assert metric(replica, "vm_worker_executions_total") == 2  # rebuilt from the store, run twice


def bad_value(kind: str) -> bytes:
    good = encode_value(np.ones((2, 3), np.float32))
    if kind == "unknown kind":
        return struct.pack(">I", 7) + good[4:]
    if kind == "too short":
        return good[:-4]
    if kind == "rank 5":
        return struct.pack(">7I", 0, 5, 1, 1, 1, 1, 1) + bytes(4)
    if kind == "a NaN of another payload":
        return good[:-4] + struct.pack(">I", 0x7FC00001)
    return good[:-4] + struct.pack(">I", 0x80000000)  # -0


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"index": 4}, ["node index 4 is not below the node count 4"]),
        ({"index": -1}, ["node.index"]),
        ({"index": 1 << 20}, ["node.index"]),
        ({"count": 0}, ["node.count"]),
        ({"count": 1 << 20}, ["node.count"]),
        ({"index": "2"}, ["node.index"]),
        ({"operands": [{"slot": 3, "value_base64": "AAAA"}]}, ["operand 0 is slot 3: node 2 reads slots 0..2"]),
        ({"operands": [{"slot": -1, "value_base64": "AAAA"}]}, ["slot"]),
        ({"operands": [{"slot": 1, "value_base64": "AAAA"}] * 5}, ["node.operands", "at most 4"]),
        ({"operands": [{"slot": 1, "value_base64": "not base64!"}]}, ["value_base64", "not base64"]),
        ({"operands": [{"slot": 1}]}, ["value_base64", "Field required"]),
        ({"operands": [{"slot": 1, "value_base64": "AAAA", "value": "AAAA"}]}, ["value", "Extra inputs"]),
        ({"operands": None}, ["node.operands"]),
        ({"surprise": 1}, ["surprise", "Extra inputs"]),
        ({"operands": [{"slot": 0, "value_base64": "AAAA"}]}, ["slot 0, the request's input", "not the input"]),
        *[
            ({"operands": [{"slot": 1, "value_base64": b64(bad_value(kind))}]}, ["operand 0 (slot 1)", words])
            for kind, words in [
                ("unknown kind", "unknown kind 7"),
                ("too short", "is 40 bytes, not 36"),
                ("rank 5", "rank 5"),
                ("a NaN of another payload", "not canonical (bits 0x7fc00001)"),
                ("-0", "not canonical (bits 0x80000000)"),
            ]
        ],
    ],
)
def test_bad_nodes_are_422_with_a_reason(worker, graph_run, seed_model, seed_input, changes, words):
    response = httpx.post(
        f"{worker}/executions", json=node_body(graph_run, SMALL_NODE, seed_model, seed_input, **changes)
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "bad_input"
    for word in words:
        assert word in body["message"], body["message"]


def test_a_node_run_of_a_whole_run_program_and_a_whole_run_of_the_node_program_are_422(
    worker, node_root, graph_run, seed_model, seed_input
):
    inference_root = Execution(Program.from_file(built(INFERENCE.name))).region_roots()["program"]
    response = httpx.post(
        f"{worker}/executions", json=node_body(graph_run, SMALL_NODE, seed_model, seed_input, program=inference_root)
    )
    assert (
        response.status_code == 422
        and "is a whole_run program; a node run needs a graph_nodes program" in (response.json()["message"])
    )
    whole = {
        "program": {"root": hex0x(node_root)},
        "model": {"base64": b64(seed_model)},
        "input_base64": b64(seed_input),
    }
    response = httpx.post(f"{worker}/executions", json=whole)
    assert response.status_code == 422 and "is a graph_nodes program; a whole run" in response.json()["message"]
    programs = {p["name"]: p for p in httpx.get(f"{worker}/programs").json()}
    assert programs[NODE.name]["kind"] == "graph_nodes" and programs[NODE.name]["root"] == hex0x(node_root)
    assert programs[INFERENCE.name]["kind"] == "whole_run"
