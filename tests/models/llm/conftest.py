"""The packaged SmolLM2 model, converted once per session (about 2 s), and its dequantized weights."""

import pytest


@pytest.fixture(scope="session")
def llm_model_file() -> bytes:
    from opml.models.llm.gguf_import import packaged_model_file

    return packaged_model_file()


@pytest.fixture(scope="session")
def llm_weights(llm_model_file):
    from opml.models.llm.format import parse_model
    from opml.models.llm.generate import Weights

    weights = Weights(parse_model(llm_model_file))
    weights.prepare()
    return weights
