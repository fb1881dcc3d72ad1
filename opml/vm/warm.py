"""Compile the VM's numba kernels once, into numba's cache on disk, so that no service compiles them again.

    python -m opml.vm.warm

`make install` runs it after installing the virtualenv, and every image runs the same at build time. The
kernels (`semantics.run`, keccak's `page_tree`, `subtree_root`, `hash_node_pair`, `keccak_f1600`) are `cache=True`: numba
keeps what it compiled in `opml/vm/__pycache__/` beside their sources (or under `NUMBA_CACHE_DIR` when it
is set, as in the images), keyed by the source file, and every process that imports them from the same
files loads the machine code from there in a second or two instead of compiling it for a minute or more
(four services starting at once on two cores compiled it four times over: `make run` was ready after
about 90 s on a fresh install, 8 s with the cache warm). A source edited since is compiled again on its
first use, and cached again.
"""

from __future__ import annotations

import time


def compile_kernels(program=None) -> None:
    """Call every compiled VM function once (a short run, state hashes, a step proof), on `program` or the
    inference program: each is compiled here, or loaded from the cache when it is warm."""
    from ..game.trace import LocalTrace
    from .execution import Execution

    if program is None:
        from ..guest import INFERENCE, built
        from .elf import Program

        program = Program.from_file(built(INFERENCE.name))
    from .merkle import content_root

    trace = LocalTrace(Execution(program), step_limit=1000)
    trace.final_claim()
    trace.state_hashes([1])
    trace.execution.proof_at(0)
    content_root(b"a value", 28)  # keccak's subtree_root: value roots of graph runs (opml/graph)


def cache_directory() -> str:
    from . import semantics

    return str(semantics.run._cache._cache_path)


def main() -> None:
    started = time.perf_counter()
    compile_kernels()
    print(f"the VM's numba kernels are compiled in {cache_directory()} ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
