"""Architecture studies shipped with rnnlab (TOML files read by ``rnnlab compare``)."""
