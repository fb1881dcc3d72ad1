"""The agents on a real anvil, with traces computed in-process: they find requests and claims by polling
the chain and play every round on their own."""

import time
import uuid

import pytest

from opml.agents.challenger import ChallengerAgent
from opml.agents.runtime import AgentConfig
from opml.agents.solvers import ChallengerFaults, SubmitterFaults
from opml.agents.store import AgentStore
from opml.agents.submitter import SubmitterAgent
from opml.agents.traces import LocalTraces, StaticModels
from opml.agents.work import WorkKey
from opml.chain.anvil import dev_key
from opml.chain.client import TransactionManager, connect
from opml.chain.deploy import deploy_with_defaults, program_image, register_program
from opml.chain.registry import Registry
from opml.guest import LARGE_OUTPUT, MALFORMED_OUTPUT, built
from opml.models.formats import Prediction
from opml.protocol.parameters import Parameters
from opml.protocol.types import ClaimStatus, GameStatus, RequestStatus, ResultKind
from opml.resources import seed_model_dir
from opml.service.db import ensure_database
from opml.vm.elf import Program

BASE = Parameters(max_step_limit=10_000_000)  # window and clocks sized for this machine (tests/timing.py)
STEP_LIMIT = 5_000_000
CONFIG = AgentConfig(poll_interval=0.1, withdraw_interval=1.0)
MODEL = (seed_model_dir() / "model.bin").read_bytes()
INPUT_7 = (seed_model_dir() / "input_7.bin").read_bytes()


@pytest.fixture()
def chain(anvil, timing):
    w3 = connect(anvil.url)
    deployment = deploy_with_defaults(w3, TransactionManager(w3, dev_key(0)), timing.sized(BASE), "seed")
    return w3, deployment, Registry(w3, deployment.registry)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])  # PostgreSQL: make test-slow
def database(request, tmp_path):
    """Where the agents keep their memory: a SQLite file, or a database on a real PostgreSQL server."""
    if request.param == "sqlite":
        return lambda name: str(tmp_path / f"{name}.db")
    server = request.getfixturevalue("postgres_server").url.rsplit("/", 1)[0]

    def url(name: str) -> str:
        database_url = f"{server}/{name}_{uuid.uuid4().hex[:12]}"
        ensure_database(database_url)
        return database_url

    return url


@pytest.fixture(scope="module")
def traces():
    return LocalTraces(StaticModels(MODEL))


def make(kind, chain, key_index, database, traces, **kwargs):
    w3, deployment, registry = chain
    store = AgentStore.open(database(f"{kind.role}_{key_index}"))
    agent = kind(
        registry=Registry(w3, deployment.registry),
        tx=TransactionManager(w3, dev_key(key_index), store.journal()),
        store=store,
        traces=traces,
        deployment=deployment,
        config=CONFIG,
        **kwargs,
    )
    return agent


def request(chain, input=INPUT_7, fee=10**15) -> int:
    w3, deployment, registry = chain
    TransactionManager(w3, dev_key(9)).send(
        registry.request_inference(deployment.program_id, deployment.model_id, input, STEP_LIMIT), value=fee
    )
    return registry.count("request")


def patience(registry) -> float:
    """Long enough for anything a request goes through on this deployment: its window, a game played to the last
    clock second by both sides, and a minute for the machine."""
    return registry.parameters.challenge_window + 2 * registry.parameters.clock_budget + 60


def wait_for(condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Running:
    """Start agents for the duration of a `with` block."""

    def __init__(self, *agents):
        self.agents = agents

    def __enter__(self):
        for agent in self.agents:
            agent.start()
        return self

    def __exit__(self, *exc):
        for agent in self.agents:
            agent.stop()


def final_claim_of(registry, request_id):
    request = registry.request(request_id)
    return registry.claim(request.final_claim) if request.status == RequestStatus.FINALIZED else None


def test_an_honest_request_becomes_final_on_its_own(chain, database, traces):
    _, _, registry = chain
    submitter = make(SubmitterAgent, chain, 1, database, traces)
    challenger = make(ChallengerAgent, chain, 2, database, traces)
    request_id = request(chain)
    with Running(submitter, challenger):
        wait_for(lambda: final_claim_of(registry, request_id) is not None, patience(registry), "finality")
        claim_id = registry.request(request_id).final_claim
        wait_for(
            lambda: getattr(challenger.store.work(WorkKey.claim(claim_id)), "state", None) == "honest", 10, "a verdict"
        )
    assert registry.claim(claim_id).claimant == submitter.address
    assert registry.game_of(claim_id, challenger.address) == 0 and registry.count("game") == 0
    expected = traces.trace_for(submitter.request_view(request_id)).final_claim().output
    assert registry.result(request_id).output_hash == registry.w3.keccak(expected)
    assert Prediction.from_bytes(expected).predicted == 7


@pytest.mark.parametrize("lie", [SubmitterFaults(lie="output"), SubmitterFaults(lie="states", lie_from_step=1),
                                 SubmitterFaults(lie="states", lie_from_step=977_000)], ids=["output", "first", "middle"])  # fmt: skip
def test_a_lying_submitter_loses_and_the_honest_claim_becomes_final(chain, database, traces, lie):
    _, _, registry = chain
    honest = make(SubmitterAgent, chain, 1, database, traces)
    liar = make(SubmitterAgent, chain, 3, database, traces, solvers=lie.solvers(traces))
    challenger = make(ChallengerAgent, chain, 2, database, traces)
    request_id = request(chain)
    with Running(honest, liar, challenger):
        wait_for(lambda: final_claim_of(registry, request_id) is not None, patience(registry), "finality")
        wait_for(lambda: registry.count("game") == 2 and not any(registry.game(g).active for g in (1, 2)),
                 patience(registry), "both games' end")  # fmt: skip
    # the challenger and the honest submitter (which defends its result, not only its claim) both dispute it
    games = [registry.game(game_id) for game_id in (1, 2)]
    assert {game.challenger for game in games} == {challenger.address, honest.address}
    for game in games:
        assert game.status == GameStatus.CHALLENGER_WON
        assert registry.claim(game.claim_id).claimant == liar.address
        if lie.lie == "states":
            assert game.lo == lie.lie_from_step - 1  # narrowed to the very step where the lie starts
    assert registry.claim(games[0].claim_id).status == ClaimStatus.REJECTED
    assert final_claim_of(registry, request_id).claimant == honest.address


def test_a_challenger_that_disputes_honest_claims_loses(chain, database, traces):
    _, _, registry = chain
    submitter = make(SubmitterAgent, chain, 1, database, traces)
    liar = make(ChallengerAgent, chain, 4, database, traces, solvers=ChallengerFaults(dispute_honest=True).solvers())
    request_id = request(chain)
    with Running(submitter, liar):
        wait_for(
            lambda: registry.count("game") > 0 and not registry.game(1).active, patience(registry), "the game's end"
        )
        wait_for(lambda: final_claim_of(registry, request_id) is not None, patience(registry), "finality")
    assert registry.game(1).status == GameStatus.DEFENDER_WON
    assert final_claim_of(registry, request_id).claimant == submitter.address


def test_silent_parties_lose_on_time(chain, database, traces):
    _, _, registry = chain
    honest = make(SubmitterAgent, chain, 1, database, traces)
    silent_liar = make(SubmitterAgent, chain, 3, database, traces,
                       solvers=SubmitterFaults(lie="output", silent_after_rounds=2).solvers(traces))  # fmt: skip
    challenger = make(ChallengerAgent, chain, 2, database, traces)
    silent_challenger = make(ChallengerAgent, chain, 4, database, traces,
                             solvers=ChallengerFaults(dispute_honest=True, silent_after_rounds=1).solvers())  # fmt: skip
    request_id = request(chain)
    with Running(honest, silent_liar, challenger, silent_challenger):
        wait_for(lambda: final_claim_of(registry, request_id) is not None, patience(registry), "finality")
        # the challenger and the honest submitter each dispute the lie; the silent challenger disputes both claims
        wait_for(lambda: registry.count("game") >= 4 and not any(registry.game(g).active for g in range(1, 5)),
                 patience(registry), "every game's end")  # fmt: skip
    for game_id in range(1, registry.count("game") + 1):
        game = registry.game(game_id)
        defender = registry.claim(game.claim_id).claimant
        if game.challenger == silent_challenger.address:  # it stopped after a round, against anyone
            assert game.status == GameStatus.DEFENDER_WON and game.rounds == 1
        elif defender == silent_liar.address:  # it stopped after two rounds
            assert game.status == GameStatus.CHALLENGER_WON and game.rounds == 2
    assert final_claim_of(registry, request_id).claimant == honest.address


def test_two_honest_submitters_share_a_request_without_tripping_over_each_other(chain, database, traces):
    _, _, registry = chain
    first = make(SubmitterAgent, chain, 1, database, traces)
    second = make(SubmitterAgent, chain, 7, database, traces)
    request_id = request(chain)
    with Running(first, second):
        wait_for(lambda: final_claim_of(registry, request_id) is not None, patience(registry), "finality")
        wait_for(lambda: registry.request(request_id).live_claims == 0, patience(registry), "the other claim settled")
    claims = [registry.claim(claim_id) for claim_id in range(1, registry.count("claim") + 1)]
    assert sorted(claim.claimant for claim in claims) == sorted([first.address, second.address])
    assert sorted(claim.status.name for claim in claims) == ["FINALIZED", "RETIRED"]
    assert not any(row.status == "reverted" for agent in (first, second) for row in agent.store.transactions())


@pytest.mark.parametrize(
    ("guest", "kind"),
    [(MALFORMED_OUTPUT, ResultKind.MALFORMED_OUTPUT), (LARGE_OUTPUT, ResultKind.OUTPUT_TOO_LARGE)],
    ids=["malformed", "too large"],
)
def test_a_program_that_writes_no_valid_output_ends_with_its_kind(chain, database, guest, kind):
    """A nonzero byte after a zero-length output, or a length prefix beyond the region: the submitter claims
    the true final state, defends it against a challenger that disputes honest claims, and finalizes it with
    the proof of its kind; the honest challenger agrees; nobody honest loses a bond or stalls."""
    w3, deployment, registry = chain
    traces = LocalTraces(StaticModels(MODEL))  # its own: traces are cached by request id, and ids restart here
    owner = TransactionManager(w3, dev_key(9))
    program_id = register_program(registry, owner, program_image(Program.from_file(built(guest.name))))
    submitter = make(SubmitterAgent, chain, 1, database, traces)
    challenger = make(ChallengerAgent, chain, 2, database, traces)
    disputer = make(
        ChallengerAgent, chain, 4, database, traces, solvers=ChallengerFaults(dispute_honest=True).solvers()
    )
    owner.send(registry.request_inference(program_id, deployment.model_id, b"", STEP_LIMIT), value=10**15)
    request_id = registry.count("request")
    with Running(submitter, challenger, disputer):
        wait_for(lambda: final_claim_of(registry, request_id) is not None, patience(registry), "finality")
        claim_id = registry.request(request_id).final_claim
        wait_for(
            lambda: getattr(challenger.store.work(WorkKey.claim(claim_id)), "state", None) == "honest", 10, "a verdict"
        )
    result = registry.result(request_id)
    assert result is not None and result.kind == kind and result.exit_code == 0
    assert result.output_hash == w3.keccak(b"")
    assert registry.claim(claim_id).claimant == submitter.address
    (game_id,) = range(1, registry.count("game") + 1)
    assert registry.game(game_id).status == GameStatus.DEFENDER_WON  # the disputer of the truth lost
    assert registry.game_of(claim_id, challenger.address) == 0
    for agent in (submitter, challenger):
        assert not any(row.status == "reverted" for row in agent.store.transactions())
    assert registry.claim(claim_id).status == ClaimStatus.FINALIZED  # the submitter's bond came back with the fee
