"""The whole system end to end: the four services as processes on anvil, driven over HTTP.

    python bench/e2e.py [--json]

Prints its figures; the last line is one JSON object:
- honest_request_s: POST /inference-requests to the submitter's claim mined (median of 3)
- dispute_wall_s, dispute_rounds, dispute_total_gas: a lying claim (states made up from the middle
  of the seed model's run) from the moment it is mined to the end of the challenger's game
- requests_per_min: honest requests sent for 30 s by 3 clients, every one of them final
- recovery_s: the challenger killed (SIGKILL) mid-game while it is to move, to its next move
  after a restart (the restart's process start included)
Targets: dispute_wall_s <= 15 (the seed's whole challenge takes about 2 minutes on a local
chain), requests_per_min >= 300, recovery_s <= 5. Finishes in under 180 s.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opml.chain.anvil import dev_key  # noqa: E402
from opml.chain.registry import Parameters  # noqa: E402
from opml.resources import seed_model_dir  # noqa: E402
from opml.stack import Stack, StackConfig  # noqa: E402

PARAMETERS = Parameters(challenge_window=8, clock_budget=30)
SEVEN = (seed_model_dir() / "input_7.bin").read_bytes()
LIAR_ADDRESS = Account.from_key(dev_key(3)).address
LIAR_ENV = {"SUBMITTER_DEV_ACCOUNT": "3", "SUBMITTER_FAULT_LIE": "states", "SUBMITTER_FAULT_LIE_FROM_STEP": "977000"}


class Bench:
    def __init__(self, stack: Stack):
        self.stack = stack
        self.http = httpx.Client(timeout=60)
        upload = self.http.post(
            f"{stack.url('converter')}/models",
            files={"file": ("seed.state_dict", (seed_model_dir() / "mnist-small.state_dict").read_bytes())},
            data={"register": "true"},
        )
        self.model = upload.json()["id"]

    def request(self, input: bytes = SEVEN) -> int:
        body = {"model": self.model, "input_base64": base64.b64encode(input).decode()}
        response = self.http.post(f"{self.stack.url('submitter')}/inference-requests", json=body)
        response.raise_for_status()
        return response.json()["request_id"]

    def report(self, request_id: int) -> dict:
        response = self.http.get(f"{self.stack.url('submitter')}/inference-requests/{request_id}")
        return response.json() if response.status_code == 200 else {}

    def dispute(self, game_id: int) -> dict:
        return self.http.get(f"{self.stack.url('challenger')}/disputes/{game_id}").json()

    def until(self, condition, timeout: float = 60.0, interval: float = 0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError("the bench waited too long")

    # --- figures -------------------------------------------------------------------------------------

    def honest_request_s(self) -> float:
        samples = []
        for index in range(3):
            started = time.monotonic()
            request_id = self.request(SEVEN[:-1] + bytes([index]))
            self.until(lambda: self.report(request_id).get("claims"))
            samples.append(time.monotonic() - started)
        return statistics.median(samples)

    def lie_disputed(self) -> dict:
        liar = self.stack.start_service("liar", "submitter", LIAR_ENV)
        try:
            request_id = self.request(SEVEN[:-1] + b"\x99")
            self.until(lambda: _claimed_by(self.report(request_id), LIAR_ADDRESS), 60, 0.02)
            claimed = time.monotonic()
            game_id = self.until(lambda: (games := self.report(request_id).get("games")) and games[0]["id"], 60)
            self.until(lambda: self.dispute(game_id)["status"] != "active", 60)
            wall = time.monotonic() - claimed
            dispute = self.until(lambda: (d := self.dispute(game_id))["bonds"] and d, 30)
            return {"dispute_wall_s": round(wall, 2), "dispute_rounds": dispute["rounds"],
                    "dispute_total_gas": dispute["gas_total"]}  # fmt: skip
        finally:
            liar.stop()
            self.stack.services.pop("liar", None)

    def requests_per_min(self, seconds: float = 30.0, clients: int = 3) -> float:
        sent: list[int] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + seconds

        def client(index: int) -> None:
            http = httpx.Client(timeout=60)
            counter = 0
            while time.monotonic() < stop_at:
                pixels = bytearray(SEVEN)
                pixels[index * 200 + counter % 200] ^= 0x55  # a different input each time
                counter += 1
                body = {"model": self.model, "input_base64": base64.b64encode(bytes(pixels)).decode()}
                response = http.post(f"{self.stack.url('submitter')}/inference-requests", json=body)
                if response.status_code == 202:
                    with lock:
                        sent.append(response.json()["request_id"])

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pending = set(sent)

        def all_final() -> bool:
            for request_id in list(pending):
                if self.report(request_id).get("status") == "final":
                    pending.discard(request_id)
            return not pending

        self.until(all_final, timeout=90, interval=0.5)
        return len(sent) / seconds * 60

    def recovery_s(self) -> float:
        liar = self.stack.start_service("liar", "submitter", LIAR_ENV)
        try:
            request_id = self.request(SEVEN[:-1] + b"\x42")
            game_id = self.until(lambda: (games := self.report(request_id).get("games")) and games[0]["id"], 60)
            game = self.until(
                lambda: (g := self.dispute(game_id))["rounds"] >= 2 and g["turn"] == "challenger" and g, 60, 0.01
            )
            challenger = self.stack.services["challenger"]
            port = int(challenger.url.rsplit(":", 1)[1])
            challenger.kill()
            rounds = game["rounds"]
            restarted = time.monotonic()
            self.stack.start_service("challenger", "challenger", {}, port=port, wait=False)
            self.until(lambda: _rounds_or_none(self, game_id) not in (None, rounds), 60, 0.02)
            return round(time.monotonic() - restarted, 2)
        finally:
            liar.stop()
            self.stack.services.pop("liar", None)


def _claimed_by(report: dict, address: str) -> bool:
    return any(claim["claimant"] == address for claim in report.get("claims", []))


def _rounds_or_none(bench: Bench, game_id: int) -> int | None:
    try:
        return bench.dispute(game_id)["rounds"]
    except (httpx.HTTPError, KeyError, ValueError):
        return None  # the challenger is still starting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory() as data,
        Stack(StackConfig.ephemeral(Path(data), parameters=PARAMETERS, echo=False, poll_interval=0.1)) as stack,
    ):
        bench = Bench(stack)
        figures = {"honest_request_s": round(bench.honest_request_s(), 2)}
        figures |= bench.lie_disputed()
        figures["recovery_s"] = bench.recovery_s()
        figures["requests_per_min"] = round(bench.requests_per_min(), 1)
    figures["bench_s"] = round(time.monotonic() - started, 1)
    if not args.json:
        for name, value in figures.items():
            print(f"{name:<20} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
