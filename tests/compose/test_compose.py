"""The compose stack on a real Docker engine (`make test-compose`; not part of `make test`).

The engine is started here (tests/compose/engine.py), the images built, `docker compose up -d`, and
every healthcheck waited for; then the system is driven only from outside, through the published
ports, as a user would: the seed's 7 becomes final through POST /inference-requests; with
compose.faults.yml a lying submitter joins and loses its dispute (GET /disputes/{id}, its bond to
the challenger); and faults are injected through the Docker SDK: the challenger SIGKILLed mid-game
and started again still wins, PostgreSQL restarted mid-run loses nothing, a vm-worker replica
killed while the others serve. The stack is taken down (`down -v`) and the engine stopped at the
end, whatever happened.
"""

from __future__ import annotations

import base64
import time

import httpx
import pytest
from eth_account import Account

from opml.chain.anvil import dev_key
from opml.protocol.parameters import Parameters, kept_share
from opml.resources import seed_model_dir

from .engine import Engine, Project, log

# Short windows so the test waits seconds; the clock budget leaves room for a killed agent to come back. Node runs
# of up to 2^31 steps: a short prompt's generation (its LM head chunks are 1.02e9 steps each).
DEPLOY_OPTIONS = "--challenge-window 8 --clock-budget 90 --request-timeout 300 --max-step-limit 2147483648"
PARAMETERS = Parameters(challenge_window=8, clock_budget=90, request_timeout=300, max_step_limit=1 << 31)
LIE_FROM_STEP = 977_000  # the liar's states are made up from this step on
SEVEN = (seed_model_dir() / "input_7.bin").read_bytes()
SUBMITTER, CHALLENGER, LIAR = (Account.from_key(dev_key(index)).address for index in (1, 2, 3))


def wait_for(condition, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except httpx.HTTPError:  # a service that is restarting
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Stack:
    """The running project and the HTTP calls the scenarios make on its published ports."""

    def __init__(self, project: Project):
        self.project = project
        self.http = httpx.Client(timeout=60)
        self.model_id: str | None = None

    def url(self, service: str) -> str:
        return self.project.url(service)

    def upload_seed(self) -> dict:
        """The seed's state_dict through the converter, registered on-chain (as opml/demo.py does)."""
        response = self.http.post(
            f"{self.url('converter')}/models",
            files={"file": ("mnist-small.state_dict", (seed_model_dir() / "mnist-small.state_dict").read_bytes())},
            data={"register": "true"},
            timeout=180,
        )
        assert response.status_code in (200, 201), response.text
        upload = response.json()
        self.model_id = upload["id"]
        return upload

    def request(self) -> int:
        body = {"model": self.model_id, "input_base64": base64.b64encode(SEVEN).decode()}
        response = self.http.post(f"{self.url('submitter')}/inference-requests", json=body)
        assert response.status_code == 202, response.text
        return response.json()["request_id"]

    def report(self, request_id: int) -> dict:
        response = self.http.get(f"{self.url('submitter')}/inference-requests/{request_id}")
        return response.json() if response.status_code == 200 else {}

    def dispute(self, game_id: int) -> dict:
        response = self.http.get(f"{self.url('challenger')}/disputes/{game_id}")
        return response.json() if response.status_code == 200 else {}

    def disputes(self) -> dict:
        return self.http.get(f"{self.url('challenger')}/disputes").json()

    def wait_final(self, request_id: int, timeout: float = 240) -> dict:
        return wait_for(lambda: (r := self.report(request_id)).get("status") == "final" and r, timeout,
                        f"request {request_id} final")  # fmt: skip

    def games(self, request_id: int, count: int, timeout: float = 180) -> list[dict]:
        return wait_for(lambda: len(games := self.report(request_id).get("games", [])) >= count and games, timeout,
                        f"{count} games on request {request_id}")  # fmt: skip

    def game_of(self, request_id: int, challenger: str, timeout: float = 180) -> int:
        """The game the given account opened on the request."""
        return wait_for(lambda: next((game["id"] for game in self.report(request_id).get("games", [])
                                      if game["challenger"] == challenger), None), timeout,
                        f"{challenger}'s game on request {request_id}")  # fmt: skip

    def wait_round(self, game_id: int, round_: int, timeout: float = 180) -> dict:
        return wait_for(lambda: (d := self.dispute(game_id)).get("rounds", -1) >= round_ and d, timeout,
                        f"round {round_} of game {game_id}")  # fmt: skip

    def wait_game_over(self, game_id: int, timeout: float = 300) -> dict:
        """Until the game has ended and the challenger's index holds its bonds."""
        return wait_for(lambda: (d := self.dispute(game_id)).get("status", "active") != "active" and d["bonds"] and d,
                        timeout, f"the end of game {game_id}")  # fmt: skip


@pytest.fixture(scope="module")
def stack():
    engine = Engine()
    project = None
    try:
        engine.start()
        started = time.monotonic()
        built_base = engine.ensure_base_image()
        project = Project(engine, env={"OPML_DEPLOY_OPTIONS": DEPLOY_OPTIONS, "OPML_LIE_FROM_STEP": str(LIE_FROM_STEP),
                                        "OPML_LOG_LEVEL": "info"})  # fmt: skip
        project.down()  # whatever an interrupted run left
        project.faults = False
        build_s = project.build()
        log(f"images built in {build_s:.0f} s (base image {'built' if built_base else 'cached'}); "
            f"sizes MB: {project.image_sizes()}")  # fmt: skip
        up = time.monotonic()
        project.compose("up", "-d")
        project.wait_ready(timeout=300)
        log(
            f"up -d to every healthcheck passing: {time.monotonic() - up:.0f} s (setup so far {time.monotonic() - started:.0f} s)"
        )
        stack = Stack(project)
        yield stack
    except BaseException:
        if project is not None:
            log("logs of the stack:\n" + project.logs())
        raise
    finally:
        try:
            if project is not None:
                project.down()
        finally:
            engine.stop()


@pytest.fixture(autouse=True)
def logs_on_failure(request, stack):
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        log("logs of the stack:\n" + stack.project.logs(120))


def test_every_service_is_healthy_and_swagger_is_served(stack):
    for service in stack.project.containers():
        name = service.labels["com.docker.compose.service"]
        assert service.attrs["State"]["Health"]["Status"] == "healthy", name
        assert service.attrs["Config"]["User"] in ("opml", "anvil", "postgres"), name  # never root
    for name in ("converter", "submitter", "challenger"):
        docs = stack.http.get(f"{stack.url(name)}/docs")
        assert docs.status_code == 200 and "https://" not in docs.text, name  # its scripts served by the image
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
            assert stack.http.get(f"{stack.url(name)}/static-offline-docs/{asset}").status_code == 200, (name, asset)
        assert stack.http.get(f"{stack.url(name)}/readyz").status_code == 200, name
    (worker,) = stack.project.containers("vm-worker")
    port = worker.ports["8002/tcp"][0]
    assert port["HostIp"] == "127.0.0.1"
    assert stack.http.get(f"http://127.0.0.1:{port['HostPort']}/readyz").status_code == 200
    chain_id = stack.http.post(stack.url("anvil"), json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).json()
    assert int(chain_id["result"], 16) == 31337
    deployer = stack.project.container("deployer")
    assert deployer.attrs["State"]["ExitCode"] == 0


def test_the_deployer_run_again_keeps_the_live_deployment(stack):
    before = stack.project.compose("exec", "-T", "submitter", "cat", "/deployment/deployment.json", capture=True).stdout
    stack.project.compose("up", "-d", "--no-deps", "--force-recreate", "deployer")
    deployer = wait_for(
        lambda: (c := stack.project.container("deployer")).reload() or c.status == "exited" and c, 60, "the deployer"
    )
    assert deployer.attrs["State"]["ExitCode"] == 0
    assert b"nothing to do" in deployer.logs()
    after = stack.project.compose("exec", "-T", "submitter", "cat", "/deployment/deployment.json", capture=True).stdout
    assert after == before and '"registry"' in after


def test_an_honest_request_becomes_final_as_a_seven(stack):
    upload = stack.upload_seed()
    assert upload["onchain_model_id"] is not None
    request_id = stack.request()
    report = stack.wait_final(request_id)
    assert report["result"]["predicted"] == 7 and report["result"]["exit_code"] == 0
    assert [claim["claimant"] for claim in report["claims"]] == [SUBMITTER]
    assert report["games"] == []
    events = [event for tx in report["transactions"] for event in tx["events"]]
    assert events == ["InferenceRequested", "ClaimCommitted", "ClaimSubmitted", "ResultFinalized"]


def test_text_requests_for_both_text_models_become_final(stack):
    """all-MiniLM-L6-v2's `text` and SmolLM2's `prompt`, tokenized by the submitter's image (they were refused with
    422 before the images had the tokenizer: tests/test_compose_static.py), answered and final."""
    from opml.models import minilm
    from opml.models.llm.gguf_import import packaged_model_file
    from opml.models.llm.graph import evaluate_generation, weights_of
    from opml.models.llm.requests import text_input

    bodies = {}
    for name, model, body in [
        ("minilm.onnx", minilm.export_onnx(), {"text": "A man is eating food."}),
        ("smollm2.oplm", packaged_model_file(), {"prompt": "The capital of France is", "max_new_tokens": 4}),
    ]:
        upload = stack.http.post(f"{stack.url('converter')}/models", files={"file": (name, model)},
                                 data={"register": "true"}, timeout=600)  # fmt: skip
        assert upload.status_code in (200, 201), upload.text
        response = stack.http.post(f"{stack.url('submitter')}/inference-requests",
                                   json={"model": upload.json()["id"], **body}, timeout=120)  # fmt: skip
        assert response.status_code == 202, response.text
        bodies[name] = (response.json()["request_id"], model)
    embedding = stack.wait_final(bodies["minilm.onnx"][0], timeout=600)
    assert len(embedding["result"]["embedding"]) == 384 and abs(embedding["result"]["norm"] - 1) < 1e-5
    request_id, model = bodies["smollm2.oplm"]
    answer = stack.wait_final(request_id, timeout=600)
    expected = evaluate_generation(model, text_input("The capital of France is", 4, weights_of(model).config))
    assert answer["game"] == "two_phase" and answer["result"]["tokens"] == expected.tokens
    assert answer["generation"]["prompt"] == "The capital of France is" and answer["result"]["text"]


def assert_lie_lost(stack, request_id: int) -> list[dict]:
    """The liar's claim was disputed by both honest agents (the challenger, and the submitter, which defends the
    result of a request it serves) and lost both games down to the step the lie starts at; each winner got its bond
    back and a refund per move of its own, the rest of the lie's bond was burned; the honest claim is final as a 7."""
    games = stack.games(request_id, count=2)
    assert {game["challenger"] for game in games} == {SUBMITTER, CHALLENGER}
    refunds, burned = 0, 0
    disputes = [stack.wait_game_over(game["id"]) for game in games]
    for dispute in disputes:
        assert dispute["status"] == "challenger_won" and dispute["winner"] == dispute["challenger"]
        assert dispute["defender"] == LIAR
        assert dispute["lo"] == LIE_FROM_STEP - 1 and dispute["hi"] == LIE_FROM_STEP
        assert len(dispute["history"]) == dispute["rounds"] and all(
            r["segment"] is not None for r in dispute["history"]
        )
        assert dispute["final_step"]["step"] == LIE_FROM_STEP - 1
        to = {}
        for bond in dispute["bonds"]:
            to[bond["account"]] = to.get(bond["account"], 0) + bond["amount"]
        assert LIAR not in to
        refund = to[dispute["challenger"]] - PARAMETERS.challenge_bond  # its bond back and its own moves refunded:
        moves = (dispute["rounds"] + 1, dispute["rounds"] + 2)  # challenge, selects, and the final step if it sent it
        assert refund in [count * PARAMETERS.move_refund for count in moves]
        refunds += refund
        burned += to.get("burned", 0)  # burned when the claim's last game ends
    assert refunds <= kept_share(PARAMETERS, PARAMETERS.claim_bond)
    assert burned == PARAMETERS.claim_bond - refunds
    report = stack.wait_final(request_id)
    assert report["result"]["predicted"] == 7
    claims = {claim["claimant"]: claim["status"] for claim in report["claims"]}
    assert claims == {SUBMITTER: "finalized", LIAR: "rejected"}
    return disputes


def test_with_the_fault_override_a_lie_is_disputed_and_loses(stack):
    stack.project.faults = True
    stack.project.compose("up", "-d", "liar")
    stack.project.wait_ready(timeout=180, services=["liar"])
    request_id = stack.request()
    assert_lie_lost(stack, request_id)


def test_the_challenger_killed_mid_game_and_started_again_still_wins(stack):
    request_id = stack.request()
    game_id = stack.game_of(request_id, CHALLENGER)
    rounds = stack.wait_round(game_id, 2)["rounds"]
    challenger = stack.project.container("challenger")
    challenger.kill(signal="SIGKILL")
    challenger.reload()
    assert challenger.status == "exited"
    log(f"challenger killed after round {rounds} of game {game_id}")
    time.sleep(2)
    challenger.start()
    stack.project.wait_ready(timeout=120, services=["challenger"])
    assert_lie_lost(stack, request_id)


def test_postgres_restarted_mid_run_loses_nothing(stack):
    before = {request_id: stack.report(request_id) for request_id in (1, 2, 3)}
    disputes_before = stack.disputes()
    assert all(report.get("status") == "final" for report in before.values())
    request_id = stack.request()
    game_id = stack.game_of(request_id, CHALLENGER)
    rounds = stack.wait_round(game_id, 1)["rounds"]
    postgres = stack.project.container("postgres")
    postgres.restart(timeout=10)
    log(f"postgres restarted after round {rounds} of game {game_id}")
    stack.project.wait_ready(timeout=120, services=["postgres"])
    assert_lie_lost(stack, request_id)
    for earlier, report in before.items():  # what was recorded before the restart is all still there
        again = stack.report(earlier)
        for key in ("status", "result", "claims", "games", "transactions"):
            assert again[key] == report[key], (earlier, key)
    disputes_after = stack.disputes()
    assert disputes_after["total"] == disputes_before["total"] + 2
    old = {item["id"]: item for item in disputes_before["items"]}
    for item in disputes_after["items"]:
        if item["id"] in old:
            assert item["history"] == old[item["id"]]["history"] and item["bonds"] == old[item["id"]]["bonds"]


def test_a_vm_worker_replica_killed_while_the_others_serve(stack):
    stack.project.compose("up", "-d", "--no-recreate", "--scale", "vm-worker=3", "vm-worker")
    stack.project.wait_ready(timeout=180, services=["vm-worker"])
    workers = stack.project.containers("vm-worker")
    assert len(workers) == 3
    ports = sorted(int(worker.ports["8002/tcp"][0]["HostPort"]) for worker in workers)
    assert len(set(ports)) == 3
    request_id = stack.request()
    game_id = stack.game_of(request_id, CHALLENGER)
    rounds = stack.wait_round(game_id, 1)["rounds"]
    victim = min(workers, key=lambda worker: worker.attrs["Created"])  # the one the agents have used since the start
    victim.kill(signal="SIGKILL")
    log(f"vm-worker {victim.name} killed after round {rounds} of game {game_id}")
    assert_lie_lost(stack, request_id)
    serving = [worker for worker in stack.project.containers("vm-worker") if worker.status == "running"]
    assert len(serving) == 2
    urls = [f"http://127.0.0.1:{worker.ports['8002/tcp'][0]['HostPort']}" for worker in serving]
    for url in urls:
        assert stack.http.get(f"{url}/readyz").status_code == 200
    assert_a_run_asked_of_one_replica_runs_once(stack, urls)


def assert_a_run_asked_of_one_replica_runs_once(stack, urls: list[str]) -> None:
    """The job queue: a run asked of one replica and queried through another is executed by one of them."""
    executed = lambda: sum(metric(stack, url, "vm_worker_executions_total") for url in urls)  # noqa: E731
    before = executed()
    spin = next(p for p in stack.http.get(f"{urls[0]}/programs").json() if "spin" in p["name"])
    request = {"program": {"root": spin["root"]}, "model": None, "input_base64": "", "step_limit": (1 << 28) + 7}
    created = stack.http.post(f"{urls[0]}/executions", json=request)
    assert created.status_code in (201, 202), created.text
    location = created.headers["location"]
    states = stack.http.post(f"{urls[1]}{location}/states", json={"steps": [1, 1 << 27]}, timeout=120)
    again = stack.http.post(f"{urls[0]}{location}/states", json={"steps": [1, 1 << 27]}, timeout=120)
    assert states.status_code == 200 and states.json() == again.json()
    assert executed() == before + 1
    log(f"a run of 2^28 steps asked of {urls[0]}, queried through {urls[1]}: executed once")


def metric(stack, url: str, name: str) -> float:
    """The metric's value, summed over its labels."""
    lines = stack.http.get(f"{url}/metrics").text.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith((name + " ", name + "{")))
