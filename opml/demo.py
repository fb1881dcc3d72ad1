"""The main job on the embedded default: what `make run` shows.

Starts the whole stack on this machine (anvil, the contracts, the converter, vm-worker,
submitter and challenger as processes, SQLite), then:

1. uploads the seed's trained MNIST state_dict to the converter, which converts it and
   registers it on-chain;
2. asks for the seed's handwritten 7 through POST /inference-requests, and watches the
   submitter's agent claim it and the result become final as 7;
3. starts a second submitter that lies (its states are made up from a step in the middle of
   the run), asks again, and watches the challenger dispute the lie round by round down to
   one instruction, win, and the honest claim become final.

With OPML_DEMO_MINILM=1 (minutes more) the deployment is sized for all-MiniLM-L6-v2 (requests of
up to 2^34 steps, a challenge window of about 2.5 minutes, so the MNIST claims wait longer too), and
after the MNIST scenario:

4. exports the packaged all-MiniLM-L6-v2 to ONNX and uploads it (converted and registered);
5. replaces the liar by one that flips a bit of node 140's value (of 186), sends a sentence as `text`
   to POST /inference-requests, and watches the challenger dispute the lie through both phases of the
   two-phase game (the nodes down to node 140, its link, its run in the VM down to one instruction)
   and win, and the honest embedding become final, checked bit for bit against the native run.

With OPML_DEMO_LLM=1 the deployment is sized for a language model's generations too (node runs of up to 2^33
steps, a 62 s challenge window: opml.protocol.parameters.sized_for_llm), and after the MNIST scenario (and
MiniLM's, if asked for):

6. converts the packaged SmolLM2-135M-Instruct GGUF to an OPLM model file and uploads it (registered);
7. asks it a question as chat `messages` through POST /inference-requests, and watches the submitter's agent claim
   the generation (computed natively) and the answer become final, checked token for token against the reference;
8. starts a lying submitter whose answer differs from one token on (it flips the token one step's argmax chose
   and computes the rest of its answer from it), asks again, and watches the challenger dispute it through both
   phases of the two-phase game: phase 1 down to that argmax node, the link to its run in the VM, phase 2 down to
   one instruction; the liar loses its bond and the honest answer becomes final.

It prints what happens as it happens and where to look, then serves until Ctrl-C;
with OPML_DEMO_EXIT=1 it exits after the scenario, 0 only if every expected outcome was seen
(OPML_DEMO_DATA moves its data directory, OPML_DEMO_FREE_PORTS=1 picks free ports).
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import httpx

from . import resources
from .protocol.parameters import MINILM_STEP_LIMIT, Parameters, sized_for, sized_for_llm
from .stack import Stack, StackConfig

DATA_DIR = Path(os.environ.get("OPML_DEMO_DATA", "var/demo"))
MINILM = os.environ.get("OPML_DEMO_MINILM") == "1"
MINILM_SENTENCE = "A man is eating food."
MINILM_LIED_NODE = 140  # of 186: three quarters into the graph, deep in the transformer's layers
LLM = os.environ.get("OPML_DEMO_LLM") == "1"
LLM_QUESTION = "What is the capital of France?"
LLM_NEW_TOKENS = 16
LLM_LIED_TOKEN = 3  # the liar changes the token the argmax of this generation step chose, and all that follows


class Narrator:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.failures: list[str] = []

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.1f}s] {text}", flush=True)

    def expect(self, condition: bool, what: str) -> None:
        self.say(("ok    " if condition else "FAILED ") + what)
        if not condition:
            self.failures.append(what)


def watch_request(stack: Stack, request_id: int, narrator: Narrator, timeout: float = 120.0) -> dict:
    """Poll GET /inference-requests/{id}, telling each change of status, until it is final."""
    url = f"{stack.url('submitter')}/inference-requests/{request_id}"
    seen, deadline = None, time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(url, timeout=30)
        if response.status_code != 200:  # not indexed yet
            time.sleep(0.3)
            continue
        report = response.json()
        claims = len(report.get("claims", []))
        games = len(report.get("games", []))
        status = (report.get("status"), claims, games)
        if status != seen:
            seen = status
            narrator.say(f"request {request_id}: {report['status']} ({claims} claim(s), {games} game(s))")
        if report.get("status") == "final":
            return report
        time.sleep(0.5)
    return report


def watch_dispute(stack: Stack, game_id: int, narrator: Narrator, timeout: float = 120.0) -> dict:
    url = f"{stack.url('challenger')}/disputes/{game_id}"
    shown, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        dispute = httpx.get(url, timeout=30).json()
        for round_ in dispute["history"][shown:]:
            if round_["segment"] is None:
                break
            narrator.say(
                f"  round {round_['round']}: [{round_['lo']:,}, {round_['hi']:,}] -> segment {round_['segment']} "
                f"= [{round_['next_lo']:,}, {round_['next_hi']:,}]"
            )
            shown += 1
        settled = dispute["status"] != "active"
        if settled and shown >= dispute["rounds"] and dispute["bonds"]:  # the index has caught up with the chain
            return dispute
        time.sleep(0.3)
    return dispute


def main() -> None:
    narrator = Narrator()
    if DATA_DIR.exists():
        shutil.rmtree(DATA_DIR)
    seed = resources.seed_model_dir()
    # MiniLM's node runs (up to 8.7e8 steps) need a larger step limit than the default's 2^30.
    parameters = sized_for(MINILM_STEP_LIMIT) if MINILM else Parameters()
    if LLM:  # a language model's node runs and native claims (both flags: the larger of each)
        parameters = sized_for_llm(max(parameters.max_step_limit, sized_for_llm().max_step_limit), parameters)
    if os.environ.get("OPML_DEMO_FREE_PORTS") == "1":  # beside other stacks (the tests)
        config = StackConfig.ephemeral(DATA_DIR, echo=False, parameters=parameters)
    else:
        config = StackConfig(data_dir=DATA_DIR, echo=False, parameters=parameters)
    stack = Stack(config)
    narrator.say("starting anvil, deploying the contracts, starting converter, vm-worker, submitter, challenger...")
    if MINILM:
        narrator.say(f"deployed for all-MiniLM-L6-v2: up to {MINILM_STEP_LIMIT:,} steps a request, a "
                     f"{parameters.challenge_window} s challenge window (every claim waits it out), "
                     f"{parameters.clock_budget} s clocks")  # fmt: skip
    if LLM:
        narrator.say(f"deployed for a language model's generations: node runs of up to {parameters.max_step_limit:,} "
                     f"steps, a {parameters.challenge_window} s challenge window (every claim waits it out), "
                     f"{parameters.clock_budget} s clocks")  # fmt: skip
    stack.start()
    try:
        narrator.say(f"stack ready ({', '.join(f'{n} {s.url}' for n, s in stack.services.items())})")
        game_id = scenario(stack, seed, narrator)
        minilm_game_id = minilm_scenario(stack, narrator) if MINILM else None
        llm_game_id = llm_scenario(stack, narrator) if LLM else None
        print()
        narrator.say("where to look:")
        for name, service in stack.services.items():
            print(f"    {name:<11} {service.url}/docs")
        print(f"    {'explorer':<11} {stack.url('challenger')}/ui  (every request and game, live)")
        if game_id is not None:
            print(f"    {'the dispute':<11} {stack.url('challenger')}/ui/disputes/{game_id}  (the dissection, drawn)")
        if minilm_game_id is not None:
            print(
                f"    {'MiniLM':<11} {stack.url('challenger')}/ui/disputes/{minilm_game_id}  (both phases of the lie)"
            )
        if llm_game_id is not None:
            print(f"    {'SmolLM2':<11} {stack.url('challenger')}/ui/disputes/{llm_game_id}  (both phases of the lie)")
        if narrator.failures:
            narrator.say(f"{len(narrator.failures)} expected outcome(s) not seen: {'; '.join(narrator.failures)}")
        else:
            narrator.say("every expected outcome was seen")
        if os.environ.get("OPML_DEMO_EXIT") == "1":
            sys.exit(1 if narrator.failures else 0)
        narrator.say("serving until Ctrl-C")
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        stopping.wait()
    finally:
        stack.stop()


def scenario(stack: Stack, seed: Path, narrator: Narrator) -> int | None:
    """Run the scenario; returns the id of the dispute game it watched (None if there was none)."""
    converter, submitter = stack.url("converter"), stack.url("submitter")
    upload = httpx.post(
        f"{converter}/models",
        files={"file": ("mnist-small.state_dict", (seed / "mnist-small.state_dict").read_bytes())},
        data={"register": "true"},
        timeout=120,
    ).json()
    narrator.say(f"converter: the seed state_dict is model {upload['id'][:18]}.. ({upload['format']} format, "
                 f"{upload['size']:,} bytes), registered on-chain as model {upload['onchain_model_id']}")  # fmt: skip
    narrator.expect(
        upload["root"] == "0x" + _model_root((seed / "model.bin").read_bytes()).hex(),
        "the converted model is the seed's converted file, byte for byte (same root M)",
    )
    seven = base64.b64encode((seed / "input_7.bin").read_bytes()).decode()

    # 1. an honest request
    accepted = httpx.post(f"{submitter}/inference-requests", json={"model": upload["id"], "input_base64": seven},
                          timeout=60).json()  # fmt: skip
    narrator.say(f"POST /inference-requests: request {accepted['request_id']} on-chain ({accepted['gas_used']:,} gas)")
    started = time.monotonic()
    waiting = stack.config.parameters.challenge_window + 120  # a claim is final once its window has passed
    report = watch_request(stack, accepted["request_id"], narrator, waiting)
    result = report.get("result") or {}
    narrator.expect(result.get("predicted") == 7, f"request {accepted['request_id']} is final as a 7 "
                    f"({time.monotonic() - started:.1f} s after the request)")  # fmt: skip
    for tx in report["transactions"]:
        narrator.say(f"  {', '.join(tx['events']):<40} {tx['gas_used']:>9,} gas")

    # 2. a lying submitter joins
    steps = report["claims"][0]["steps"]
    lie_from = random.Random(7).randrange(1, steps)
    narrator.say(f"starting a lying submitter: its states are made up from step {lie_from:,} of {steps:,}")
    stack.start_service("liar", "submitter", {"SUBMITTER_FAULT_LIE": "states", "SUBMITTER_FAULT_LIE_FROM_STEP": str(lie_from),
                                              "SUBMITTER_DEV_ACCOUNT": "3"})  # fmt: skip
    accepted = httpx.post(f"{submitter}/inference-requests", json={"model": upload["id"], "input_base64": seven},
                          timeout=60).json()  # fmt: skip
    request_id = accepted["request_id"]
    narrator.say(f"POST /inference-requests: request {request_id}")
    game_id = _first_game(stack, request_id)
    if game_id is None:
        narrator.expect(False, "the challenger disputes the lie")
        return None
    narrator.say(f"the challenger disputes the lie: game {game_id}, {stack.url('challenger')}/disputes/{game_id} "
                 f"(watch it at {stack.url('challenger')}/ui/disputes/{game_id})")  # fmt: skip
    dispute = watch_dispute(stack, game_id, narrator)
    final_step = dispute.get("final_step") or {}
    narrator.say(f"  one step left: step {final_step.get('step', 0):,}, `{final_step.get('mnemonic')}` "
                 f"({final_step.get('instruction')}); the contract executes it")  # fmt: skip
    narrator.expect(dispute["status"] == "challenger_won", f"the challenger wins in {dispute['rounds']} rounds "
                    f"({dispute['gas_total']:,} gas for the whole dispute)")  # fmt: skip
    narrator.expect(
        dispute["lo"] == lie_from - 1, f"the game narrowed to the very step the lie starts at ({lie_from - 1:,})"
    )
    for bond in dispute["bonds"]:
        narrator.say(f"  {bond['kind']:>8} {bond['amount'] / 1e18:.3f} ETH to {bond['account']}")
    report = watch_request(stack, request_id, narrator, waiting)
    liar_claims = [claim for claim in report["claims"] if claim["status"] == "rejected"]
    narrator.expect(bool(liar_claims), "the lie is rejected")
    narrator.expect((report.get("result") or {}).get("predicted") == 7, "the honest claim is final as a 7")
    return game_id


def minilm_scenario(stack: Stack, narrator: Narrator) -> int | None:
    """all-MiniLM-L6-v2: a sentence as text, an honest embedding made final, a deep lie disputed; returns the
    id of the dispute game it watched (None if there was none)."""
    from .graph.native import evaluate
    from .models import minilm

    converter, submitter = stack.url("converter"), stack.url("submitter")
    print()
    narrator.say("all-MiniLM-L6-v2: exporting the packaged model to ONNX (input_ids, attention_mask [1, 16])...")
    onnx = minilm.export_onnx()
    upload = httpx.post(f"{converter}/models", files={"file": ("all-MiniLM-L6-v2.onnx", onnx)},
                        data={"register": "true"}, timeout=600).json()  # fmt: skip
    narrator.say(f"converter: {len(onnx):,} bytes of ONNX are model {upload['id'][:18]}.. ({upload['size']:,} bytes, "
                 f"{len(upload['summary']['layers'])} ops), registered on-chain as model "
                 f"{upload['onchain_model_id']}")  # fmt: skip

    # The MNIST liar would lie about this request too; this one flips a bit of one node's value deep inside it.
    if "liar" in stack.services:
        stack.services.pop("liar").stop()
    narrator.say(f"starting a lying submitter that flips one bit of node {MINILM_LIED_NODE}'s value")
    stack.start_service("minilm-liar", "submitter", {"SUBMITTER_FAULT_LIE": "states", "SUBMITTER_DEV_ACCOUNT": "3",
                        "SUBMITTER_FAULT_LIE_FROM_STEP": str(MINILM_LIED_NODE + 1)})  # fmt: skip
    response = httpx.post(f"{submitter}/inference-requests", json={"model": upload["id"], "text": MINILM_SENTENCE},
                          timeout=120)  # fmt: skip
    if response.status_code != 202:
        narrator.expect(False, f"POST /inference-requests with text is accepted ({response.text})")
        return None
    request_id = response.json()["request_id"]
    requested = time.monotonic()
    narrator.say(f"POST /inference-requests {{'text': {MINILM_SENTENCE!r}}}: request {request_id} "
                 f"({response.json()['gas_used']:,} gas); a graph model plays the two-phase game: every agent "
                 "computes its 186 nodes natively (under a second), and only a dispute runs a node in the VM")  # fmt: skip
    parameters = stack.config.parameters
    dispute = two_phase_dispute(stack, narrator, request_id, requested, "the MiniLM lie")
    if dispute is None:
        return None
    link = dispute.get("link") or {}
    narrator.expect(link.get("node") == MINILM_LIED_NODE,
                    f"phase 1 narrowed it to the lied node ({MINILM_LIED_NODE}, {link.get('op')})")  # fmt: skip
    report = watch_request(stack, request_id, narrator, parameters.challenge_window + 600)
    result = report.get("result") or {}
    honest = [claim for claim in report["claims"] if claim["status"] == "finalized"]
    narrator.expect(bool(honest) and bool(result.get("embedding")), f"the honest embedding is final "
                    f"({time.monotonic() - requested:.0f} s after the request, "
                    f"{honest[0]['steps'] if honest else 0:,} nodes)")  # fmt: skip
    if result.get("embedding"):
        model = httpx.get(f"{converter}/models/{upload['id']}/file", timeout=120).content
        expected = evaluate(model, minilm.encode_text(MINILM_SENTENCE)).output
        narrator.say(f"  embedding [{', '.join(f'{v:.4f}' for v in result['embedding'][:4])}, ...] "
                     f"({len(result['embedding'])} floats), norm {result['norm']:.7f}")  # fmt: skip
        narrator.expect(result["output"] == "0x" + expected.hex(),
                        "the on-chain embedding is the native run's, bit for bit")  # fmt: skip
    narrator.expect(any(claim["status"] == "rejected" for claim in report["claims"]), "the MiniLM lie is rejected")
    return dispute["id"]


def llm_scenario(stack: Stack, narrator: Narrator) -> int | None:
    """SmolLM2-135M-Instruct: a question answered and final, then a liar whose answer differs from one token on,
    disputed through both phases of the two-phase game; returns the id of the game it watched (None if none)."""
    from .models.llm.gguf_import import packaged_model_file
    from .models.llm.graph import GenerationGraph, evaluate_generation, weights_of
    from .models.llm.requests import chat_input
    from .models.llm.tokenizer import packaged_tokenizer

    converter, submitter = stack.url("converter"), stack.url("submitter")
    parameters = stack.config.parameters
    messages = [{"role": "user", "content": LLM_QUESTION}]
    print()
    narrator.say("SmolLM2-135M-Instruct: converting the packaged Q4_1 GGUF to an OPLM model file...")
    model = packaged_model_file()
    upload = httpx.post(f"{converter}/models", files={"file": ("smollm2.oplm", model)}, data={"register": "true"},
                        timeout=600).json()  # fmt: skip
    config = upload.get("language_model") or {}
    narrator.say(f"converter: {upload['size']:,} bytes are model {upload['id'][:18]}.. ({upload['format']} format: "
                 f"{config.get('layers')} layers of width {config.get('width')}, a vocabulary of "
                 f"{config.get('vocabulary'):,}, a context of {config.get('context'):,}), registered on-chain as "
                 f"model {upload['onchain_model_id']}")  # fmt: skip
    weights = weights_of(model)
    tokenizer = packaged_tokenizer()
    input = chat_input(messages, LLM_NEW_TOKENS, weights.config)
    reference = evaluate_generation(weights, input)  # what the honest answer must be, token for token
    body = {"model": upload["id"], "messages": messages, "max_new_tokens": LLM_NEW_TOKENS}

    # 1. an honest answer
    if "liar" in stack.services:  # the MNIST liar would lie about this one too
        stack.services.pop("liar").stop()
    response = httpx.post(f"{submitter}/inference-requests", json=body, timeout=120)
    if response.status_code != 202:
        narrator.expect(False, f"POST /inference-requests with messages is accepted ({response.text})")
        return None
    request_id = response.json()["request_id"]
    requested = time.monotonic()
    narrator.say(f"POST /inference-requests {{'messages': [{{'role': 'user', 'content': {LLM_QUESTION!r}}}], "
                 f"'max_new_tokens': {LLM_NEW_TOKENS}}}: request {request_id} ({response.json()['gas_used']:,} gas); "
                 "the submitter's agent computes the generation natively and claims it")  # fmt: skip
    report = watch_request(stack, request_id, narrator, parameters.challenge_window + 300)
    generation = report.get("generation") or {}
    narrator.say(f"  prompt ({len(generation.get('prompt_tokens', []))} tokens): {generation.get('prompt')!r}")
    narrator.say(f"  answer: {generation.get('text')!r} (tokens {generation.get('tokens')})")
    narrator.expect(generation.get("tokens") == reference.tokens,
                    f"the answer is final ({time.monotonic() - requested:.0f} s after the request; a "
                    f"{parameters.challenge_window} s window), token for token the reference's")  # fmt: skip

    # 2. a liar whose answer differs from one token on
    graph = GenerationGraph(weights.config, len(reference.request.prompt), LLM_NEW_TOKENS)
    lied_node = LLM_LIED_TOKEN * graph.step_nodes + graph.argmax_offset
    lied = bytearray(reference.values[lied_node + 1])
    lied[-1] ^= 1  # what the liar does: the token this step chose becomes another, and the rest follows from it
    lie = evaluate_generation(weights, input, replaced={lied_node + 1: bytes(lied)})
    narrator.say(f"starting a lying submitter: it changes the token of step {LLM_LIED_TOKEN} (node {lied_node:,} of "
                 f"{graph.node_count:,}, an argmax) and computes the rest of its answer from it: "
                 f"{tokenizer.decode(lie.tokens)!r}")  # fmt: skip
    stack.start_service("llm-liar", "submitter", {"SUBMITTER_FAULT_LIE": "answer", "SUBMITTER_DEV_ACCOUNT": "3",
                        "SUBMITTER_FAULT_LIE_FROM_STEP": str(lied_node + 1)})  # fmt: skip
    response = httpx.post(f"{submitter}/inference-requests", json=body, timeout=120)
    request_id = response.json()["request_id"]
    requested = time.monotonic()
    narrator.say(f"POST /inference-requests (the same question): request {request_id}")
    dispute = two_phase_dispute(stack, narrator, request_id, requested, "the lying answer")
    if dispute is None:
        return None
    link = dispute.get("link") or {}
    narrator.expect(link.get("node") == lied_node and link.get("step") == LLM_LIED_TOKEN and link.get("op") == "argmax",
                    f"phase 1 narrowed it to the lied node: node {lied_node:,}, the argmax of token "
                    f"{LLM_LIED_TOKEN}")  # fmt: skip
    for bond in dispute["bonds"]:
        narrator.say(f"  {bond['kind']:>8} {bond['amount'] / 1e18:.3f} ETH to {bond['account']}")
    report = watch_request(stack, request_id, narrator, parameters.challenge_window + 600)
    generation = report.get("generation") or {}
    narrator.expect(any(claim["status"] == "rejected" for claim in report["claims"]), "the lying answer is rejected")
    narrator.expect(generation.get("tokens") == reference.tokens,
                    f"the honest answer is final: {generation.get('text')!r}")  # fmt: skip
    return dispute["id"]


def two_phase_dispute(stack: Stack, narrator: Narrator, request_id: int, requested: float, lie: str) -> dict | None:
    """The challenger's game against `lie` told round by round through both phases, to the one step the contract
    executes; expected won by the challenger. None (an expectation not seen) if no game started."""
    parameters = stack.config.parameters
    game_id = _first_game(stack, request_id, timeout=parameters.challenge_window + 120)
    if game_id is None:
        narrator.expect(False, f"the challenger disputes {lie}")
        return None
    narrator.say(f"the challenger disputes the lie ({time.monotonic() - requested:.0f} s after the request): game "
                 f"{game_id}, watch it at {stack.url('challenger')}/ui/disputes/{game_id}")  # fmt: skip
    dispute = watch_two_phase_dispute(stack, game_id, narrator, timeout=2 * parameters.clock_budget + 120)
    final_step = dispute.get("final_step") or {}
    narrator.say(f"  one step left of the node's run: step {final_step.get('step', 0):,}, "
                 f"`{final_step.get('mnemonic')}`; the contract executes it")  # fmt: skip
    narrator.expect(dispute["status"] == "challenger_won", f"the challenger wins in {dispute['rounds']} rounds "
                    f"({dispute['gas_total']:,} gas for the whole dispute)")  # fmt: skip
    return dispute


def watch_two_phase_dispute(stack: Stack, game_id: int, narrator: Narrator, timeout: float) -> dict:
    """Poll GET /disputes/{id}, telling each round of both phases (phase 1's points are nodes: each named by its op,
    and an LLM's by its token step, layer and role) and the link, until the game is over and its bonds indexed."""
    url = f"{stack.url('challenger')}/disputes/{game_id}"
    shown, linked, deadline = 0, False, time.monotonic() + timeout
    dispute: dict = {}
    while time.monotonic() < deadline:
        dispute = httpx.get(url, timeout=30).json()
        for round_ in dispute["history"][shown:]:
            if round_["segment"] is None:
                break
            if round_["phase"] == "run" and not linked and dispute.get("link"):
                link = dispute["link"]
                reads = ", ".join(f"value {operand['slot']:,}" for operand in link["operands"])
                narrator.say(f"  linked: node {link['node']:,} ({_node_words(link)}) reads {reads}; its run in the "
                             f"VM is {link['steps']:,} steps")  # fmt: skip
                linked = True
            what = "nodes" if round_["phase"] == "graph" else "steps"
            node = ""
            if round_["phase"] == "graph" and round_.get("nodes"):
                index = round_["segment"]
                chosen = round_["nodes"][index] if index < len(round_["nodes"]) else None
                node = f" (ending with node {chosen['index']:,}: {_node_words(chosen)})" if chosen else ""
            narrator.say(f"  round {round_['round']} (phase {1 if round_['phase'] == 'graph' else 2}): "
                         f"[{round_['lo']:,}, {round_['hi']:,}] {what} -> [{round_['next_lo']:,}, "
                         f"{round_['next_hi']:,}]{node}")  # fmt: skip
            shown += 1
        if dispute["status"] != "active" and shown >= dispute["rounds"] and dispute["bonds"]:
            return dispute
        time.sleep(0.3)
    return dispute


def _node_words(node: dict) -> str:
    """An LLM node in words: token 3, layer 12, gate (matmul)."""
    parts = [f"token {node['step']}"] if node.get("step") is not None else []
    if node.get("layer") is not None:
        parts.append(f"layer {node['layer']}")
    if node.get("role"):
        parts.append(f"{node['role']} ({node['op']})")
    elif node.get("op"):
        parts.append(node["op"])
    return ", ".join(parts)


def _first_game(stack: Stack, request_id: int, timeout: float = 60.0) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = httpx.get(f"{stack.url('challenger')}/disputes", params={"request_id": request_id}, timeout=30).json()
        if page["items"]:
            return page["items"][-1]["id"]
        time.sleep(0.3)
    return None


def _model_root(model: bytes) -> bytes:
    from .models.formats import model_root

    return model_root(model)


if __name__ == "__main__":
    main()
