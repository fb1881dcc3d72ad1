"""The seed tutorial's flow by hand, through the `opml` command on a real anvil (docs/tutorial.md):
deploy, request, an honest claim and a lying one, challenge, respond round by round, resolve, finalize."""

import json
import subprocess
import sys
import time

import pytest

from opml.chain.anvil import advance_time
from opml.resources import seed_model_dir

LIE_FROM = 1_000_000


def opml(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "opml.cli", *args], capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0, f"opml {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def as_json(*args, cwd) -> dict:
    return json.loads(opml(*args, "--json", cwd=cwd).stdout)


@pytest.mark.slow  # one process per command: about 50 s
def test_the_tutorial_flow(anvil, w3, tmp_path):
    rpc = ["--rpc", anvil.url]
    opml("deploy", *rpc, "-o", "deployment.json", "--challenge-window", "600", "--clock-budget", "3600", cwd=tmp_path)
    seven = str(seed_model_dir() / "input_7.bin")
    request_id = as_json("request", *rpc, "--input", seven, "--account", "5", cwd=tmp_path)["request_id"]

    honest = as_json("claim", *rpc, "--request", str(request_id), "--account", "1", cwd=tmp_path)
    lie = as_json("claim", *rpc, "--request", str(request_id), "--account", "3", "--lie-from", str(LIE_FROM),
                  cwd=tmp_path)  # fmt: skip
    assert honest["steps"] == lie["steps"] and honest["final_state_hash"] != lie["final_state_hash"]
    game_id = as_json("challenge", *rpc, "--claim", str(lie["claim_id"]), "--account", "2", cwd=tmp_path)["game_id"]

    rounds = 0
    while as_json("status", *rpc, "--game", str(game_id), cwd=tmp_path)["hi"] - \
            as_json("status", *rpc, "--game", str(game_id), cwd=tmp_path)["lo"] > 1:  # fmt: skip
        opml("respond", *rpc, "--game", str(game_id), "--as", "defender", "--lie-from", str(LIE_FROM),
             "--account", "3", cwd=tmp_path)  # fmt: skip
        opml("respond", *rpc, "--game", str(game_id), "--as", "challenger", "--account", "2", cwd=tmp_path)
        rounds += 1
    game = as_json("status", *rpc, "--game", str(game_id), cwd=tmp_path)
    assert rounds <= 6 and game["lo"] == LIE_FROM - 1  # narrowed to the first lying step
    resolved = opml("resolve", *rpc, "--game", str(game_id), "--account", "2", cwd=tmp_path)
    assert "challenger_won" in resolved.stderr

    advance_time(w3, 600)
    time.sleep(0.1)
    opml("finalize", *rpc, "--claim", str(honest["claim_id"]), "--account", "1", cwd=tmp_path)
    status = as_json("status", *rpc, "--request", str(request_id), cwd=tmp_path)
    assert status["status"] == "finalized" and status["final_claim"] == honest["claim_id"]
    assert status["result"]["exited"] and status["result"]["exit_code"] == 0


def test_the_commands_refuse_what_cannot_be_done(anvil, tmp_path):
    rpc = ["--rpc", anvil.url]
    opml("deploy", *rpc, "-o", "deployment.json", cwd=tmp_path)
    missing = subprocess.run([sys.executable, "-m", "opml.cli", "challenge", *rpc, "--claim", "9", "--account", "2"],
                             capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert missing.returncode == 3 and "no claim 9" in missing.stderr
    no_key = subprocess.run([sys.executable, "-m", "opml.cli", "request", *rpc, "--input", __file__],
                            capture_output=True, text=True, cwd=tmp_path, env={"PATH": "/usr/bin"})  # fmt: skip
    assert no_key.returncode == 2 and "OPML_PRIVATE_KEY" in no_key.stderr


def test_opml_request_takes_numbers_and_checks_them_and_the_step_limit(anvil, w3, tmp_path):
    """A float32 model registered with an http uri (served here): `opml request --input-f32` sends the numbers
    as big-endian float32 after checking them against the model, and a step limit below the least its run
    takes is refused unless asked for."""
    import functools
    import http.server
    import threading

    import numpy as np

    from opml.chain.anvil import dev_key
    from opml.chain.client import TransactionManager
    from opml.chain.deploy import register_model
    from opml.chain.registry import Deployment, Registry
    from opml.models.formats import Graph, InputType, Node, Op

    rpc = ["--rpc", anvil.url]
    opml("deploy", *rpc, "-o", "deployment.json", cwd=tmp_path)
    weights = [np.arange(12, dtype=np.float32).reshape(3, 4) / 10]
    graph = Graph(InputType.F32, (1, 2, 2), weights, [Node(Op.FLATTEN, [0], [], []), Node(Op.LINEAR, [1], [0], [])])
    (tmp_path / "model.bin").write_bytes(graph.to_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        registry = Registry(w3, Deployment.read(tmp_path / "deployment.json").registry)
        uri = f"http://127.0.0.1:{server.server_address[1]}/model.bin"
        model_id = register_model(registry, TransactionManager(w3, dev_key(0)), graph.to_bytes(), uri)
        model = ["--model", str(model_id), "--account", "5"]
        (tmp_path / "numbers.json").write_text(json.dumps([0.5, -1.25, 3, 7e3]))
        sent = as_json("request", *rpc, *model, "--input-f32", "numbers.json", cwd=tmp_path)
        (event,) = registry.contract.events.InferenceRequested.get_logs(
            from_block=0, argument_filters={"requestId": sent["request_id"]}
        )
        assert event["args"]["input"] == np.array([0.5, -1.25, 3, 7e3], ">f4").tobytes()

        def refused(*args) -> str:
            result = subprocess.run([sys.executable, "-m", "opml.cli", "request", *rpc, *model, *args],
                                    capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
            assert result.returncode == 2, result.stdout + result.stderr
            return " ".join(result.stderr.split())

        (tmp_path / "short.json").write_text("[1, 2, 3]")
        assert "reads 4 values (f32 1x2x2); got 3 numbers" in refused("--input-f32", "short.json")
        assert "needs at least 768 steps" in refused("--input-f32", "numbers.json", "--step-limit", "700")
        below = ["--input-f32", "numbers.json", "--step-limit", "700", "--allow-step-limit-below-run"]
        assert as_json("request", *rpc, *model, *below, cwd=tmp_path)["request_id"] == sent["request_id"] + 1
    finally:
        server.shutdown()
