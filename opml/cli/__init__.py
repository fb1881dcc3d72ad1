"""The `opml` command line: one entry point for everything a person does by hand."""

import typer

from . import chain, guest, llm, minilm, models, protocol, stack, vm

app = typer.Typer(help="OPML: optimistic machine learning on a blockchain.", no_args_is_help=True)
app.command()(models.train)
app.command()(models.convert)
app.command()(models.predict)
app.command()(chain.deploy)
app.command()(stack.up)
for command in (protocol.request, protocol.claim, protocol.challenge, protocol.respond, protocol.resolve,
                protocol.finalize, protocol.status):  # fmt: skip
    app.command()(command)
app.add_typer(vm.app, name="vm")
app.add_typer(guest.app, name="guest")
app.add_typer(minilm.app, name="minilm")
app.add_typer(llm.app, name="llm")


def main() -> None:
    app()
