"""The agents against the seed's node: a Hardhat node instead of anvil, so nothing anvil-only is used.
One honest request and one disputed lie, end to end through the services."""

import pytest

from .conftest import E2E_BASE, started_stack
from .test_scenarios import claims_by, running

SUBMITTER, CHALLENGER = 1, 2
pytestmark = pytest.mark.slow  # the seed's node: make test-slow (CI)


@pytest.fixture(scope="module")
def hardhat(tmp_path_factory, timing):
    # Hardhat stamps each block a second after the last when blocks come faster: chain time runs ahead of the
    # clock by a second per transaction of every game, so its clocks are longer than anvil's
    parameters = timing.sized(E2E_BASE, window_floor=20, clock_floor=90)
    with started_stack(tmp_path_factory.mktemp("hardhat"), parameters, node="hardhat") as harness:
        yield harness


def test_an_honest_request_becomes_final_on_hardhat(hardhat):
    report = hardhat.wait_final(hardhat.request())
    assert report["result"]["predicted"] == 7
    assert [claim["claimant"] for claim in report["claims"]] == [hardhat.address(SUBMITTER)]


def test_a_lie_is_disputed_and_loses_on_hardhat(hardhat):
    with running(
        hardhat, ("liar", "submitter", 3, {"SUBMITTER_FAULT_LIE": "states", "SUBMITTER_FAULT_LIE_FROM_STEP": "500000"})
    ):
        request_id = hardhat.request()
        games = hardhat.wait_games_over(request_id, 2)  # the challenger's and the honest submitter's
        report = hardhat.wait_final(request_id)
    assert {game["challenger"] for game in games} == {hardhat.address(SUBMITTER), hardhat.address(CHALLENGER)}
    for game in games:
        dispute = hardhat.dispute(game["id"])
        assert dispute["status"] == "challenger_won" and dispute["lo"] == 500_000 - 1
    assert claims_by(report, hardhat.address(3))[0]["status"] == "rejected"
    assert claims_by(report, hardhat.address(SUBMITTER))[0]["status"] == "finalized"
