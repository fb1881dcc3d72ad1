"""The deterministic MIPS32 big-endian VM whose every step a contract can re-execute.

Read in this order: `layout` (address space, syscalls, exit codes), `state` (the
encoding that is hashed on-chain), `merkle` (the memory tree and its proofs),
`memory` (paged memory), `semantics` (the instruction set), `machine`, `execution`
(the run API used by the services).
"""
