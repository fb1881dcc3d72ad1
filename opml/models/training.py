"""Training the models the VM runs: the seed's MLP and a small CNN, on IDX (MNIST-format) files.

Pixels are used raw (0-255), as the seed's inference program feeds them, so a trained
model runs on the same u8 inputs as the seed model.
"""

from __future__ import annotations

import gzip
import struct
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BadInput

IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


class DatasetError(BadInput):
    pass


def read_idx(path: str | Path, expected_magic: int) -> np.ndarray:
    """An IDX file (optionally gzipped) as a uint8 array of its dimensions."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 8:
        raise DatasetError(f"{path} is not an IDX file (too short)")
    magic = struct.unpack_from(">I", raw)[0]
    if magic != expected_magic:
        raise DatasetError(f"{path}: IDX magic {magic:#010x}, expected {expected_magic:#010x}")
    rank = magic & 0xFF
    dims = struct.unpack_from(f">{rank}I", raw, 4)
    count = int(np.prod(dims))
    offset = 4 + 4 * rank
    if len(raw) - offset != count:
        raise DatasetError(f"{path}: {len(raw) - offset} data bytes for dimensions {dims}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def load_dataset(images: str | Path, labels: str | Path) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(images, IMAGE_MAGIC)
    y = read_idx(labels, LABEL_MAGIC)
    if len(x) != len(y):
        raise DatasetError(f"{len(x)} images but {len(y)} labels")
    return x, y


def download_mnist(directory: str | Path, mirror: str = MNIST_MIRROR) -> dict[str, Path]:
    """Fetch the four MNIST IDX files (when the network allows)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, name in MNIST_FILES.items():
        target = directory / name
        if not target.exists():
            try:
                with urllib.request.urlopen(mirror + name, timeout=30) as response:
                    target.write_bytes(response.read())
            except (urllib.error.URLError, OSError) as error:
                raise DatasetError(
                    f"cannot download {name} from {mirror} ({error}); pass IDX files with --images/--labels instead"
                ) from None
        paths[key] = target
    return paths


# --- models -----------------------------------------------------------------------------


PIXEL_MAX = 255.0


class SeedMLP(nn.Module):
    """The seed tutorial's network: 784 -> hidden -> ReLU -> 10 (softmax at inference)."""

    def __init__(self, hidden: int = 20, inputs: int = 784, classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(inputs, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    @property
    def first_layer(self) -> nn.Module:
        return self.fc1

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class SmallCNN(nn.Module):
    """conv 5x5 -> ReLU -> max pool -> conv 3x3 -> BatchNorm -> ReLU -> avg pool -> linear."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 5, padding=2)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.norm2 = nn.BatchNorm2d(8)
        self.pool2 = nn.AvgPool2d(2)
        self.fc = nn.Linear(8 * 7 * 7, classes)

    @property
    def first_layer(self) -> nn.Module:
        return self.conv1

    def forward(self, x):
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.norm2(self.conv2(x))))
        return self.fc(torch.flatten(x, 1))


ARCHITECTURES = {"mlp": SeedMLP, "cnn": SmallCNN}
INPUT_SHAPES = {"mlp": (784,), "cnn": (1, 28, 28)}


def with_softmax(model: nn.Module) -> nn.Module:
    """The network as it runs in the VM: class probabilities, not logits."""
    return nn.Sequential(model, nn.Softmax(dim=1))


def build_model(architecture: str, hidden: int = 20) -> nn.Module:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose from {', '.join(ARCHITECTURES)}")
    return SeedMLP(hidden=hidden) if architecture == "mlp" else SmallCNN()


# --- training ------------------------------------------------------------------------------


@dataclass
class TrainingResult:
    model: nn.Module
    test_accuracy: float
    epochs: int


def _as_tensor(images: np.ndarray, architecture: str, scale: float = 1.0) -> torch.Tensor:
    x = torch.from_numpy(images.astype(np.float32) * np.float32(scale))
    return x.reshape(len(x), -1) if architecture == "mlp" else x.reshape(len(x), 1, 28, 28)


def fold_input_scale(model: nn.Module, scale: float) -> None:
    """Make a model trained on x * scale take x: the first layer is linear in its input."""
    with torch.no_grad():
        model.first_layer.weight.mul_(scale)


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, architecture: str) -> float:
    model.eval()
    with torch.no_grad():
        predicted = model(_as_tensor(images, architecture)).argmax(dim=1).numpy()
    return float((predicted == labels).mean())


def train(
    architecture: str,
    train_set: tuple[np.ndarray, np.ndarray],
    test_set: tuple[np.ndarray, np.ndarray],
    epochs: int = 1,
    hidden: int = 20,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    on_epoch: Callable[[int, float, float], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> TrainingResult:
    """Train with Adam and cross-entropy; on_epoch(epoch, loss, test accuracy) after each epoch.

    Training sees pixels / 255 (Adam's steps suit unit-scale inputs); the returned model
    has that scale folded into its first layer, so it takes raw pixels.
    """
    torch.manual_seed(seed)
    model = build_model(architecture, hidden)
    images, labels = train_set
    x = _as_tensor(images, architecture, 1 / PIXEL_MAX)
    y = torch.from_numpy(labels.astype(np.int64))
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    test_accuracy = 0.0
    batches = (len(x) + batch_size - 1) // batch_size
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        total_loss = 0.0
        for batch, start in enumerate(range(0, len(x), batch_size)):
            index = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x[index]), y[index])
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(index)
            if on_batch is not None:
                on_batch(batch + 1, batches)
        test_accuracy = accuracy(model, test_set[0] / PIXEL_MAX, test_set[1], architecture)
        if on_epoch is not None:
            on_epoch(epoch, total_loss / len(x), test_accuracy)
    model.eval()
    fold_input_scale(model, 1 / PIXEL_MAX)
    return TrainingResult(model=model, test_accuracy=accuracy(model, *test_set, architecture), epochs=epochs)
