"""`opml vm`: run a program in the VM, inspect any state, produce step proofs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..guest import INFERENCE, built
from .common import console, hex0x, print_json, read_optional, user_errors

if TYPE_CHECKING:
    from ..vm.execution import Execution

# The VM (numba) is imported inside the commands, so `opml --help` answers at once.

app = typer.Typer(help="The deterministic MIPS VM.", no_args_is_help=True)
INFERENCE_ELF = built(INFERENCE.name)

ProgramOption = typer.Option(
    INFERENCE_ELF,
    "--program",
    "-p",
    exists=True,
    dir_okay=False,
    help="Guest ELF file (default: the inference program).",
)
ModelOption = typer.Option(None, "--model", "-m", exists=True, dir_okay=False, help="Model file (model region).")
InputOption = typer.Option(None, "--input", "-i", exists=True, dir_okay=False, help="Input file (input region).")
JsonOption = typer.Option(False, "--json", help="Print JSON instead of text.")
SCORES_SHOWN = 10  # an embedding has hundreds: --json gives them all
MaxStepsOption = typer.Option(None, "--max-steps", help="Give up if the program has not exited by then.")


def load_execution(program: Path, model: Path | None, input: Path | None) -> Execution:
    from ..vm.elf import Program
    from ..vm.execution import Execution

    return Execution(Program.from_file(program), model=read_optional(model), input=read_optional(input))


def run_with_progress(execution: Execution, max_steps: int | None, quiet: bool, until: int | None = None):
    """Run to the exit (or, with `until`, to that step: what a query at it needs), showing the steps done,
    their rate and the time: a transformer runs 10^10 steps. With a known end, a bar and the time left."""
    if quiet:
        return execution.run(max_steps=max_steps) if until is None else execution.run_bounded(until)
    total = until if until is not None else max_steps
    columns = [SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]
    if total is not None:
        columns[2:2] = [BarColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("running", total=total)
        started = time.perf_counter()

        def progress(steps: int) -> None:
            rate = steps / max(time.perf_counter() - started, 1e-9) / 1e6
            bar.update(task, completed=steps, description=f"running: {steps:,} steps ({rate:,.0f}M/s)")

        if until is not None:
            return execution.run_bounded(until, progress=progress)
        return execution.run(max_steps=max_steps, progress=progress)


def describe_exit(exit_code: int) -> str:
    from ..vm.layout import FAULT_NAMES

    fault = FAULT_NAMES.get(exit_code)
    return f"{exit_code} ({fault})" if fault else str(exit_code)


@app.command()
def golden(
    program: Path = ProgramOption,
    model: Path = ModelOption,
    input: Path = InputOption,
    out: Path = typer.Option(..., "--out", "-o", file_okay=False, help="Directory to write the golden image to."),
    as_json: bool = JsonOption,
) -> None:
    """Write the initial state of a run: its encoding, hash and the region roots P, I, M."""
    with user_errors():
        execution = load_execution(program, model, input)
        state = execution.initial_state
        roots = execution.region_roots()
        out.mkdir(parents=True, exist_ok=True)
        (out / "initial_state.bin").write_bytes(state.encode())
        summary = {
            "state_hash": hex0x(state.hash),
            "mem_root": hex0x(state.mem_root),
            "program_root": hex0x(roots["program"]),
            "input_root": hex0x(roots["input"]),
            "model_root": hex0x(roots["model"]),
            "entry": state.pc,
            "state": state.to_json(),
        }
        (out / "golden.json").write_text(json.dumps(summary, indent=2) + "\n")
    if as_json:
        print_json(summary)
    else:
        typer.echo(f"state hash   {summary['state_hash']}")
        typer.echo(f"program root {summary['program_root']}")
        typer.echo(f"input root   {summary['input_root']}")
        typer.echo(f"model root   {summary['model_root']}")
        typer.echo(f"written to   {out}")


@app.command()
def run(
    program: Path = ProgramOption,
    model: Path = ModelOption,
    input: Path = InputOption,
    max_steps: int = MaxStepsOption,
    as_json: bool = JsonOption,
) -> None:
    """Run a program to its exit: output, step count and final state."""
    with user_errors():
        execution = load_execution(program, model, input)
        result = run_with_progress(execution, max_steps, quiet=as_json)
    if as_json:
        print_json(
            {
                "steps": result.steps,
                "exit_code": result.exit_code,
                "output": hex0x(result.output),
                "stdout": result.stdout.decode(errors="replace"),
                "stderr": result.stderr.decode(errors="replace"),
                "final_state": result.final_state.to_json(),
            }
        )
        return
    for stream in (result.stdout, result.stderr):
        if stream:
            typer.echo(stream.decode(errors="replace"), nl=False)
    typer.echo(f"exit code   {describe_exit(result.exit_code)}")
    typer.echo(f"steps       {result.steps:,}")
    typer.echo(f"output      {hex0x(result.output)}")
    if program == INFERENCE_ELF and result.exit_code == 0:
        from ..models.formats import Prediction

        prediction = Prediction.from_bytes(result.output)
        shown = " ".join(f"{s:.4g}" for s in prediction.scores[:SCORES_SHOWN])
        more = f" ... ({len(prediction.scores)} in all)" if len(prediction.scores) > SCORES_SHOWN else ""
        typer.echo(f"prediction  {prediction.predicted} (scores {shown}{more})")
    typer.echo(f"final state {hex0x(result.final_state.hash)}")


@app.command()
def state(
    step: int = typer.Option(..., "--step", "-s", min=0, help="Number of instructions executed."),
    program: Path = ProgramOption,
    model: Path = ModelOption,
    input: Path = InputOption,
    as_json: bool = JsonOption,
) -> None:
    """The state after STEP instructions (the final state for any step past the exit)."""
    with user_errors():
        execution = load_execution(program, model, input)
        run_with_progress(execution, None, quiet=as_json, until=step)
        result = execution.state_at(step)
    if as_json:
        print_json(result.to_json())
    else:
        typer.echo(f"step {result.step}: hash {hex0x(result.hash)} pc {result.pc:#010x} exited {result.exited}")


@app.command()
def proof(
    step: int = typer.Option(..., "--step", "-s", min=0, help="Step whose instruction to prove."),
    program: Path = ProgramOption,
    model: Path = ModelOption,
    input: Path = InputOption,
    as_json: bool = JsonOption,
) -> None:
    """The witness for executing one instruction on-chain: pre-state and memory proofs."""
    with user_errors():
        execution = load_execution(program, model, input)
        run_with_progress(execution, None, quiet=as_json, until=step)
        witness = execution.proof_at(step)
    if as_json:
        print_json(witness.to_json())
    else:
        data = "none" if witness.data_address is None else f"{witness.data_address:#010x}"
        typer.echo(f"step {witness.step}: pre {hex0x(witness.pre_state.hash)} -> post {hex0x(witness.post_state.hash)}")
        typer.echo(f"pc {witness.pre_state.pc:#010x}, data access {data}, proof {len(witness.proof)} bytes")
