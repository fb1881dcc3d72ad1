"""SmolLM2 greedy generation against Hugging Face transformers running the same GGUF (dequantized float32):
the same tokens on 22 chat prompts of 32 new tokens, and where they would differ, a float-order tie.

Slow: 105 s of CPU (160 s measured on 2 cores shared with other work): loading transformers' model, then both
greedy generations for each prompt (torch on one thread, as our native run).
"""

from __future__ import annotations

import pytest

from opml.models.llm.agreement import TIE_TOLERANCE, compare_prompts, load_transformers
from opml.models.llm.gguf_import import packaged_gguf
from opml.models.llm.tokenizer import packaged_tokenizer

MIN_AGREEMENT = 0.95


@pytest.mark.slow
def test_the_same_greedy_tokens_as_transformers(llm_weights):
    _, model = load_transformers(packaged_gguf())
    agreement = compare_prompts(llm_weights, packaged_tokenizer(), model)
    assert len(agreement.comparisons) >= 20
    for comparison in agreement.comparisons:
        if comparison.first_difference is not None:  # allowed only where the two logits tie
            assert max(comparison.gap_ours, comparison.gap_theirs) <= TIE_TOLERANCE, comparison
        assert comparison.max_logit_difference < 1e-3
    assert agreement.token_agreement >= MIN_AGREEMENT
