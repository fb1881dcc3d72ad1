"""The read model (opml.readmodel) over a real anvil, the agents' store (SQLite and a real PostgreSQL server)
and the registry, without the services.

Most of it plays on a chain of made-up requests, claims and games (a program nobody has: no agent could play
them), with block times set by hand, so every status, move time and margin is known exactly; the store is
filled the way an agent's monitor fills it. The alert comes from real agents: a lie that becomes final past
a challenger that computed the truth but fell silent.
"""

from __future__ import annotations

import ast
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from opml.agents.challenger import ChallengerAgent
from opml.agents.runtime import AgentConfig
from opml.agents.solvers import ChallengerFaults, SubmitterFaults
from opml.agents.store import REGISTRY_CURSOR, AgentStore
from opml.agents.submitter import SubmitterAgent
from opml.agents.traces import LocalTraces, StaticModels
from opml.chain.anvil import dev_key
from opml.chain.client import JournalEntry, TransactionManager, connect
from opml.chain.deploy import (
    ProgramImage,
    deploy_contracts,
    deploy_with_defaults,
    register_model,
    register_program,
    seed_model,
)
from opml.chain.events import EventReader
from opml.chain.registry import Registry
from opml.protocol.claims import FinalClaim
from opml.protocol.parameters import Parameters
from opml.protocol.types import RequestStatus
from opml.readmodel import ReadModel, Receipts
from opml.resources import seed_model_dir
from opml.service.db import ensure_database
from opml.vm.state import State

ROOT = Path(__file__).resolve().parents[2]
PARAMETERS = Parameters(challenge_window=600, clock_budget=300, request_timeout=1_000)
STEPS = 1_953_757
OWNER, CLAIMANT, US, OTHER = 0, 1, 2, 3  # dev accounts; US: the service's agent whose journal the store holds


def dev(w3: Web3, account: int) -> TransactionManager:
    return TransactionManager(w3, dev_key(account), poll_interval=0.005)


def address(account: int) -> str:
    return Account.from_key(dev_key(account)).address


def next_block_at(w3: Web3, timestamp: int) -> None:
    w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])


def chain_time(w3: Web3) -> int:
    return w3.eth.get_block("latest")["timestamp"]


def made_up_claim(seed: int) -> FinalClaim:
    state = State(Web3.keccak(seed.to_bytes(8, "big")), 0x400000, 0x400004, exited=True, step=STEPS)
    return FinalClaim(state, b"", ())


def claim(registry: Registry, tm: TransactionManager, request_id: int, seed: int) -> int:
    made_up = made_up_claim(seed)
    tm.send(registry.commit_claim(request_id, made_up, tm.address))
    tm.send(registry.submit_claim(request_id, made_up), value=registry.parameters.claim_bond)
    return registry.count("claim")


def hashes_for(registry: Registry, game_id: int) -> list[bytes]:
    game = registry.game(game_id)
    return [Web3.keccak(text=f"{game_id}/{step}") for step in registry.points(game.lo, game.hi)[1:-1]]


@dataclass(frozen=True)
class Settled:
    """A transaction as the journal of account US holds it: recorded, then settled (status -1: never mined)."""

    entry: JournalEntry
    status: int
    gas_used: int
    block_number: int


def send_reverting(w3: Web3, account: int, call, intent: str, value: int = 0) -> Settled:
    """What a transaction manager leaves in its journal for a move mined but reverted: sent with a fixed gas, so
    nothing simulates it first (two agents racing for one move: the later one reverts in its block)."""
    key = Account.from_key(dev_key(account))
    nonce = w3.eth.get_transaction_count(key.address, "pending")
    transaction = call.build_transaction(
        {"from": key.address, "value": value, "nonce": nonce, "gas": 300_000, "chainId": w3.eth.chain_id}
    )
    signed = key.sign_transaction(transaction)
    w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(signed.hash, timeout=60, poll_latency=0.01)
    assert receipt["status"] == 0, intent
    return Settled(JournalEntry(intent, bytes(signed.hash), nonce), 0, receipt["gasUsed"], receipt["blockNumber"])


# --- a chain of made-up requests, claims and games ---------------------------------------------------------


@dataclass(frozen=True)
class Side:
    w3: Web3
    registry: Registry
    start_block: int
    journal: list[Settled]  # account US's failed transactions
    game_start: int  # chain time of game 1's challenge
    claim_times: dict[int, int]  # reveal time by claim id
    block_before_timeouts: int
    block_before_second_bisect: int


@pytest.fixture(scope="module")
def side(anvil) -> Side:
    """Five requests, one in each status a request can have without a result:

    1 requested (no claim); 2 claimed (a live claim, unchallenged); 3 challenged (game 1, in play, played by us
    for two rounds with known times: its defender's second move mined with a sixth of its clock left); 4 rejected
    (its claim lost games 2, ours, and 3, another challenger's, on time); 5 expired (cancelled unserved).
    Account US also sent a challenge twice and a select out of turn (both reverted on-chain), and one move that
    was never mined."""
    w3 = connect(anvil.url)
    owner, claimant, us, other = (dev(w3, account) for account in (OWNER, CLAIMANT, US, OTHER))
    deployment = deploy_contracts(w3, owner, PARAMETERS)
    registry = Registry(w3, deployment.registry)
    program_id = register_program(registry, owner, ProgramImage(Web3.keccak(text="a program nobody has"), 0x400000))
    model_id = register_model(registry, owner, seed_model(), "models/seed-mnist/model.bin")
    for _ in range(5):
        owner.send(registry.request_inference(program_id, model_id, b"\x07" * 784, STEPS), value=10**15)
    claims = {request_id: claim(registry, claimant, request_id, request_id) for request_id in (2, 3, 4)}
    claim_times = {claim_id: registry.claim(claim_id).submitted_at for claim_id in claims.values()}

    # game 1 over request 3's claim, every move at a time set here
    at = claim_times[claims[3]] + 100
    next_block_at(w3, at)
    us.send(registry.challenge(claims[3]), value=PARAMETERS.challenge_bond)  # took 100 s of the 600 s window
    posted: list[bytes] = []
    for took, mover in ((150, claimant), (10, us), (100, claimant), (5, us)):
        at += took
        if mover is claimant and took == 100:
            block_before_second_bisect = w3.eth.block_number
        next_block_at(w3, at)
        if mover is claimant:
            posted = hashes_for(registry, 1)
            claimant.send(registry.bisect(1, posted))
        else:
            us.send(registry.select(1, 0, posted))
    journal = [
        send_reverting(w3, US, registry.challenge(claims[3]), f"challenge c{claims[3]}", PARAMETERS.challenge_bond),
        send_reverting(w3, US, registry.select(1, 0, []), "game 1 select [0,1] r2"),  # the defender is to move
        Settled(JournalEntry("game 1 select [0,1] r3", bytes(Web3.keccak(text="never mined")), 99), -1, 0, 0),
    ]

    # games 2 (ours) and 3 (another challenger's) over request 4's claim: nobody answers; both end on time
    us.send(registry.challenge(claims[4]), value=PARAMETERS.challenge_bond)
    other.send(registry.challenge(claims[4]), value=PARAMETERS.challenge_bond)
    block_before_timeouts = w3.eth.block_number
    next_block_at(w3, chain_time(w3) + PARAMETERS.clock_budget + 1)
    owner.send(registry.timeout(2))
    owner.send(registry.timeout(3))

    # request 5: nobody served it; cancelled once its deadline passed
    next_block_at(w3, registry.request(5).deadline + 1)
    owner.send(registry.cancel(5))
    return Side(w3, registry, deployment.start_block, journal, claim_times[claims[3]] + 100, claim_times,
                block_before_timeouts, block_before_second_bisect)  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "agent.db")
    url = f"{request.getfixturevalue('postgres_server').url.rsplit('/', 1)[0]}/readmodel_{uuid.uuid4().hex[:12]}"
    ensure_database(url)
    return url


def index(store: AgentStore, w3: Web3, registry: Registry, start_block: int) -> None:
    """What an agent's monitor does: every event since the cursor, with its block time, and the new cursor."""
    cursor = store.cursor(REGISTRY_CURSOR, start_block - 1)
    events, new_cursor = EventReader(w3, registry.contract).read(cursor, timestamps=True)
    store.save_events(REGISTRY_CURSOR, events, new_cursor)


@pytest.fixture()
def reads(side: Side, database_url) -> ReadModel:
    """The read model over a store that indexed the side chain and holds account US's journal."""
    store = AgentStore.open(database_url)
    index(store, side.w3, side.registry, side.start_block)
    journal = store.journal()
    for settled in side.journal:
        journal.record(settled.entry)
        journal.settle(settled.entry.tx_hash, settled.status, settled.gas_used, settled.block_number)
    yield ReadModel(store, side.registry, Receipts(side.w3), address=address(US))
    store.database.dispose()


class CountingCalls:
    """Counts the eth_call requests a web3 connection makes."""

    def __init__(self, w3: Web3):
        self.provider = w3.provider
        self.calls = 0

    def __enter__(self):
        self._make_request = self.provider.make_request

        def counted(method, params):
            self.calls += method == "eth_call"
            return self._make_request(method, params)

        self.provider.make_request = counted
        return self

    def __exit__(self, *exc):
        self.provider.make_request = self._make_request


# --- 1. lists filtered and paged where the data is -----------------------------------------------------------


def test_lists_filter_and_page_in_the_store(side: Side, reads: ReadModel):
    expected = {1: "requested", 2: "claimed", 3: "challenged", 4: "rejected", 5: "expired"}
    every = reads.requests(limit=100)
    assert every.total == 5 and [item.id for item in every.items] == [5, 4, 3, 2, 1]  # newest first
    assert {item.id: item.status for item in every.items} == expected
    # the chain agrees with the index on every status
    assert side.registry.request(5).status == RequestStatus.CANCELLED
    assert [claim.status for claim in reads.request(4).claims] == ["rejected"]
    assert [claim.status for claim in reads.request(3).claims] == ["live"]
    for request_id, status in expected.items():
        page = reads.requests(status=status)
        assert (page.total, [item.id for item in page.items]) == (1, [request_id]), status
        briefs = reads.request_briefs(status=status)
        assert [(item.id, item.status) for item in briefs.items] == [(request_id, status)]
    assert reads.requests(status="final").total == 0
    page = reads.requests(offset=1, limit=2)
    assert (page.total, [item.id for item in page.items]) == (5, [4, 3])

    reads.store.record_submitted(2, "0x" + "00" * 32, "0x" + "11" * 32, b"")
    assert [item.id for item in reads.requests(submitted_here=True).items] == [2]
    assert [item.id for item in reads.requests(submitted_here=False).items] == [5, 4, 3, 1]

    assert [(g.id, g.status) for g in reads.disputes(limit=100).items] == [
        (3, "challenger_won"), (2, "challenger_won"), (1, "active")
    ]  # fmt: skip
    assert [g.id for g in reads.disputes(status="challenger_won").items] == [3, 2]
    assert [g.id for g in reads.disputes(status="active").items] == [1]
    assert reads.disputes(status="defender_won").total == 0
    assert [g.id for g in reads.disputes(mine=True).items] == [2, 1]  # US is the challenger
    assert [g.id for g in reads.disputes(mine=False).items] == [3]
    assert [g.id for g in reads.disputes(request_id=4).items] == [3, 2]
    page = reads.disputes(mine=True, status="challenger_won", request_id=4)
    assert (page.total, [g.id for g in page.items]) == (1, [2])
    assert [(g.id, g.status) for g in reads.game_briefs(offset=1, limit=1).items] == [(2, "challenger_won")]

    # a filtered page costs the chain reads of its own items, however many others there are
    with CountingCalls(side.w3) as one_item:
        reads.requests(status="claimed", limit=1)
    with CountingCalls(side.w3) as filtered:
        assert reads.requests(status="rejected", limit=1).total == 1
    with CountingCalls(side.w3) as unfiltered_item:
        reads.request(4)
    assert filtered.calls == unfiltered_item.calls  # nothing read for the four requests filtered out
    assert one_item.calls <= unfiltered_item.calls


# --- 2. one report, one block ------------------------------------------------------------------------------


def test_reports_are_the_state_at_one_block(side: Side, reads: ReadModel):
    before = reads.request(4, block=side.block_before_timeouts)
    assert before.block == side.block_before_timeouts
    assert before.status == "challenged"
    assert [claim.status for claim in before.claims] == ["live"]
    assert [(game.id, game.status) for game in before.games] == [(2, "active"), (3, "active")]
    assert all(tx.block_number <= side.block_before_timeouts for tx in before.transactions)
    assert not any("GameEnded" in tx.events for tx in before.transactions)
    now = reads.request(4)
    assert now.status == "rejected" and [claim.status for claim in now.claims] == ["rejected"]
    assert {game.status for game in now.games} == {"challenger_won"}

    dispute = reads.dispute(1, block=side.block_before_second_bisect)
    assert (dispute.rounds, len(dispute.history), len(dispute.moves)) == (1, 1, 3)
    assert [move.move for move in dispute.moves] == ["challenge", "bisect", "select"]
    page = reads.disputes(request_id=4, block=side.block_before_timeouts)
    assert page.block == side.block_before_timeouts and {g.status for g in page.items} == {"active"}


def test_a_report_stays_at_its_block_while_the_chain_moves_on(anvil, database_url):
    """A game ends (its timeout mined) between the report's first chain read and the next: the report is the
    state before, as a whole (the old reads gave a live request whose claim was rejected, or the reverse)."""
    w3 = connect(anvil.url)
    owner, claimant, us = dev(w3, OWNER), dev(w3, CLAIMANT), dev(w3, US)
    deployment = deploy_contracts(w3, owner, PARAMETERS)
    plain = Registry(w3, deployment.registry)
    program_id = register_program(plain, owner, ProgramImage(Web3.keccak(text="another program nobody has"), 0x400000))
    model_id = register_model(plain, owner, seed_model(), "models/seed-mnist/model.bin")
    owner.send(plain.request_inference(program_id, model_id, b"\x07" * 784, STEPS), value=10**15)
    claim_id = claim(plain, claimant, 1, 1)
    us.send(plain.challenge(claim_id), value=PARAMETERS.challenge_bond)
    next_block_at(w3, chain_time(w3) + PARAMETERS.clock_budget + 1)
    w3.provider.make_request("evm_mine", [])  # the defender's clock has run out; nobody called timeout yet
    store = AgentStore.open(database_url)
    index(store, w3, plain, deployment.start_block)
    pinned_at = w3.eth.block_number

    class MovingRegistry(Registry):
        """Mines the game's end the first time a claim is read."""

        moved = False

        def claim(self, claim_id: int):
            if not MovingRegistry.moved:
                MovingRegistry.moved = True
                owner.send(plain.timeout(1))
            return super().claim(claim_id)

    reads = ReadModel(store, MovingRegistry(w3, deployment.registry), Receipts(w3), address=address(US))
    report = reads.request(1)
    assert MovingRegistry.moved and w3.eth.block_number > pinned_at  # the chain moved on mid-report
    assert report.block == pinned_at
    assert report.status == "challenged"
    assert [claim.status for claim in report.claims] == ["live"]
    assert [game.status for game in report.games] == ["active"]
    index(store, w3, plain, deployment.start_block)
    after = reads.request(1)
    assert after.block > pinned_at and after.status == "rejected"
    assert [claim.status for claim in after.claims] == ["rejected"] and after.games[0].status == "challenger_won"
    store.database.dispose()


# --- 5. every transaction once, our failed ones too ---------------------------------------------------------


def test_a_report_lists_each_transaction_once_and_our_reverted_and_dropped_ones(side: Side, reads: ReadModel):
    reverted_challenge, reverted_select, dropped = side.journal
    dispute = reads.dispute(1)
    transactions = dispute.transactions
    events = [event for tx in transactions for event in tx.events]
    assert events.count("GameStarted") == 1  # the challenge once, with its events
    assert len({tx.tx_hash for tx in transactions}) == len(transactions)
    (failed,) = [tx for tx in transactions if tx.status == "reverted"]
    assert failed.tx_hash == "0x" + reverted_select.entry.tx_hash.hex()
    assert (failed.events, failed.gas_used, failed.block_number) == ([], reverted_select.gas_used,
                                                                      reverted_select.block_number)  # fmt: skip
    assert failed.sender == address(US) and failed.intent == "game 1 select [0,1] r2"
    assert transactions[-1].status == "dropped" and transactions[-1].block_number is None
    assert transactions[-1].tx_hash == "0x" + dropped.entry.tx_hash.hex() and transactions[-1].gas_used == 0
    mined = [tx for tx in transactions if tx.status == "mined"]
    assert [tx.events[0] for tx in mined] == ["GameStarted", "Bisected", "SegmentSelected", "Bisected",
                                              "SegmentSelected"]  # fmt: skip
    assert [tx.block_number for tx in transactions[:-1]] == sorted(tx.block_number for tx in transactions[:-1])
    assert dispute.gas_total == sum(tx.gas_used for tx in transactions)
    assert mined[0].intent is None  # the challenge was sent by this account, but not through its journal

    report = reads.request(3)
    statuses = {tx.tx_hash: tx.status for tx in report.transactions}
    assert statuses["0x" + reverted_challenge.entry.tx_hash.hex()] == "reverted"  # a challenge of its claim
    assert statuses["0x" + reverted_select.entry.tx_hash.hex()] == "reverted"  # a move in its game
    requested = [event for tx in report.transactions for event in tx.events]
    assert requested.count("GameStarted") == 1 and requested.count("InferenceRequested") == 1
    assert reads.request(2).transactions[-1].events == ["ClaimSubmitted"]  # nothing of ours about request 2


# --- 6. every move against its clock ------------------------------------------------------------------------


def test_a_dispute_shows_every_move_against_its_clock(side: Side, reads: ReadModel):
    dispute = reads.dispute(1)
    window, clock = PARAMETERS.challenge_window, PARAMETERS.clock_budget
    shown = [(m.move, m.side, m.took, m.left, m.budget, m.low) for m in dispute.moves]
    assert shown == [
        ("challenge", "challenger", 100, window - 100, window, False),
        ("bisect", "defender", 150, clock - 150, clock, False),
        ("select", "challenger", 10, clock - 10, clock, False),
        ("bisect", "defender", 100, clock - 250, clock, True),  # 50 s of 300: less than a quarter left
        ("select", "challenger", 5, clock - 15, clock, False),
    ]
    assert [m.chain_time for m in dispute.moves] == [side.game_start + t for t in (0, 150, 160, 260, 265)]
    assert (dispute.least_left.defender, dispute.least_left.challenger) == (clock - 250, clock - 15)
    assert [m.tx_hash for m in dispute.moves] == [tx.tx_hash for tx in dispute.transactions if tx.status == "mined"]
    ended = reads.dispute(2)
    assert [(m.move, m.side, m.left) for m in ended.moves] == [("challenge", "challenger", ended.moves[0].left),
                                                              ("end", None, None)]  # fmt: skip
    assert ended.least_left.defender is None and ended.moves[-1].took == clock + 1


# --- 3. the read side holds no agent -----------------------------------------------------------------------

READ_SIDE = [
    *sorted((ROOT / "opml" / "readmodel").glob("*.py")),
    *(ROOT / "services" / "submitter" / "submitter" / name for name in ("routes.py", "schemas.py", "service.py")),
    *(ROOT / "services" / "challenger" / "challenger" / name for name in ("routes.py", "schemas.py")),
    *sorted((ROOT / "services" / "challenger" / "challenger" / "ui").glob("*.py")),
]
# what of opml.agents the read side may use: the store (its tables), the timing of moves, work keys, the trace
# source protocol; never the agents themselves, their runtime or wiring
ALLOWED = {"opml.agents.store", "opml.agents.timing", "opml.agents.work", "opml.agents.traces"}


def test_the_read_side_depends_on_no_agent():
    for path in READ_SIDE:
        tree = ast.parse(path.read_text())
        package = "opml.readmodel" if "readmodel" in path.parts else ""
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level and package:  # relative, inside opml.readmodel
                    module = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [module])
                names = [module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("opml.agents"):
                    assert name in ALLOWED, f"{path.relative_to(ROOT)} imports {name}"
        assert "agent" not in {
            arg.arg for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) for arg in node.args.args
        }, path
    for name in ("submitter", "challenger"):
        main = (ROOT / "services" / name / name / "main.py").read_text()
        assert "parts.tx.address" not in main and "ReadModel(" in main


# --- 7. alerts ------------------------------------------------------------------------------------------------


def test_a_lie_final_against_the_challengers_result_is_an_alert_in_its_reports(anvil, timing, tmp_path):
    """A lying submitter alone, and a challenger that computes the truth, challenges, then never moves: the
    lie wins on time and becomes final; the challenger's store has the alert, and its reports say so."""
    w3 = connect(anvil.url)
    deployment = deploy_with_defaults(w3, dev(w3, OWNER), timing.sized(Parameters(max_step_limit=10_000_000)), "seed")
    traces = LocalTraces(StaticModels((seed_model_dir() / "model.bin").read_bytes()))
    config = AgentConfig(poll_interval=0.1, withdraw_interval=1.0)

    def agent(kind, account, solvers):
        store = AgentStore.open(str(tmp_path / f"{kind.role}_{account}.db"))
        return kind(registry=Registry(w3, deployment.registry), tx=TransactionManager(w3, dev_key(account),
                    store.journal()), store=store, traces=traces, deployment=deployment, config=config,
                    solvers=solvers)  # fmt: skip

    liar = agent(SubmitterAgent, OTHER, SubmitterFaults(lie="output").solvers(traces))
    silent = agent(ChallengerAgent, US, ChallengerFaults(silent_after_rounds=0).solvers())
    registry = Registry(w3, deployment.registry)
    seven = (seed_model_dir() / "input_7.bin").read_bytes()
    dev(w3, 9).send(registry.request_inference(deployment.program_id, deployment.model_id, seven, 5_000_000),
                    value=10**15)  # fmt: skip
    request_id = registry.count("request")
    reads = ReadModel(silent.store, registry, Receipts(w3), address=silent.address)
    for running in (liar, silent):
        running.start()
    try:
        patience = registry.parameters.challenge_window + 2 * registry.parameters.clock_budget + 60
        _wait(lambda: reads.request(request_id).finalized_against_ours is not None, patience, "the alert")
    finally:
        for running in (liar, silent):
            running.stop()
    report = reads.request(request_id)
    final_claim = registry.claim(registry.request(request_id).final_claim)
    assert report.status == "final" and final_claim.claimant == liar.address
    alert = report.finalized_against_ours
    assert alert.claim_id == registry.request(request_id).final_claim
    assert alert.final_state_hash == "0x" + final_claim.final_state_hash.hex()
    truth = traces.trace_for(liar.request_view(request_id)).final_claim().hash
    assert alert.our_state_hash == "0x" + truth.hex() != alert.final_state_hash
    (brief,) = [item for item in reads.request_briefs().items if item.id == request_id]
    assert brief.finalized_against_ours == alert
    assert [game.status for game in report.games] == ["defender_won"]  # the silent challenger lost on time


def _wait(condition, timeout: float, what: str) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # not indexed yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
