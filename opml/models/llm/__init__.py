"""A llama-architecture LLM (SmolLM2-135M-Instruct, Q4_1 GGUF) in the VM: model file, ops, generation, tokenizer.

- `format`: the OPLM model file the guest reads from its model region; `gguf_import` makes it from a GGUF.
- `quant`: dequantization of Q4_1 / Q8_0 / F16 weights, bit for bit as the guest does it.
- `ops`: every op of the forward pass on explicit arrays, bit for bit the guest's (guest/inference/llm_ops.c).
- `generate`: greedy generation as a recorded sequence of op calls over values.
- `tokenizer`: the GGUF's own BPE vocabulary and chat template.
- `graph`: a generation as a fixed graph of the two-phase game (docs/llm-graph.md): the node enumeration, every
  value natively (`evaluate_generation`), the LLM node program's checks (`node_program`).
- `requests`: a generation request's input from text or chat messages; its output as ids and text.
"""
