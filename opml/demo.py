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
from .stack import Stack, StackConfig

DATA_DIR = Path(os.environ.get("OPML_DEMO_DATA", "var/demo"))


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
    if os.environ.get("OPML_DEMO_FREE_PORTS") == "1":  # beside other stacks (the tests)
        config = StackConfig.ephemeral(DATA_DIR, echo=False)
    else:
        config = StackConfig(data_dir=DATA_DIR, echo=False)
    stack = Stack(config)
    narrator.say("starting anvil, deploying the contracts, starting converter, vm-worker, submitter, challenger...")
    stack.start()
    try:
        narrator.say(f"stack ready ({', '.join(f'{n} {s.url}' for n, s in stack.services.items())})")
        game_id = scenario(stack, seed, narrator)
        print()
        narrator.say("where to look:")
        for name, service in stack.services.items():
            print(f"    {name:<11} {service.url}/docs")
        print(f"    {'explorer':<11} {stack.url('challenger')}/ui  (every request and game, live)")
        if game_id is not None:
            print(f"    {'the dispute':<11} {stack.url('challenger')}/ui/disputes/{game_id}  (the dissection, drawn)")
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
    report = watch_request(stack, accepted["request_id"], narrator)
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
    report = watch_request(stack, request_id, narrator)
    liar_claims = [claim for claim in report["claims"] if claim["status"] == "rejected"]
    narrator.expect(bool(liar_claims), "the lie is rejected")
    narrator.expect((report.get("result") or {}).get("predicted") == 7, "the honest claim is final as a 7")
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
