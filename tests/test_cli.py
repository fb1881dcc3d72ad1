"""The `opml` command line, run as a person would run it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opml.guest import built
from opml.models.formats import Op, model_root, parse_model
from opml.vm.elf import Program
from opml.vm.execution import Execution
from opml.vm.state import State


def opml(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opml.cli", *args], capture_output=True, text=True)


def test_golden_writes_the_initial_state(tmp_path):
    input_file = tmp_path / "input.bin"
    input_file.write_bytes(b"\x01\x02\x03")
    result = opml(
        "vm", "golden", "-p", str(built("tests/alu")), "-i", str(input_file), "-o", str(tmp_path / "g"), "--json"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    state = State.decode((tmp_path / "g" / "initial_state.bin").read_bytes())
    expected = Execution(Program.from_file(built("tests/alu")), input=b"\x01\x02\x03")
    assert state == expected.initial_state
    assert summary["state_hash"] == "0x" + state.hash.hex()
    assert summary["input_root"] == "0x" + expected.region_roots()["input"].hex()
    assert json.loads((tmp_path / "g" / "golden.json").read_text()) == summary


def test_run_state_and_proof_agree():
    program = str(built("tests/syscalls"))
    run = json.loads(opml("vm", "run", "-p", program, "--json").stdout)
    assert run["exit_code"] == 3 and run["stdout"] == "hello from the guest\n"
    final = json.loads(opml("vm", "state", "-s", str(run["steps"]), "-p", program, "--json").stdout)
    assert final["hash"] == run["final_state"]["hash"]
    proof = json.loads(opml("vm", "proof", "-s", "10", "-p", program, "--json").stdout)
    after = json.loads(opml("vm", "state", "-s", "11", "-p", program, "--json").stdout)
    assert proof["post_state_hash"] == after["hash"]
    assert len(bytes.fromhex(proof["proof"][2:])) == 1792


def test_errors_are_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"not an elf")
    result = opml("vm", "run", "-p", str(bad))
    assert result.returncode == 2
    assert "error: not a readable ELF" in result.stderr
    assert "Traceback" not in result.stderr
    result = opml("vm", "run", "-p", str(built("tests/control")), "--max-steps", "10")
    assert result.returncode == 2 and "did not exit within 10 steps" in result.stderr


DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "seed-mnist"


def test_convert_the_seed_state_dict_and_predict(tmp_path):
    out = tmp_path / "model.bin"
    result = opml("convert", str(DEFAULT_MODEL / "mnist-small.state_dict"), "-o", str(out), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert out.read_bytes() == (DEFAULT_MODEL / "model.bin").read_bytes()
    assert report["model_root"] == "0x" + model_root(out.read_bytes()).hex()
    predicted = json.loads(opml("predict", "-m", str(out), "-i", str(DEFAULT_MODEL / "input_7.bin"), "--json").stdout)
    assert predicted["predicted"] == 7


def test_the_default_model_runs_in_the_vm():
    result = opml("vm", "run", "-i", str(DEFAULT_MODEL / "input_3.bin"), "-m", str(DEFAULT_MODEL / "model.bin"))
    assert result.returncode == 0, result.stderr
    assert "prediction  3" in result.stdout


def test_train_then_convert_a_cnn(tmp_path):
    fashion = Path("/usr/share/datasets/fashion-mnist")
    state = tmp_path / "cnn.pt"
    result = opml(
        "train", "--model", "cnn", "--images", str(fashion / "train-images-idx3-ubyte.gz"),
        "--labels", str(fashion / "train-labels-idx1-ubyte.gz"), "--limit", "500", "-o", str(state),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "epoch 1: loss" in result.stdout + result.stderr and state.exists()
    converted = opml("convert", str(state), "--model", "cnn", "--format", "graph", "-o", str(tmp_path / "cnn.bin"))
    assert converted.returncode == 0, converted.stderr
    assert {n.op for n in parse_model((tmp_path / "cnn.bin").read_bytes()).nodes} >= {Op.CONV2D, Op.MAXPOOL2D}
    wrong = opml("convert", str(state), "--format", "seed", "-o", str(tmp_path / "x.bin"))
    assert wrong.returncode == 2 and "error:" in wrong.stderr


def test_predict_reports_a_bad_model_in_one_line(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"nope")
    result = opml("predict", "-m", str(bad), "-i", str(DEFAULT_MODEL / "input_7.bin"))
    assert result.returncode == 2 and "error: unknown model format" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # a minute: `make run`'s scenario end to end
def test_the_main_job_shows_every_expected_outcome(tmp_path):
    """`make run` with OPML_DEMO_EXIT=1: the whole story on the embedded default, exit 0 only if all of it
    happened (on free ports here, so it runs beside anything else)."""
    env = {**os.environ, "OPML_DEMO_EXIT": "1", "OPML_DEMO_DATA": str(tmp_path / "demo"), "OPML_DEMO_FREE_PORTS": "1"}
    result = subprocess.run([sys.executable, "-m", "opml.demo"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "every expected outcome was seen" in result.stdout
    assert "is final as a 7" in result.stdout and "the challenger wins in" in result.stdout
    assert "/ui/disputes/" in result.stdout  # where to watch the dispute in the explorer
    assert "FAILED" not in result.stdout
