"""The whole system end to end: the four services as processes on anvil, driven over HTTP.

    python bench/e2e.py [--json]

Prints its figures; the last line is one JSON object:
- honest_request_s: POST /inference-requests to the submitter's claim mined (median of 3)
- dispute_wall_s, dispute_rounds, dispute_total_gas: a lying claim (states made up from the middle
  of the seed model's run) from the moment it is mined to the end of the challenger's game
- requests_per_min: honest requests sent for 30 s by 3 clients, every one of them final
- recovery_s: the challenger killed (SIGKILL) mid-game while it is to move, to its next move
  after a restart (the restart's process start included)
- against the clocks, over every move the honest agents make in several disputes at once (3 requests
  a lying submitter claims wrongly, each lie disputed by the challenger and by the honest submitter, and
  a faulty challenger disputing every claim, the honest ones defended by the honest submitter):
  move_latency_ms_p50 and _p99 (the opponent's move mined to ours mined, by wall clock: a watcher
  notes when each block appears),
  challenge_latency_ms_p99 (the claim mined to its challenge mined), min_deadline_margin_s (the least
  time left on the mover's clock, or in the claim's window, when an action was mined); measured on
  the idle machine and again with a CPU hog beside it (one busy process per core, started and
  stopped here): the same fields with `_loaded`, and honest_won_by_step_loaded (every game of the
  loaded run won by the honest side at the final step, not by a timeout of its own)
Targets: dispute_wall_s <= 15 (the seed's whole challenge takes about 2 minutes on a local
chain), requests_per_min >= 300, recovery_s <= 5, move_latency_ms_p99 <= 1000 and
move_latency_ms_p99_loaded <= 2000. Finishes in about 5 minutes.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opml.agents.timing import BlockWatch, game_timeline  # noqa: E402
from opml.chain.anvil import dev_key  # noqa: E402
from opml.chain.events import EventReader  # noqa: E402
from opml.chain.registry import Registry  # noqa: E402
from opml.protocol.parameters import Parameters
from opml.protocol.types import GameStatus
from opml.resources import seed_model_dir  # noqa: E402
from opml.stack import Stack, StackConfig  # noqa: E402
from stack_client import ServicesClient  # noqa: E402  (bench/stack_client.py)

PARAMETERS = Parameters(challenge_window=8, clock_budget=30)
SEVEN = (seed_model_dir() / "input_7.bin").read_bytes()
LIAR_ADDRESS = Account.from_key(dev_key(3)).address
LIAR_ENV = {"SUBMITTER_DEV_ACCOUNT": "3", "SUBMITTER_FAULT_LIE": "states", "SUBMITTER_FAULT_LIE_FROM_STEP": "977000"}
DISPUTER_ENV = {"CHALLENGER_DEV_ACCOUNT": "4", "CHALLENGER_FAULT_DISPUTE_HONEST": "true"}


class Bench(ServicesClient):
    def __init__(self, stack: Stack):
        super().__init__(stack)
        self.model = self.upload("seed.state_dict", (seed_model_dir() / "mnist-small.state_dict").read_bytes())

    def request(self, input: bytes = SEVEN) -> int:
        return super().request(self.model, input)

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

    # --- against the clocks --------------------------------------------------------------------------

    def deadlines(self, requests: int = 3) -> dict:
        """Several disputes at once, every move of the honest agents timed (see the module docstring). On each
        of `requests` requests a lying submitter claims wrongly (the challenger and the honest submitter
        dispute it: their selects and final steps are timed) and a faulty challenger disputes every claim,
        the honest one included (the honest submitter's bisections and final steps are timed): four games
        a request."""
        registry = Registry(_w3(self.stack), self.stack.deployment.registry)
        start_block = registry.w3.eth.block_number
        honest = {Account.from_key(dev_key(account)).address for account in (1, 2)}
        faulty = [self.stack.start_service("liar", "submitter", LIAR_ENV),
                  self.stack.start_service("disputer", "challenger", DISPUTER_ENV)]  # fmt: skip
        try:
            with BlockWatch(registry.w3) as watch:
                salt = registry.w3.eth.block_number % 251
                request_ids = [self.request(SEVEN[:-2] + bytes([salt, index])) for index in range(requests)]
                games = self.until(lambda: _games_over(self, request_ids, 4 * requests), 240, 0.2)
                seen = dict(watch.seen)
        finally:
            for service in faulty:
                service.stop()
                self.stack.services.pop(service.name, None)
        events, _ = EventReader(registry.w3, registry.contract).read(start_block, timestamps=True)
        parameters = self.stack.config.parameters
        claims = {event.args["claimId"]: event for event in events if event.name == "ClaimSubmitted"}
        latencies, challenges, margins, by_step = [], [], [], True
        for game_id in games:
            game = registry.game(game_id)
            defender = registry.claim(game.claim_id).claimant
            moves = [event for event in events if event.args.get("gameId") == game_id and event.name in MOVES]
            claim = claims[game.claim_id]
            timeline = game_timeline(moves, claim.block_timestamp, parameters.challenge_window, parameters.clock_budget)
            previous = claim
            for event, timing in zip(moves, timeline, strict=True):
                mover = _mover(registry, event, game.challenger, defender)
                # a party's own moves: not another game's `timeout` swept by a bystander when a clock ran out
                if mover in honest and mover in (game.challenger, defender) and not _is_timeout(registry, event):
                    latency = _ms(seen.get(previous.block_number), seen.get(event.block_number))
                    (challenges if event.name == "GameStarted" else latencies).append(latency)
                    if os.environ.get("OPML_BENCH_DEBUG") and latency is not None and latency > 1500:
                        print(
                            f"slow: game {game_id} {previous.name}@{previous.block_number} -> {event.name}@"
                            f"{event.block_number} by {mover[:8]} {latency} ms",
                            file=sys.stderr,
                        )
                    if event.name != "GameEnded":
                        margins.append(timing.left)
                previous = event
            if game.challenger in honest or defender in honest:  # not the two faulty ones' game
                honest_side_won = (game.challenger in honest) == (game.status == GameStatus.CHALLENGER_WON)
                by_step &= honest_side_won and game.hi - game.lo == 1
        latencies = sorted(value for value in latencies if value is not None)
        return {
            "move_latency_ms_p50": _percentile(latencies, 50),
            "move_latency_ms_p99": _percentile(latencies, 99),
            "challenge_latency_ms_p99": _percentile(sorted(v for v in challenges if v is not None), 99),
            "min_deadline_margin_s": min(margins),
            "moves_timed": len(latencies),
            "honest_won_by_step": by_step,
        }


def _is_timeout(registry: Registry, event) -> bool:
    if event.name != "GameEnded":
        return False
    data = registry.w3.eth.get_transaction(event.tx_hash)["input"]
    return registry.contract.decode_function_input(data)[0].fn_name == "timeout"


def _mover(registry: Registry, event, challenger: str, defender: str) -> str:
    if event.name in ("GameStarted", "SegmentSelected"):
        return challenger
    if event.name == "Bisected":
        return defender
    return registry.w3.eth.get_transaction(event.tx_hash)["from"]  # a resolve or a timeout: anyone's


MOVES = ("GameStarted", "Bisected", "SegmentSelected", "GameEnded")


def _w3(stack: Stack):
    from opml.chain.client import connect

    return connect(stack.rpc_url)


def _games_over(bench: Bench, request_ids: list[int], count: int) -> list[int] | None:
    games = [game for request_id in request_ids for game in bench.report(request_id).get("games", [])]
    if len(games) >= count and all(game["status"] != "active" for game in games):
        return sorted(game["id"] for game in games)
    return None


def _ms(first: float | None, second: float | None) -> float | None:
    return None if first is None or second is None else round((second - first) * 1000, 1)


def _percentile(values: list[float], percent: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(percent / 100 * len(values) + 0.5) - 1))
    return values[index]


def _spin() -> None:
    while True:
        pass


class CpuHog:
    """One busy process per core, for as long as the block lasts."""

    def __enter__(self) -> CpuHog:
        self.processes = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(os.cpu_count() or 1)]
        for process in self.processes:
            process.start()
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join(5)


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
        figures |= bench.deadlines()
        with CpuHog():
            figures |= {f"{name}_loaded": value for name, value in bench.deadlines().items()}
        figures["recovery_s"] = bench.recovery_s()
        figures["requests_per_min"] = round(bench.requests_per_min(), 1)
    figures["bench_s"] = round(time.monotonic() - started, 1)
    if not args.json:
        for name, value in figures.items():
            print(f"{name:<20} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
