"""`opml llm`: SmolLM2-135M-Instruct from its PyPI package: the OPLM model file and greedy generation (docs/llm.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import hex0x, print_json, user_errors

app = typer.Typer(help="SmolLM2-135M-Instruct (the packaged Q4_1 GGUF), op by op.", no_args_is_help=True)


@app.command()
def convert(
    out: Path = typer.Option(..., "--out", "-o", help="OPLM model file to write."),
    gguf: Path = typer.Option(None, "--gguf", help="A llama GGUF (default: the packaged SmolLM2)."),
) -> None:
    """Convert a llama GGUF to the OPLM model file the node program reads; prints its model root M."""
    from ..models.formats import model_root
    from ..models.llm.gguf_import import convert_gguf, packaged_model_file

    with user_errors():
        data = convert_gguf(gguf) if gguf else packaged_model_file()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print_json({"model": str(out), "bytes": len(data), "model_root": hex0x(model_root(data))})


@app.command()
def generate(
    prompt: str = typer.Argument(..., help="The user's message (chat-templated unless --raw)."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", min=1, max=1024),
    raw: bool = typer.Option(False, "--raw", help="Continue PROMPT as plain text, without the chat template."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Greedy generation by the native reference, recorded op call by op call."""
    from ..models.llm.format import parse_model
    from ..models.llm.generate import Weights
    from ..models.llm.generate import generate as run
    from ..models.llm.gguf_import import packaged_model_file
    from ..models.llm.tokenizer import packaged_tokenizer

    with user_errors():
        tokenizer = packaged_tokenizer()
        ids = tokenizer.encode(prompt) if raw else tokenizer.chat_ids([{"role": "user", "content": prompt}])
        trace = run(Weights(parse_model(packaged_model_file())), ids, max_new_tokens)
    text = tokenizer.decode(trace.tokens, skip_special_tokens=True)
    if as_json:
        print_json({"prompt_ids": ids, "tokens": trace.tokens, "text": text, "op_calls": len(trace.calls)})
    else:
        typer.echo(text)
