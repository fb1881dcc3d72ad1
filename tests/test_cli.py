"""The `opml` command line, run as a person would run it."""

import json
import subprocess
import sys

from opml.guest import built
from opml.vm.elf import Program
from opml.vm.execution import Execution
from opml.vm.state import State


def opml(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opml.cli", *args], capture_output=True, text=True)


def test_golden_writes_the_initial_state(tmp_path):
    input_file = tmp_path / "input.bin"
    input_file.write_bytes(b"\x01\x02\x03")
    result = opml("vm", "golden", "-p", str(built("tests/alu")), "-i", str(input_file), "-o", str(tmp_path / "g"), "--json")
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
