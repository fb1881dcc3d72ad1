"""`opml train`, `opml convert`, `opml predict`: the model pipeline of the tutorial."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .common import UserError, console, hex0x, print_json, read_optional, user_errors

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "seed-mnist" / "model.bin"


def train(
    images: Path = typer.Option(None, help="Training images (IDX, optionally .gz)."),
    labels: Path = typer.Option(None, help="Training labels (IDX)."),
    test_images: Path = typer.Option(None, help="Test images (IDX); default: the training images."),
    test_labels: Path = typer.Option(None, help="Test labels (IDX)."),
    download: Path = typer.Option(None, help="Download MNIST into this folder instead (needs the network)."),
    model: str = typer.Option("mlp", help="mlp (the seed's 784-hidden-10) or cnn."),
    hidden: int = typer.Option(20, min=1, help="Hidden width of the MLP."),
    epochs: int = typer.Option(1, min=1),
    limit: int = typer.Option(None, min=1, help="Use only the first N training images."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to save the state_dict."),
) -> None:
    """Train the seed's MLP or a small CNN with PyTorch and save its state_dict."""
    import torch

    from ..models.training import ARCHITECTURES, DatasetError, download_mnist, load_dataset
    from ..models.training import train as run_training

    with user_errors(DatasetError):
        if model not in ARCHITECTURES:
            raise UserError(f"unknown model {model!r}: choose mlp or cnn")
        if download is not None:
            paths = download_mnist(download)
            images, labels = paths["train_images"], paths["train_labels"]
            test_images, test_labels = paths["test_images"], paths["test_labels"]
        if images is None or labels is None:
            raise UserError("give --images and --labels (IDX files), or --download DIR")
        train_set = load_dataset(images, labels)
        test_set = load_dataset(test_images, test_labels) if test_images and test_labels else train_set
        if limit:
            train_set = (train_set[0][:limit], train_set[1][:limit])
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("epoch 1", total=None)

            def on_batch(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            def on_epoch(epoch: int, loss: float, accuracy: float) -> None:
                bar.console.print(f"epoch {epoch}: loss {loss:.4f}, test accuracy {accuracy:.1%}")
                bar.update(task, description=f"epoch {epoch + 1}", completed=0)

            result = run_training(
                model, train_set, test_set, epochs=epochs, hidden=hidden, on_epoch=on_epoch, on_batch=on_batch
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(result.model.state_dict(), out)
    typer.echo(f"test accuracy {result.test_accuracy:.1%}; state_dict saved to {out}")


def convert(
    source: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="A PyTorch state_dict, an ONNX model, or a model file of ours."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Model file to write."),
    model: str = typer.Option(None, help="Architecture of a state_dict: mlp or cnn (default: from its tensors)."),
    format: str = typer.Option(
        None, help="seed (the seed's format; MLP only) or graph (ours). Default: seed for the MLP, else graph."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Convert a state_dict or an ONNX model to a model file, and report its model root M."""
    from ..models.formats import model_root
    from ..models.ingest import Architecture, FileFormat, convert_model

    with user_errors():
        if model is not None and model not in set(Architecture):
            raise UserError(f"unknown model {model!r}: choose mlp or cnn")
        if format is not None and format not in set(FileFormat):
            raise UserError(f"unknown format {format!r}: choose seed or graph")
        converted = convert_model(
            read_optional(source),
            architecture=Architecture(model) if model else None,
            file_format=FileFormat(format) if format else None,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(converted.data)
        root = model_root(converted.data)
    data = converted.data
    if as_json:
        print_json({"model": str(out), "bytes": len(data), "model_root": hex0x(root), "format": converted.file_format})
    else:
        typer.echo(f"wrote {out} ({len(data):,} bytes, {converted.file_format} format)\nmodel root {hex0x(root)}")


def predict(
    input: Path = typer.Option(..., "--input", "-i", exists=True, dir_okay=False, help="Input bytes."),
    model: Path = typer.Option(DEFAULT_MODEL, "--model", "-m", exists=True, dir_okay=False, help="Model file."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run a model natively (the numpy reference, bit-exact with the VM)."""
    from ..models.formats import ModelFormatError
    from ..models.reference import InferenceError
    from ..models.reference import predict as run_reference

    with user_errors(ModelFormatError, InferenceError):
        prediction = run_reference(read_optional(model), read_optional(input))
    if as_json:
        print_json(
            {
                "predicted": prediction.predicted,
                "scores": [float(s) for s in prediction.scores],
                "output": hex0x(prediction.to_bytes()),
            }
        )
    else:
        typer.echo(f"predicted {prediction.predicted}")
        typer.echo("scores " + " ".join(f"{s:.4g}" for s in prediction.scores))
