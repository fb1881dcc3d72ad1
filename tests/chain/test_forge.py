"""The Solidity test suites (contracts/test/*.t.sol), run by forge as part of the pytest run."""

import subprocess

from opml import resources
from opml.chain.toolchain import tool


def test_forge_test_suites_pass():
    result = subprocess.run(
        [tool("forge"), "test", "--offline", "--summary"], cwd=resources.contracts_dir(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "0 failed" in result.stdout
