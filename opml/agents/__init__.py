"""Agents that play the protocol on their own: a monitor, a scheduler, players over the pure solver, a responder."""
