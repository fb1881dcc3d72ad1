"""The challenger API's response bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RoundOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    round: int
    lo: int
    hi: int
    hashes: list[str] = Field(description="The defender's state hashes at the interior points")
    points: list[int] = Field(description="The steps those hashes are of")
    segment: int | None = Field(description="The segment the challenger disputed (None while it chooses)")
    next_lo: int | None
    next_hi: int | None
    bisect_tx: str
    select_tx: str | None


class FinalStepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    step: int
    pc: int
    instruction: str
    mnemonic: str
    pre_state_hash: str
    defender_post_state_hash: str
    true_post_state_hash: str | None


class BondOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    account: str
    amount: int = Field(description="Wei")
    kind: str = Field(description="credited (to withdraw), paid (sent directly) or burned")


class TransactionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    tx_hash: str
    events: list[str]
    gas_used: int
    sender: str
    block_number: int


class DisputeOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [{"id": 1, "status": "challenger_won", "rounds": 6, "lo": 1953756, "hi": 1953757}]
        },
    )
    id: int
    status: str = Field(description="active, defender_won or challenger_won")
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
    turn: str = Field(description="defender or challenger")
    defender_clock_left: int = Field(description="Seconds, in chain time")
    challenger_clock_left: int
    chain_time: int
    history: list[RoundOut]
    final_step: FinalStepOut | None = Field(description="Once the game is one step wide: the instruction at stake")
    bonds: list[BondOut]
    transactions: list[TransactionOut]
    gas_total: int


class DisputePage(BaseModel):
    items: list[DisputeOut]
    total: int


class RequestBriefOut(BaseModel):
    """A request at a glance: what the explorer's requests table shows."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    status: str = Field(description="requested, claimed, challenged, final, rejected or expired")
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


class RequestBriefPage(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    items: list[RequestBriefOut]
    total: int
    chain_time: int = Field(description="Chain time the page was read at, in seconds")
