"""A llama-architecture LLM (SmolLM2-135M-Instruct, Q4_1 GGUF) in the VM: model file, ops, generation, tokenizer.

- `format`: the OPLM model file the guest reads from its model region; `gguf_import` makes it from a GGUF.
- `quant`: dequantization of Q4_1 / Q8_0 / F16 weights, bit for bit as the guest does it.
- `ops`: every op of the forward pass on explicit arrays, bit for bit the guest's (guest/inference/llm_ops.c).
- `generate`: greedy generation as a recorded sequence of op calls over values.
- `tokenizer`: the GGUF's own BPE vocabulary and chat template.
"""
