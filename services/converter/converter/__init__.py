"""The converter service: model uploads in, content-addressed model files out, optional on-chain registration."""
