"""The seed tutorial's flow by hand, through the `opml` command on a real anvil (docs/tutorial.md):
deploy, request, an honest claim and a lying one, challenge, respond round by round, resolve, finalize."""

import json
import subprocess
import sys
import time

from opml.chain.anvil import advance_time
from opml.resources import seed_model_dir

LIE_FROM = 1_000_000


def opml(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "opml.cli", *args], capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0, f"opml {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def as_json(*args, cwd) -> dict:
    return json.loads(opml(*args, "--json", cwd=cwd).stdout)


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
