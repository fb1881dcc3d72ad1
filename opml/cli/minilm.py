"""`opml minilm`: all-MiniLM-L6-v2 from its PyPI package, as an ONNX model and as request inputs."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import print_json, user_errors

app = typer.Typer(help="all-MiniLM-L6-v2 sentence embeddings (the packaged model).", no_args_is_help=True)
LengthOption = typer.Option(16, "--length", min=2, max=512, help="Tokens per input (the model's fixed length).")


@app.command()
def export(
    out: Path = typer.Option(..., "--out", "-o", help="ONNX file to write (then: opml convert it)."),
    length: int = LengthOption,
) -> None:
    """Export the packaged model to ONNX with fixed shapes: token ids and attention mask in, embedding out."""
    from ..models.minilm import export_onnx

    with user_errors():
        data = export_onnx(length)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    typer.echo(f"wrote {out} ({len(data):,} bytes); convert it with: opml convert {out} -o minilm.bin")


@app.command()
def tokenize(
    text: str = typer.Argument(..., help="The sentence to embed."),
    out: Path = typer.Option(..., "--out", "-o", help="Input file to write (the request's input bytes)."),
    length: int = LengthOption,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The request's input for TEXT: its token ids, then its attention mask, as big-endian int32."""
    from ..models.minilm import encode_text, token_arrays

    with user_errors():
        ids, mask = token_arrays(text, length)
        data = encode_text(text, length)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    if as_json:
        print_json({"input": str(out), "ids": ids.tolist(), "mask": mask.tolist()})
    else:
        typer.echo(f"wrote {out}: ids {' '.join(map(str, ids))}, {int(mask.sum())} of {length} tokens real")
