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
5. replaces the liar by one whose states are made up from step 12,000,000,000 of the 1.63e10-step
   run, sends a sentence as `text` to POST /inference-requests, and watches the challenger dispute
   the lie through 9 rounds to that step and win, and the honest embedding become final, checked
   bit for bit against the reference executor.

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
from .protocol.parameters import MINILM_STEP_LIMIT, Parameters, sized_for
from .stack import Stack, StackConfig

DATA_DIR = Path(os.environ.get("OPML_DEMO_DATA", "var/demo"))
MINILM = os.environ.get("OPML_DEMO_MINILM") == "1"
MINILM_SENTENCE = "A man is eating food."
MINILM_LIE_FROM_STEP = 12_000_000_000  # about three quarters into the run, deep in the transformer's layers


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
    # A run of 1.6e10 steps needs a deployment that allows it, with a window and clocks that cover it.
    parameters = sized_for(MINILM_STEP_LIMIT) if MINILM else Parameters()
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
    stack.start()
    try:
        narrator.say(f"stack ready ({', '.join(f'{n} {s.url}' for n, s in stack.services.items())})")
        game_id = scenario(stack, seed, narrator)
        minilm_game_id = minilm_scenario(stack, narrator) if MINILM else None
        print()
        narrator.say("where to look:")
        for name, service in stack.services.items():
            print(f"    {name:<11} {service.url}/docs")
        print(f"    {'explorer':<11} {stack.url('challenger')}/ui  (every request and game, live)")
        if game_id is not None:
            print(f"    {'the dispute':<11} {stack.url('challenger')}/ui/disputes/{game_id}  (the dissection, drawn)")
        if minilm_game_id is not None:
            print(
                f"    {'MiniLM':<11} {stack.url('challenger')}/ui/disputes/{minilm_game_id}  (the lie in 1.6e10 steps)"
            )
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
    from .models import minilm
    from .models.formats import Prediction, parse_model
    from .models.reference import run

    converter, submitter = stack.url("converter"), stack.url("submitter")
    print()
    narrator.say("all-MiniLM-L6-v2: exporting the packaged model to ONNX (input_ids, attention_mask [1, 16])...")
    onnx = minilm.export_onnx()
    upload = httpx.post(f"{converter}/models", files={"file": ("all-MiniLM-L6-v2.onnx", onnx)},
                        data={"register": "true"}, timeout=600).json()  # fmt: skip
    narrator.say(f"converter: {len(onnx):,} bytes of ONNX are model {upload['id'][:18]}.. ({upload['size']:,} bytes, "
                 f"{len(upload['summary']['layers'])} ops), registered on-chain as model "
                 f"{upload['onchain_model_id']}")  # fmt: skip

    # The MNIST liar would lie about this run from a step near its start; this one lies from deep inside it.
    if "liar" in stack.services:
        stack.services.pop("liar").stop()
    narrator.say(f"starting a lying submitter whose states are made up from step {MINILM_LIE_FROM_STEP:,}")
    stack.start_service("minilm-liar", "submitter", {"SUBMITTER_FAULT_LIE": "states", "SUBMITTER_DEV_ACCOUNT": "3",
                        "SUBMITTER_FAULT_LIE_FROM_STEP": str(MINILM_LIE_FROM_STEP)})  # fmt: skip
    response = httpx.post(f"{submitter}/inference-requests", json={"model": upload["id"], "text": MINILM_SENTENCE},
                          timeout=120)  # fmt: skip
    if response.status_code != 202:
        narrator.expect(False, f"POST /inference-requests with text is accepted ({response.text})")
        return None
    request_id = response.json()["request_id"]
    requested = time.monotonic()
    narrator.say(f"POST /inference-requests {{'text': {MINILM_SENTENCE!r}}}: request {request_id} "
                 f"({response.json()['gas_used']:,} gas); the VM runs it once on the vm-worker for the submitter "
                 "and the challenger, the liar runs it in-process (about a minute each)")  # fmt: skip
    parameters = stack.config.parameters
    game_id = _first_game(stack, request_id, timeout=900)
    if game_id is None:
        narrator.expect(False, "the challenger disputes the MiniLM lie")
        return None
    narrator.say(f"the challenger disputes the lie ({time.monotonic() - requested:.0f} s after the request): game "
                 f"{game_id}, watch it at {stack.url('challenger')}/ui/disputes/{game_id}")  # fmt: skip
    dispute = watch_dispute(stack, game_id, narrator, timeout=2 * parameters.clock_budget + 120)
    final_step = dispute.get("final_step") or {}
    narrator.say(f"  one step left: step {final_step.get('step', 0):,}, `{final_step.get('mnemonic')}`; "
                 "the contract executes it")  # fmt: skip
    narrator.expect(dispute["status"] == "challenger_won", f"the challenger wins in {dispute['rounds']} rounds "
                    f"({dispute['gas_total']:,} gas for the whole dispute)")  # fmt: skip
    narrator.expect(dispute["lo"] == MINILM_LIE_FROM_STEP - 1,
                    f"the game narrowed to the step the lie starts at ({MINILM_LIE_FROM_STEP - 1:,})")  # fmt: skip
    report = watch_request(stack, request_id, narrator, parameters.challenge_window + 600)
    result = report.get("result") or {}
    honest = [claim for claim in report["claims"] if claim["status"] == "finalized"]
    narrator.expect(bool(honest) and bool(result.get("embedding")), f"the honest embedding is final "
                    f"({time.monotonic() - requested:.0f} s after the request, "
                    f"{honest[0]['steps'] if honest else 0:,} steps)")  # fmt: skip
    if result.get("embedding"):
        model = httpx.get(f"{converter}/models/{upload['id']}/file", timeout=120).content
        expected = run(parse_model(model), minilm.encode_text(MINILM_SENTENCE)).scores
        on_chain = Prediction.from_bytes(bytes.fromhex(result["output"][2:])).scores
        narrator.say(f"  embedding [{', '.join(f'{v:.4f}' for v in result['embedding'][:4])}, ...] "
                     f"({len(result['embedding'])} floats), norm {result['norm']:.7f}")  # fmt: skip
        narrator.expect(on_chain.tobytes() == expected.tobytes(),
                        "the on-chain embedding is the reference executor's, bit for bit")  # fmt: skip
    narrator.expect(any(claim["status"] == "rejected" for claim in report["claims"]), "the MiniLM lie is rejected")
    return game_id


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
