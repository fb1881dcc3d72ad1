"""Crash and recovery, end to end: agents killed with SIGKILL mid-game (including between sending a move and
its receipt) and restarted still win without sending a move twice; a chain node that goes away mid-game
and comes back is caught up with. Blocks come every second here, so a transaction waits for its receipt
and a kill can land in that gap."""

from __future__ import annotations

import time

import pytest

from opml.agents.intents import subject_of
from opml.agents.store import AgentStore
from opml.agents.work import WorkKey
from opml.stack import Stack, StackConfig

from ..faults import RpcProxy
from .conftest import E2E_BASE, Harness, wait_for

LIAR = ("liar", "submitter", 3, {"SUBMITTER_FAULT_LIE": "states", "SUBMITTER_FAULT_LIE_FROM_STEP": "977000"})
DISPUTER = ("disputer", "challenger", 4, {"CHALLENGER_FAULT_DISPUTE_HONEST": "true"})


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, timing):
    # blocks every second, so a kill can land between a move's send and its receipt; clocks long enough for a
    # restart (at least 40 s, more on a slow machine)
    parameters = timing.sized(E2E_BASE, window_floor=10, clock_floor=40)
    config = StackConfig.ephemeral(tmp_path_factory.mktemp("recovery"), parameters=parameters, echo=False,
                                   poll_interval=0.1, block_time=1)  # fmt: skip
    with RpcProxy(f"http://127.0.0.1:{config.ports['anvil']}") as proxy:
        config.service_rpc_url = proxy.url
        with Stack(config) as stack:
            yield Harness(stack), proxy


def start(harness, name, kind, account, env):
    prefix = "SUBMITTER_" if kind == "submitter" else "CHALLENGER_"
    return harness.stack.start_service(name, kind, {f"{prefix}DEV_ACCOUNT": str(account), **env})


def stop(harness, name):
    harness.stack.services.pop(name).stop()


def restart(harness, name, kind):
    """Start the same service again: its database, key and port, as an orchestrator would."""
    killed = harness.stack.services[name]
    port = int(killed.url.rsplit(":", 1)[1])
    harness.stack.start_service(name, kind, {}, port=port)


def first_game(harness, request_id) -> int:
    return wait_for(lambda: (games := harness.report(request_id).get("games")) and games[0]["id"], 60, "a game")


def agent_store(harness, name) -> AgentStore:
    return AgentStore.open(harness.stack.environment(name, name, 0)[f"{name.upper()}_DATABASE_URL"])


def pending_moves(harness, name) -> list[str]:
    store = agent_store(harness, name)
    try:
        return [row.intent for row in store.transactions() if row.status == "pending" and row.intent.startswith("game")]
    finally:
        store.database.dispose()


def assert_no_move_sent_twice(harness, name):
    store = agent_store(harness, name)
    rows = store.transactions()
    mined = [row.intent for row in rows if row.status == "mined"]
    assert len(mined) == len(set(mined)), f"an intent was mined twice: {mined}"
    reverted = [(row.intent, row.tx_hash) for row in rows if row.status == "reverted"]
    store.database.dispose()
    ours = {row.tx_hash for row in rows}
    for intent, tx_hash in reverted:
        # Both players may resolve the last step (or call timeout) in the same block: the later one reverts.
        # That race is fine; the agent's own second copy of a move is not: the game's end must be another's.
        subject = subject_of(intent) or ""  # "game 7 resolve [..] r6", or a sweep's "timeout g7 r0"
        assert subject.startswith("game:"), f"reverted on-chain: {intent} {tx_hash}"
        game_id, move = WorkKey.parse(subject).id, "timeout" if intent.startswith("timeout") else intent.split()[2]
        assert move in ("resolve", "timeout"), f"reverted on-chain: {intent} {tx_hash}"
        transactions = harness.dispute(game_id)["transactions"]
        ending = [tx for tx in transactions if "GameEnded" in tx["events"]]
        assert ending and ending[0]["tx_hash"] not in ours, f"{intent} reverted after our own game end: {tx_hash}"
        if name == "challenger":  # the challenger's API lists its own reverted move, with its gas
            (listed,) = [tx for tx in transactions if tx["tx_hash"] == tx_hash]
            assert listed["status"] == "reverted" and listed["events"] == [] and listed["gas_used"] > 0


@pytest.mark.parametrize("kill_at_round", [pytest.param(0, marks=pytest.mark.slow), 2, pytest.param(4, marks=pytest.mark.slow)])
def test_a_challenger_killed_mid_game_restarts_and_wins(proxied, kill_at_round):
    harness, _ = proxied
    start(harness, *LIAR)
    try:
        request_id = harness.request()
        game_id = first_game(harness, request_id)
        wait_for(lambda: harness.dispute(game_id)["rounds"] >= kill_at_round, 60, f"round {kill_at_round}")
        # kill it the moment it has recorded a move and sent it, before the block with its receipt
        wait_for(lambda: pending_moves(harness, "challenger"), 30, "a move in flight", interval=0.01)
        harness.stack.services["challenger"].kill()
        time.sleep(1.0)
        restart(harness, "challenger", "challenger")
        wait_for(lambda: harness.dispute(game_id)["status"] != "active", 120, "the game's end")
        dispute = harness.dispute(game_id)
        assert dispute["status"] == "challenger_won" and dispute["lo"] == 977_000 - 1
        history = dispute["history"]
        assert len(history) == dispute["rounds"] and all(r["segment"] is not None for r in history)
        harness.wait_final(request_id, 60)
    finally:
        stop(harness, "liar")
    assert_no_move_sent_twice(harness, "challenger")


@pytest.mark.slow
def test_a_submitter_killed_mid_game_restarts_and_wins(proxied):
    harness, _ = proxied
    start(harness, *DISPUTER)
    try:
        request_id = harness.request()
        game_id = first_game(harness, request_id)
        wait_for(lambda: harness.dispute(game_id)["rounds"] >= 2, 60, "round 2")
        time.sleep(0.7)
        harness.stack.services["submitter"].kill()
        time.sleep(1.0)
        restart(harness, "submitter", "submitter")
        wait_for(lambda: harness.dispute(game_id)["status"] != "active", 120, "the game's end")
        assert harness.dispute(game_id)["status"] == "defender_won"
        report = harness.wait_final(request_id, 60)
        assert report["result"]["predicted"] == 7
    finally:
        stop(harness, "disputer")
    assert_no_move_sent_twice(harness, "submitter")


def test_the_agents_catch_up_after_the_chain_node_goes_away_mid_game(proxied):
    harness, proxy = proxied
    start(harness, *LIAR)
    try:
        request_id = harness.request()
        game_id = first_game(harness, request_id)
        wait_for(lambda: harness.dispute(game_id)["rounds"] >= 1, 60, "round 1")
        proxy.down()  # neither agent can reach the chain; blocks keep coming
        time.sleep(8)
        proxy.up()
        wait_for(lambda: harness.dispute(game_id)["status"] != "active", 120, "the game's end")
        assert harness.dispute(game_id)["status"] == "challenger_won"
        harness.wait_final(request_id, 60)
    finally:
        stop(harness, "liar")
