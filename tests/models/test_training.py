"""Training on IDX files (Debian's Fashion-MNIST: the MNIST format), and its data errors."""

import gzip
import struct

import numpy as np
import pytest

from opml.models.convert import graph_from_module
from opml.models.formats import InputType, parse_model, seed_model_bytes
from opml.models.reference import run
from opml.models.training import (
    IMAGE_MAGIC,
    LABEL_MAGIC,
    DatasetError,
    download_mnist,
    read_idx,
    train,
    with_softmax,
)

TRAIN_IMAGES = 3000


@pytest.mark.parametrize("architecture", ["mlp", "cnn"])
def test_short_training_beats_chance_by_far(fashion, architecture):
    (images, labels), (test_images, test_labels) = fashion
    epochs = []
    result = train(
        architecture,
        (images[:TRAIN_IMAGES], labels[:TRAIN_IMAGES]),
        (test_images[:1000], test_labels[:1000]),
        epochs=2,
        on_epoch=lambda epoch, loss, accuracy: epochs.append((epoch, loss)),
    )
    assert result.test_accuracy > 0.5  # ten classes: chance is 0.1
    assert [e for e, _ in epochs] == [1, 2] and epochs[1][1] < epochs[0][1]
    # the trained model takes raw pixels, and so does its converted form
    model = (
        seed_model_bytes(result.model.state_dict())
        if architecture == "mlp"
        else graph_from_module(with_softmax(result.model), (1, 28, 28), InputType.U8).to_bytes()
    )
    graph = parse_model(model)
    predictions = [run(graph, image.tobytes()).predicted for image in test_images[:200]]
    assert np.mean(np.array(predictions) == test_labels[:200]) > 0.5


def write_idx(path, magic, array):
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_idx_round_trip_and_errors(tmp_path):
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    write_idx(tmp_path / "images.gz", IMAGE_MAGIC, images)
    assert (read_idx(tmp_path / "images.gz", IMAGE_MAGIC) == images).all()
    with pytest.raises(DatasetError, match="magic"):
        read_idx(tmp_path / "images.gz", LABEL_MAGIC)
    (tmp_path / "short").write_bytes(b"\x00\x00\x08")
    with pytest.raises(DatasetError, match="too short"):
        read_idx(tmp_path / "short", IMAGE_MAGIC)
    raw = gzip.decompress((tmp_path / "images.gz").read_bytes())
    (tmp_path / "cut").write_bytes(raw[:-1])
    with pytest.raises(DatasetError, match="data bytes"):
        read_idx(tmp_path / "cut", IMAGE_MAGIC)
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(tmp_path / "missing", IMAGE_MAGIC)


def test_download_without_network_says_what_to_do_instead(tmp_path):
    with pytest.raises(DatasetError, match="--images/--labels"):
        download_mnist(tmp_path, mirror="http://127.0.0.1:9/")  # nothing listens on the discard port
