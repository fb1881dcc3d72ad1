"""What the read side returns: the response bodies of the submitter's and the challenger's read APIs, and what
the explorer renders. The services use these as their response models as they are (one definition each), and
the read model (opml.readmodel.reports) builds them directly.

Every report and page is read at one block (`block`): the chain's state and the index's events as of that
block, so no report mixes two moments.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RequestStatusName = Literal["requested", "claimed", "challenged", "final", "rejected", "expired"]
GameStatusName = Literal["active", "defender_won", "challenger_won"]
REQUEST_STATUSES: tuple[str, ...] = RequestStatusName.__args__
GAME_STATUSES: tuple[str, ...] = GameStatusName.__args__
BLOCK = "The block this was read at: the chain's state and the indexed events as of that block"


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- transactions ------------------------------------------------------------------------------------------


class TransactionOut(Out):
    tx_hash: str
    events: list[str] = Field(description="The registry events it emitted, in order (none if it reverted)")
    gas_used: int = Field(description="Gas it used, a reverted transaction's too (0 for one never mined)")
    sender: str
    block_number: int | None = Field(description="The block it was mined in (None for one never mined: dropped)")
    status: Literal["mined", "reverted", "dropped"] = Field(
        "mined",
        description="mined; reverted (mined, but it reverted: it paid its gas and changed nothing); dropped (sent "
        "by this service's agent, never mined). Reverted and dropped ones are this service's own, from its journal",
    )
    intent: str | None = Field(
        None, description="What this service's agent sent it for (its journal's intent), when it sent it"
    )


# --- requests ----------------------------------------------------------------------------------------------


class OutputOut(Out):
    kind: Literal["output", "step_limit_reached", "malformed_output", "output_too_large"] = Field(
        description="What the result is: an output; the step limit reached; an exit whose output region is "
        "malformed (a nonzero byte after the output) or too large (a length above the registry's cap)"
    )
    exited: bool
    exit_code: int
    output: str = Field(description="The output's bytes, 0x-hex (empty unless the kind is output)")
    predicted: int | None = Field(None, description="For classifiers: the predicted class")
    scores: list[float] | None = Field(None, description="For classifiers: the scores (after softmax, probabilities)")
    embedding: list[float] | None = Field(
        None, description="For embedding (text) models: the vector, e.g. the 384 floats of all-MiniLM-L6-v2"
    )
    norm: float | None = Field(None, description="For embedding models: the vector's L2 norm (1 when normalized)")
    tokens: list[int] | None = Field(
        None,
        description="For language models: the generated token ids, up to and including the end-of-sequence token "
        "(the output value: int32 [count])",
    )
    text: str | None = Field(
        None, description="For language models whose vocabulary the packaged tokenizer speaks: those tokens as text"
    )


class GenerationOut(Out):
    """A language model's request as people read it: the prompt it continues and, once final, its answer."""

    prompt_tokens: list[int] = Field(description="The prompt's token ids, from the request's input")
    prompt: str | None = Field(
        description="The prompt as text (chat markers such as <|im_start|> included), when the packaged tokenizer "
        "speaks the model's vocabulary"
    )
    max_new_tokens: int = Field(description="The most tokens the request asked for")
    tokens: list[int] | None = Field(None, description="The final answer's token ids (null until final)")
    text: str | None = Field(None, description="The final answer as text")
    token_texts: list[str] | None = Field(None, description="Each of the answer's tokens as text, in order")
    finished: bool | None = Field(
        None, description="The answer ends with the end-of-sequence token (else it stopped at max_new_tokens)"
    )


class ClaimOut(Out):
    id: int
    claimant: str
    status: str = Field(description="live, rejected, finalized, retired, forfeited or released")
    final_state_hash: str
    steps: int
    exited: bool
    exit_code: int
    submitted_at: int = Field(description="Chain time the claim was revealed, in seconds")
    games: list[int]


class GameOut(Out):
    id: int
    claim_id: int
    challenger: str
    status: GameStatusName
    rounds: int


class FinalizedAgainstOursOut(Out):
    """The request's final result is not the one this service's agent computed: a lie became final, or the agent
    is wrong. Nothing can undo it on-chain; an operator must look."""

    claim_id: int = Field(description="The claim that became final")
    final_state_hash: str = Field(description="Its final state hash")
    our_state_hash: str = Field(description="The final state hash this service's agent computed")


AGAINST_OURS = (
    "Set when the final result differs from the one this service's agent computed (an alert: a lie became final, "
    "or the agent is wrong); null otherwise"
)


class InferenceRequestOut(Out):
    id: int
    status: RequestStatusName = Field(description="requested, claimed, challenged, final, rejected or expired")
    requester: str
    program_id: int
    game: Literal["whole_run", "two_phase"] = Field(
        "whole_run",
        description="The game its claims play: whole_run (the VM run of the whole model) or two_phase "
        "(the graph's values computed natively; a dispute runs one node in the VM: docs/two-phase.md)",
    )
    model_id: int
    fee: int
    step_limit: int
    deadline: int
    input_size: int
    generation: GenerationOut | None = Field(
        None, description="For a language model's request: the prompt, and once final the answer (tokens and text)"
    )
    result: OutputOut | None
    claims: list[ClaimOut]
    games: list[GameOut]
    transactions: list[TransactionOut] = Field(
        description="Every transaction of the request, its claims and their games in chain order, with its gas; "
        "this service's own reverted and dropped ones too"
    )
    finalized_against_ours: FinalizedAgainstOursOut | None = Field(None, description=AGAINST_OURS)
    block: int = Field(description=BLOCK)


class InferenceRequestPage(Out):
    items: list[InferenceRequestOut]
    total: int = Field(description="How many match the filters in all")
    block: int = Field(description=BLOCK)


# --- disputes ----------------------------------------------------------------------------------------------


class NodeOut(Out):
    """A node of a graph, as a phase-1 round shows the value at a point: its index, op and output shape; for a
    language model's generation also the token step, layer and role it has (docs/llm-graph.md, "The nodes")."""

    index: int
    op: str = Field(description="linear, conv2d, ...; for a language model: embed, rms_norm, matmul, rope, "
                    "kv_append, attention, add, swiglu, argmax")  # fmt: skip
    shape: list[int] = Field(description="Its value's shape (a language model's argmax: the most tokens it holds)")
    role: str | None = Field(
        None,
        description="A language model's node: its role in its step (attn_norm, q, k, v, q_rope, ..., gate, "
        "up, swiglu, down, ffn_residual, final_norm, head, argmax)",
    )
    step: int | None = Field(
        None,
        description="A language model's node: its generation step, i.e. which new token it helps choose "
        "(0: the first, computed over the whole prompt)",
    )
    layer: int | None = Field(None, description="A language model's node: its transformer layer")
    chunk: int | None = Field(None, description="An LM head node: its chunk of the vocabulary")
    tensor: str | None = Field(None, description="The model tensor it uses, e.g. blk.3.ffn_gate")


class OperandOut(Out):
    slot: int = Field(description="The value slot: 0 is the request's input, k the output of node k-1")
    node: NodeOut | None = Field(description="The node whose output it is (null for the input, or unknown here)")


class RoundOut(Out):
    round: int
    phase: Literal["graph", "run"] = Field(
        "run", description="graph: over a graph run's values (points are node counts); run: over a VM run's steps"
    )
    lo: int
    hi: int
    hashes: list[str] = Field(description="The defender's state hashes at the interior points")
    points: list[int] = Field(description="The steps those hashes are of")
    segment: int | None = Field(description="The segment the challenger disputed (None while it chooses)")
    next_lo: int | None
    next_hi: int | None
    bisect_tx: str
    select_tx: str | None
    nodes: list[NodeOut] | None = Field(
        None, description="Phase 1: the node whose output each point's state adds (the value at point t is node t-1's)"
    )


class LinkOut(Out):
    """Where phase 1 of a graph claim's game ended and phase 2 began (docs/two-phase.md, "The link")."""

    node: int = Field(description="The node the game narrowed to")
    op: str | None = Field(description="Its op, when the model is known here")
    shape: list[int] | None = Field(None, description="Its value's shape, when the model is known here")
    role: str | None = Field(None, description="A language model's node: its role in its step (q, gate, head, ...)")
    step: int | None = Field(None, description="A language model's node: the generation step (the new token) it is in")
    layer: int | None = Field(None, description="A language model's node: its layer")
    tensor: str | None = Field(None, description="The model tensor it uses")
    operand_slots: list[int] = Field(description="The values it reads (value 0 is the input)")
    operands: list[OperandOut] = Field(
        default_factory=list, description="Those values, each with the node that made it (when known here)"
    )
    node_count: int
    start_state_hash: str = Field(description="The node run's start state, built by the registry")
    final_state_hash: str = Field(description="The defender's final state of that run")
    steps: int = Field(description="The run's steps: phase 2 dissects them")
    tx_hash: str


class FinalStepOut(Out):
    step: int
    pc: int
    instruction: str
    mnemonic: str
    pre_state_hash: str
    defender_post_state_hash: str
    true_post_state_hash: str | None


class BondOut(Out):
    account: str
    amount: int = Field(description="Wei")
    kind: Literal["credited", "paid", "burned"] = Field(
        description="credited (to withdraw), paid (sent directly) or burned"
    )


LOW_MARGIN = 0.25  # a move mined with less than this share of its budget left is marked


class MoveOut(Out):
    """One move of a game against its clock, in chain time."""

    move: Literal["challenge", "bisect", "select", "link", "end"] = Field(
        description="challenge (the game's start), bisect (the defender's hashes), select (the challenger's "
        "segment), link (the defender links the node a graph claim's phase 1 reached to a VM run), end (a resolve "
        "or a timeout, which anyone may send)"
    )
    side: Literal["defender", "challenger"] | None = Field(description="Who moved (None for the end)")
    tx_hash: str
    block_number: int
    chain_time: int = Field(description="When it was mined: its block's timestamp, in seconds")
    took: int = Field(description="Seconds since the previous move (for the challenge: since the claim was revealed)")
    left: int | None = Field(
        description="Seconds of the mover's clock left after it (for the challenge: of the claim's challenge "
        "window); None for the end"
    )
    budget: int | None = Field(description="What `left` is out of: the clock, or the challenge window")
    low: bool = Field(description=f"Mined with less than {LOW_MARGIN:.0%} of its budget left")


class LeastLeftOut(Out):
    defender: int | None = Field(description="The least clock the defender had left after any of its moves")
    challenger: int | None = Field(
        description="The least the challenger had left after any of its moves (of the window, for its challenge)"
    )


class DisputeOut(Out):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [{"id": 1, "status": "challenger_won", "rounds": 6, "lo": 1953756, "hi": 1953757}]
        },
    )
    id: int
    status: GameStatusName = Field(description="active, defender_won or challenger_won")
    winner: str | None
    request_id: int
    claim_id: int
    claim_status: str
    defender: str
    challenger: str
    claimed_final_state_hash: str
    claimed_steps: int
    lo: int = Field(description="The agreed step")
    hi: int = Field(description="The disputed step")
    rounds: int
    turn: Literal["defender", "challenger"] = Field(description="defender or challenger")
    defender_clock_left: int = Field(description="Seconds, in chain time")
    challenger_clock_left: int
    chain_time: int
    game: Literal["whole_run", "two_phase"] = Field(
        "whole_run",
        description="whole_run: the VM run of the whole model; two_phase: a graph claim's values, "
        "then one node's VM run (docs/two-phase.md)",
    )
    phase: Literal["graph", "run"] = Field("run", description="What the game dissects now")
    generation: GenerationOut | None = Field(
        None, description="For a language model's request: the prompt, and once final the answer"
    )
    history: list[RoundOut]
    link: LinkOut | None = Field(None, description="A two-phase game's link, once phase 1 reached one node")
    moves: list[MoveOut] = Field(description="Every move against its clock, in chain order")
    least_left: LeastLeftOut = Field(description="Each side's least margin over its moves")
    final_step: FinalStepOut | None = Field(description="Once the game is one step wide: the instruction at stake")
    bonds: list[BondOut]
    transactions: list[TransactionOut] = Field(
        description="Every transaction of the game in chain order, with its gas; this service's own reverted and "
        "dropped moves too"
    )
    gas_total: int = Field(description="The gas of every transaction listed (reverted ones cost gas too)")
    block: int = Field(description=BLOCK)


class DisputePage(Out):
    items: list[DisputeOut]
    total: int = Field(description="How many match the filters in all")
    block: int = Field(description=BLOCK)


# --- at a glance: the explorer's lists ---------------------------------------------------------------------


class RequestBriefOut(Out):
    """A request at a glance: what the explorer's requests table shows."""

    id: int
    status: RequestStatusName = Field(description="requested, claimed, challenged, final, rejected or expired")
    model_id: int
    model_root: str | None = Field(description="The model's root M, once its registration is indexed")
    requested_at: int = Field(description="Chain time of the request, in seconds")
    claims: int
    games: int
    exited: bool | None = Field(description="Of the final result, once there is one")
    exit_code: int | None
    kind: str | None = Field(
        None, description="Of the final result: output, step_limit_reached, malformed_output or output_too_large"
    )
    predicted: int | None = Field(description="For classifiers: the final predicted class")
    embedding: bool = Field(False, description="The final result is an embedding model's vector, not a class")
    language_model: bool = Field(False, description="A language model's request: a generation")
    text: str | None = Field(None, description="For a language model: the final answer as text")
    finalized_against_ours: FinalizedAgainstOursOut | None = Field(None, description=AGAINST_OURS)


class RequestBriefPage(Out):
    items: list[RequestBriefOut]
    total: int
    chain_time: int = Field(description="Chain time the page was read at, in seconds")
    block: int = Field(description=BLOCK)


class GameBriefOut(Out):
    """A game at a glance: what the explorer's games table shows."""

    id: int
    request_id: int
    claim_id: int
    defender: str
    challenger: str
    status: GameStatusName
    winner: str | None
    claimed_steps: int
    lo: int
    hi: int
    rounds: int
    turn: Literal["defender", "challenger"]
    defender_clock_left: int = Field(description="Seconds at the page's chain time")
    challenger_clock_left: int


class GameBriefPage(Out):
    items: list[GameBriefOut]
    total: int
    chain_time: int = Field(description="Chain time the page was read at, in seconds")
    block: int = Field(description=BLOCK)
