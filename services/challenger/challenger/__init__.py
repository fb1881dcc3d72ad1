"""The challenger service: the disputes API and the agent that re-checks every claim and plays the games."""
