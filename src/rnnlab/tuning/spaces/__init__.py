"""Search spaces shipped with rnnlab, one TOML file per recipe (``rnnlab tune RECIPE``)."""
