"""The submitter service: the inference-request API and the agent that serves and defends requests."""
