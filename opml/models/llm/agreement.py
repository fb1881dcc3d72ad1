"""Our greedy tokens against Hugging Face transformers running the same GGUF (an outside reference).

transformers loads the GGUF itself (`gguf_file=`), dequantizes every weight to float32 with the
`gguf` package (bit for bit our dequantization), un-permutes Q and K to its rotate-half RoPE,
and runs its own float32 kernels. The two runs then differ only by float order (MKL's blocked
sums against our sequential ones, torch's cos and exp against ours), so their logits agree to
about 1e-4 and their greedy tokens are the same except where two logits tie within that.
Needs transformers, torch and accelerate (dev dependencies).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .generate import Trace, Weights, generate

# Chat prompts for the comparison: varied topics, lengths and scripts.
PROMPTS = (
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain photosynthesis in one sentence.",
    "List three primary colors.",
    "What is 12 times 7?",
    "Translate 'good morning' into Spanish.",
    "Give me a name for a pet turtle.",
    "Why is the sky blue?",
    "Describe a cat in five words.",
    "What does a blockchain do?",
    "Combien font deux plus deux ?",
    "¿Cuál es el río más largo del mundo?",
    "Was ist die Hauptstadt von Deutschland?",
    "日本の首都はどこですか？",
    "Напиши одно предложение о зиме.",
    "Suggest a title for a mystery novel.",
    "How many legs does a spider have?",
    "Write a Python function that adds two numbers.",
    "What is the boiling point of water in Celsius?",
    "Name a famous painting by Leonardo da Vinci.",
    "Tell me a fun fact about octopuses.",
    "What is the opposite of 'ancient'?",
)
NEW_TOKENS = 32
TIE_TOLERANCE = 1e-3  # logits closer than this may order differently under another float order


@dataclass
class Comparison:
    prompt_ids: list[int]
    ours: list[int]
    theirs: list[int]
    first_difference: int | None  # index into the generated tokens
    # at the first difference, |logit(ours) - logit(theirs)| in our run and in theirs
    gap_ours: float | None = None
    gap_theirs: float | None = None
    max_logit_difference: float = 0.0  # over the steps both runs share, before any difference

    @property
    def agreeing(self) -> int:
        """Generated tokens equal at the same position."""
        return sum(a == b for a, b in zip(self.ours, self.theirs))

    @property
    def is_tie(self) -> bool:
        return self.first_difference is None or max(self.gap_ours, self.gap_theirs) <= TIE_TOLERANCE


@dataclass
class Agreement:
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def token_agreement(self) -> float:
        total = sum(max(len(c.ours), len(c.theirs)) for c in self.comparisons)
        return sum(c.agreeing for c in self.comparisons) / total

    @property
    def all_differences_are_ties(self) -> bool:
        return all(c.is_tie for c in self.comparisons)


TORCH_THREADS = 1  # as our native run; OpenMP threads spinning on shared cores slow torch down tenfold


def load_transformers(gguf_path):
    """transformers' tokenizer and model for the GGUF, float32, in eval mode (torch on TORCH_THREADS threads)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(TORCH_THREADS)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    return tokenizer, model.eval()


def transformers_generate(model, prompt_ids: list[int], new_tokens: int, eos: int):
    """(tokens, per-step logits [steps, vocab]) of transformers' greedy generation."""
    import torch

    with torch.no_grad():
        out = model.generate(
            torch.tensor([prompt_ids]),
            attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
            max_new_tokens=new_tokens,
            do_sample=False,
            eos_token_id=eos,
            output_logits=True,
            return_dict_in_generate=True,
        )
    tokens = out.sequences[0, len(prompt_ids) :].tolist()
    return tokens, np.stack([step[0].float().numpy() for step in out.logits])


def compare(weights: Weights, model, prompt_ids: list[int], new_tokens: int = NEW_TOKENS) -> Comparison:
    trace: Trace = generate(weights, prompt_ids, new_tokens)
    theirs, their_logits = transformers_generate(model, prompt_ids, new_tokens, weights.config.eos)
    ours = trace.tokens
    first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), None)
    if first is None and len(ours) != len(theirs):
        first = min(len(ours), len(theirs))  # one stopped (eos) where the other went on: compare there
    shared = len(ours) if first is None else first
    comparison = Comparison(list(prompt_ids), ours, theirs, first)
    for step in range(min(shared, len(their_logits))):
        our_logits = trace.values[trace.logits[step]][0]
        difference = float(np.abs(our_logits - their_logits[step]).max())
        comparison.max_logit_difference = max(comparison.max_logit_difference, difference)
    if first is not None and first < len(ours) and first < len(theirs):
        a, b = ours[first], theirs[first]
        our_logits = trace.values[trace.logits[first]][0]
        comparison.gap_ours = float(abs(our_logits[a] - our_logits[b]))
        comparison.gap_theirs = float(abs(their_logits[first][a] - their_logits[first][b]))
    elif first is not None:
        comparison.gap_ours = comparison.gap_theirs = float("inf")  # an eos not matched: not a tie
    return comparison


def compare_prompts(weights: Weights, tokenizer, model, prompts=PROMPTS, new_tokens: int = NEW_TOKENS) -> Agreement:
    """Chat-templated prompts (our tokenizer, which gives transformers' ids on them), generated by both."""
    agreement = Agreement()
    for prompt in prompts:
        ids = tokenizer.chat_ids([{"role": "user", "content": prompt}])
        agreement.comparisons.append(compare(weights, model, ids, new_tokens))
    return agreement
