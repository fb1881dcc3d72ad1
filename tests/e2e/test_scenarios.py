"""End to end: the four services as processes on a real anvil, every scenario driven through the HTTP APIs
and settled by the agents on their own. Extra agents (liars, silent ones, a second challenger) are
started for the test that needs them."""

from __future__ import annotations

from collections import defaultdict

import httpx
import pytest

from opml.chain.deploy import program_image, register_program
from opml.chain.events import EventReader
from opml.guest import INFERENCE, LARGE_OUTPUT, MALFORMED_OUTPUT, SPIN, built
from opml.protocol.parameters import kept_share
from opml.protocol.types import GameStatus
from opml.resources import seed_model_dir
from opml.vm.elf import Program
from opml.vm.execution import Execution

from .conftest import CHALLENGE_BOND, CLAIM_BOND, E2E_BASE, SEVEN, running, wait_for

# The whole module runs twice: the services' databases in SQLite files, then on a real PostgreSQL server.
# The whole module runs on SQLite in `make test`, and again on PostgreSQL in `make test-slow` (CI runs both).
pytestmark = pytest.mark.parametrize(
    "harness", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)], indirect=True, scope="module"
)

SUBMITTER, CHALLENGER, REQUESTER = 1, 2, 5
MOVE_REFUND = E2E_BASE.move_refund


@pytest.fixture(scope="module")
def steps() -> int:
    model = (seed_model_dir() / "model.bin").read_bytes()
    return Execution(Program.from_file(built(INFERENCE.name)), model=model, input=SEVEN).run().steps


def money(harness, from_block: int) -> tuple[dict[str, int], int]:
    """What each account was paid or credited after block `from_block`, and what was burned."""
    events, _ = EventReader(harness.w3, harness.registry.contract).read(from_block)  # blocks after it
    received: dict[str, int] = defaultdict(int)
    burned = 0
    for event in events:
        if event.name in ("Credited", "Paid"):
            received[event.args["account"]] += event.args["amount"]
        elif event.name == "Burned":
            burned += event.args["amount"]
    return received, burned


def claims_by(report: dict, account: str) -> list[dict]:
    return [claim for claim in report["claims"] if claim["claimant"] == account]


def refund(harness, game_id: int) -> int:
    """What a challenger who won game `game_id` is refunded besides its bond: its moves (as the chain counted
    them) times the move refund."""
    game = harness.registry.game(game_id)
    assert game.status == GameStatus.CHALLENGER_WON
    return game.moves * MOVE_REFUND


def assert_moves_timed(dispute: dict, parameters) -> None:
    """A dispute's transactions, each once, and its moves against their clocks: the challenge first (against the
    claim's window), the defender's hashes and the challenger's segments in turn, each side's least margin."""
    transactions = dispute["transactions"]
    events = [event for tx in transactions for event in tx["events"]]
    assert events.count("GameStarted") == 1, dispute["id"]
    assert len({tx["tx_hash"] for tx in transactions}) == len(transactions)
    assert dispute["gas_total"] == sum(tx["gas_used"] for tx in transactions)
    moves = dispute["moves"]
    assert moves[0]["move"] == "challenge" and moves[0]["side"] == "challenger"
    assert moves[0]["budget"] == parameters.challenge_window
    assert [m["move"] for m in moves].count("bisect") >= dispute["rounds"]
    for move in moves:
        side = {"challenge": "challenger", "bisect": "defender", "select": "challenger", "end": None}[move["move"]]
        assert move["side"] == side and move["took"] >= 0
        if side is not None:
            assert move["left"] <= move["budget"] and move["low"] == (move["left"] < move["budget"] / 4)
    assert [m["chain_time"] for m in moves] == sorted(m["chain_time"] for m in moves)
    if dispute["status"] != "active":
        assert moves[-1]["move"] == "end" and "GameEnded" in events
    for side in ("defender", "challenger"):
        margins = [m["left"] for m in moves if m["side"] == side]
        assert dispute["least_left"][side] == (min(margins) if margins else None)


def test_an_honest_request_becomes_final(harness):
    request_id = harness.request()
    report = harness.wait_final(request_id)
    assert report["result"]["predicted"] == 7 and report["result"]["exit_code"] == 0
    assert report["result"]["kind"] == "output"
    assert [claim["claimant"] for claim in report["claims"]] == [harness.address(SUBMITTER)]
    assert report["games"] == []
    events = [event for tx in report["transactions"] for event in tx["events"]]
    assert events == ["InferenceRequested", "ClaimCommitted", "ClaimSubmitted", "ResultFinalized"]
    assert all(tx["gas_used"] > 21_000 and tx["status"] == "mined" for tx in report["transactions"])
    assert report["finalized_against_ours"] is None
    assert report["block"] >= max(tx["block_number"] for tx in report["transactions"])


def test_every_kind_of_lying_submitter_loses_and_pays(harness, steps):
    middle = steps // 2
    liars = {
        "output": (3, {"SUBMITTER_FAULT_LIE": "output"}, steps - 1),
        "first": (4, {"SUBMITTER_FAULT_LIE": "states", "SUBMITTER_FAULT_LIE_FROM_STEP": "1"}, 0),
        "middle": (7, {"SUBMITTER_FAULT_LIE": "states", "SUBMITTER_FAULT_LIE_FROM_STEP": str(middle)}, middle - 1),
        "last": (8, {"SUBMITTER_FAULT_LIE": "states", "SUBMITTER_FAULT_LIE_FROM_STEP": str(steps)}, steps - 1),
    }
    start_block = harness.w3.eth.block_number
    with running(harness, *[(f"liar-{n}", "submitter", a, env) for n, (a, env, _) in liars.items()]):
        request_id = harness.request(fee=10**16)
        wait_for(lambda: len(harness.report(request_id).get("claims", [])) == 5, 60, "five claims")
        games = harness.wait_games_over(request_id, 8)
        report = harness.wait_final(request_id)
    assert claims_by(report, harness.address(SUBMITTER))[0]["status"] == "finalized"
    honest = {harness.address(SUBMITTER), harness.address(CHALLENGER)}
    for name, (account, _, narrowed_to) in liars.items():
        (claim,) = claims_by(report, harness.address(account))
        assert claim["status"] == "rejected", name
        # disputed by the challenger and by the honest submitter, which defends its result, not only its claim
        disputes = [harness.dispute(g["id"]) for g in games if g["claim_id"] == claim["id"]]
        assert {dispute["challenger"] for dispute in disputes} == honest, name
        for dispute in disputes:
            assert dispute["status"] == "challenger_won" and dispute["winner"] == dispute["challenger"], name
            assert dispute["lo"] == narrowed_to, name  # the game ends on the first wrong state
            assert dispute["rounds"] <= 6
            assert_moves_timed(dispute, harness.parameters)
    assert report["result"]["predicted"] == 7

    received, burned = money(harness, start_block)
    fee = 10**16
    for account, _, _ in liars.values():
        assert received[harness.address(account)] == 0  # nothing back
    # each winning challenger gets its bond and its own moves back, the honest claim the fee and its bond; the
    # rest of every lie's bond is burned, at least its burn share
    refunds = {
        account: sum(refund(harness, g["id"]) for g in games if g["challenger"] == account) for account in honest
    }
    assert burned == 4 * CLAIM_BOND - sum(refunds.values())
    assert burned >= 4 * (CLAIM_BOND - kept_share(E2E_BASE, CLAIM_BOND))
    challenger, submitter = harness.address(CHALLENGER), harness.address(SUBMITTER)
    assert received[challenger] == 4 * CHALLENGE_BOND + refunds[challenger]
    assert received[submitter] == fee + CLAIM_BOND + 4 * CHALLENGE_BOND + refunds[submitter]
    assert sum(received.values()) + burned == fee + 5 * CLAIM_BOND + 8 * CHALLENGE_BOND  # nothing lost or made


def test_a_challenger_that_disputes_honest_claims_loses(harness):
    start_block = harness.w3.eth.block_number
    with running(harness, ("disputer", "challenger", 4, {"CHALLENGER_FAULT_DISPUTE_HONEST": "true"})):
        request_id = harness.request()
        (game,) = harness.wait_games_over(request_id, 1)
        report = harness.wait_final(request_id)
    assert game["status"] == "defender_won" and game["challenger"] == harness.address(4)
    assert report["result"]["predicted"] == 7
    received, _ = money(harness, start_block)
    assert received[harness.address(4)] == 0
    assert received[harness.address(SUBMITTER)] >= kept_share(E2E_BASE, CHALLENGE_BOND)


def test_silent_parties_lose_on_time(harness):
    silent_liar = (
        "silent-liar",
        "submitter",
        3,
        {"SUBMITTER_FAULT_LIE": "output", "SUBMITTER_FAULT_SILENT_AFTER_ROUNDS": "1"},
    )
    silent_challenger = ("silent-challenger", "challenger", 4,
                         {"CHALLENGER_FAULT_DISPUTE_HONEST": "true", "CHALLENGER_FAULT_SILENT_AFTER_ROUNDS": "1"})  # fmt: skip
    with running(harness, silent_liar, silent_challenger):
        request_id = harness.request()
        games = harness.wait_games_over(request_id, 4, timeout=120)
        report = harness.wait_final(request_id, timeout=60)
    for game in games:
        dispute = harness.dispute(game["id"])
        assert dispute["rounds"] == 1  # somebody fell silent after the first round in every game
        assert_moves_timed(dispute, harness.parameters)
        if dispute["defender"] == harness.address(SUBMITTER):
            assert dispute["status"] == "defender_won"  # the silent challenger lost on time
        else:
            # the liar lost on time; in the game between the two silent ones, the honest challenger (a bystander
            # with a stake: the lie's bond waits for it) called `timeout` itself
            assert dispute["defender"] == harness.address(3) and dispute["status"] == "challenger_won"
    assert claims_by(report, harness.address(SUBMITTER))[0]["status"] == "finalized"


def test_several_challengers_of_one_claim_all_win_and_each_is_refunded_its_own_moves(harness):
    start_block = harness.w3.eth.block_number
    with running(harness, ("liar", "submitter", 3, {"SUBMITTER_FAULT_LIE": "output"}), ("second", "challenger", 7, {})):
        request_id = harness.request()
        games = harness.wait_games_over(request_id, 3)
        harness.wait_final(request_id)
    challengers = {harness.address(CHALLENGER), harness.address(7), harness.address(SUBMITTER)}
    assert {game["challenger"] for game in games} == challengers
    assert all(game["status"] == "challenger_won" for game in games)
    received, burned = money(harness, start_block)
    by_challenger = {game["challenger"]: refund(harness, game["id"]) for game in games}
    for account in (CHALLENGER, 7):  # no prize to race for: each gets its bond and its own moves back
        assert received[harness.address(account)] == CHALLENGE_BOND + by_challenger[harness.address(account)]
    honest_claim = CLAIM_BOND + 10**15  # the honest submitter's bond back and the fee
    assert (
        received[harness.address(SUBMITTER)]
        == honest_claim + CHALLENGE_BOND + by_challenger[harness.address(SUBMITTER)]
    )
    assert burned == CLAIM_BOND - sum(by_challenger.values())


def test_a_liar_challenging_its_own_claim_gains_nothing_and_delays_nothing(harness):
    start_block = harness.w3.eth.block_number
    with running(harness, ("liar", "submitter", 3, {"SUBMITTER_FAULT_LIE": "output"}), ("sybil", "challenger", 4, {})):
        request_id = harness.request()
        harness.wait_games_over(request_id, 3)
        report = harness.wait_final(request_id)
    honest = claims_by(report, harness.address(SUBMITTER))[0]
    final_block = max(tx["block_number"] for tx in report["transactions"] if "ResultFinalized" in tx["events"])
    final_time = harness.w3.eth.get_block(final_block)["timestamp"]
    bound = harness.parameters.challenge_window + 2 * harness.parameters.clock_budget
    assert final_time <= honest["submitted_at"] + bound
    received, _ = money(harness, start_block)
    liar_side = received[harness.address(3)] + received[harness.address(4)]
    sybil_games = [game for game in harness.report(request_id)["games"] if game["challenger"] == harness.address(4)]
    sybil_refunds = sum(refund(harness, game["id"]) for game in sybil_games if game["status"] == "challenger_won")
    assert liar_side <= CHALLENGE_BOND + sybil_refunds  # the sybil gets its own moves back, no more
    assert liar_side <= CHALLENGE_BOND + kept_share(E2E_BASE, CLAIM_BOND)  # at least the burn is lost


def test_a_request_that_never_exits_ends_by_its_step_limit(harness):
    spin = program_image(Program.from_file(built(SPIN.name)))
    program_id = register_program(harness.registry, harness.tx(9), spin)
    request_id = harness.request(input=b"", program=program_id, step_limit=2_000_000)
    report = harness.wait_final(request_id)
    assert report["result"]["exited"] is False and report["result"]["output"] == "0x"
    assert report["result"]["kind"] == "step_limit_reached"
    assert report["claims"][0]["steps"] == 2_000_000


def test_requests_whose_programs_write_no_valid_output_end_with_their_kind(harness):
    """Served through the vm-worker: its results carry the kind and the leaf proofs that finalizeMalformed
    takes, so the submitter agent finalizes a malformed output region and an output too large."""
    start_block = harness.w3.eth.block_number
    kinds = {MALFORMED_OUTPUT: "malformed_output", LARGE_OUTPUT: "output_too_large"}
    requests = {}
    for guest in kinds:
        image = program_image(Program.from_file(built(guest.name)))
        program_id = register_program(harness.registry, harness.tx(9), image)
        requests[guest] = harness.request(input=b"", program=program_id, step_limit=1_000_000)
    fees = 0
    for guest, kind in kinds.items():
        report = harness.wait_final(requests[guest])
        assert report["result"]["kind"] == kind and report["result"]["output"] == "0x", guest.name
        assert report["result"]["exited"] and report["result"]["exit_code"] == 0
        assert [claim["status"] for claim in report["claims"]] == ["finalized"]
        assert report["games"] == []
        fees += report["fee"]
    received, burned = money(harness, start_block)
    assert burned == 0 and received[harness.address(SUBMITTER)] == fees + 2 * CLAIM_BOND  # nothing lost


def test_bad_requests_get_a_reason_and_send_nothing(harness):
    url = f"{harness.url('submitter')}/inference-requests"
    before = harness.registry.count("request")
    cases = {
        "unknown model": {"model": "0x" + "ab" * 32, "input_base64": "AAAA"},
        "unknown model id": {"model": "999", "input_base64": "AAAA"},
        "wrong input length": {"model": harness.model_id, "input_base64": "AAAA"},
        "negative fee": {"model": harness.model_id, "pixels": list(SEVEN), "fee": -1},
        "pixels out of range": {"model": harness.model_id, "pixels": [300] * 784},
        "both inputs": {"model": harness.model_id, "pixels": list(SEVEN), "input_base64": "AAAA"},
        "not base64": {"model": harness.model_id, "input_base64": "%%%"},
        "step limit too large": {"model": harness.model_id, "pixels": list(SEVEN), "step_limit": 1 << 40},
        "text for an image model": {"model": harness.model_id, "text": "A man is eating food."},
        "text and pixels": {"model": harness.model_id, "pixels": list(SEVEN), "text": "seven"},
        "unknown field": {"model": harness.model_id, "pixels": list(SEVEN), "colour": "blue"},
    }
    for case, body in cases.items():
        response = httpx.post(url, json=body, timeout=30)
        assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
        assert response.json()["message"], case
    garbage = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}, timeout=30)
    assert garbage.status_code == 400 and garbage.json()["message"].startswith("the body is not valid JSON")
    as_text = httpx.post(url, content=b'{"model": "1"}', headers={"content-type": "text/plain"}, timeout=30)
    assert as_text.status_code == 415 and "application/json" in as_text.json()["message"]
    huge = httpx.post(url, content=b"[" + b"1," * (5 << 20) + b"1]", headers={"content-type": "application/json"})
    assert huge.status_code == 413
    assert httpx.get(f"{harness.url('submitter')}/inference-requests/99999", timeout=30).status_code == 404
    assert httpx.get(f"{harness.url('challenger')}/disputes/99999", timeout=30).status_code == 404
    assert harness.registry.count("request") == before  # nothing was sent


def pages(harness, service: str, path: str, **params) -> tuple[list[dict], int, int]:
    """Every item of a list, page by page (100 a page), with its total and the block the first page was read at."""
    items, total, block, offset = [], None, None, 0
    while total is None or offset < total:
        response = httpx.get(f"{harness.url(service)}{path}", params={**params, "offset": offset, "limit": 100},
                             timeout=60)  # fmt: skip
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        total, block = page["total"], block if block is not None else page["block"]
        offset += 100
    return items, total, block


def agree(read, attempts: int = 20):
    """`read()` until two of its lists were read at the same block (the stack's other users mine blocks)."""
    for _ in range(attempts):
        first, second = read()
        if first[2] == second[2]:
            return first, second
    raise AssertionError("no two reads at the same block")


def test_lists_are_filtered_and_paged_where_the_data_is(harness):
    """GET /inference-requests and GET /disputes filter by status (and by who played, which request) and page in
    the store: each filtered list is exactly the matching items of the whole list read at the same block."""
    with running(harness, ("liar", "submitter", 3, {"SUBMITTER_FAULT_LIE": "output"})):
        request_id = harness.request()
        harness.wait_games_over(request_id, 2)
        harness.wait_final(request_id)
    for status in ("final", "claimed", "requested"):
        everything, filtered = agree(lambda: (pages(harness, "submitter", "/inference-requests"),
                                              pages(harness, "submitter", "/inference-requests", status=status)))  # fmt: skip
        matching = [item["id"] for item in everything[0] if item["status"] == status]
        assert [item["id"] for item in filtered[0]] == matching and filtered[1] == len(matching), status
    everything, _, _ = pages(harness, "submitter", "/inference-requests")
    assert [item["id"] for item in everything] == sorted((item["id"] for item in everything), reverse=True)
    assert request_id in [item["id"] for item in pages(harness, "submitter", "/inference-requests",
                                                        status="final", submitted_here="true")[0]]  # fmt: skip
    second = httpx.get(f"{harness.url('submitter')}/inference-requests", params={"offset": 1, "limit": 2}).json()
    assert [item["id"] for item in second["items"]] == [item["id"] for item in everything[1:3]]

    challenger = harness.address(CHALLENGER)
    for filters in ({"status": "challenger_won"}, {"status": "defender_won"}, {"mine": "true"},
                    {"mine": "false", "status": "challenger_won"}, {"request_id": request_id}):  # fmt: skip
        everything, filtered = agree(lambda: (pages(harness, "challenger", "/disputes"),
                                              pages(harness, "challenger", "/disputes", **filters)))  # fmt: skip

        def matches(game: dict) -> bool:
            return (
                game["status"] == filters.get("status", game["status"])
                and (filters.get("mine") is None or (game["challenger"] == challenger) == (filters["mine"] == "true"))
                and game["request_id"] == filters.get("request_id", game["request_id"])
            )

        matching = [game["id"] for game in everything[0] if matches(game)]
        assert [game["id"] for game in filtered[0]] == matching and filtered[1] == len(matching), filters
    ours = pages(harness, "challenger", "/disputes", request_id=request_id)[0]
    assert len(ours) == 2 and {game["status"] for game in ours} == {"challenger_won"}
    briefs = httpx.get(f"{harness.url('challenger')}/requests", params={"status": "final", "limit": 100}).json()
    assert request_id in [item["id"] for item in briefs["items"]]
    assert {item["status"] for item in briefs["items"]} == {"final"}
