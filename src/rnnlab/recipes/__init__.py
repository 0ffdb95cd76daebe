"""TOML recipes shipped with rnnlab (``rnnlab train <name>``)."""
