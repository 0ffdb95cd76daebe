"""One worker process of a study: ``python -m rnnlab.tuning.worker SPEC N_TRIALS SEED``.

:func:`rnnlab.tuning.search.tune` writes ``SPEC`` (``workers.json`` in the study directory:
study name, storage URL, base config, search space, settings) and starts one such process per
worker; each runs up to ``N_TRIALS`` trials against the shared storage.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rnnlab import config as config_mod
from rnnlab.tuning import space as space_mod
from rnnlab.tuning.trials import optimize


def main(argv: list[str]) -> int:
    """Run the worker described by ``argv = [SPEC, N_TRIALS, SEED]``; returns the exit code."""
    spec_path, n_trials, seed = argv
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    optimize(
        spec["study_name"],
        spec["storage"],
        config_mod.from_dict(spec["config"]),
        space_mod.parse(spec["space"], spec["space_source"]),
        Path(spec["study_dir"]),
        total=int(spec["total"]),
        n_trials=int(n_trials),
        sampler=spec["sampler"],
        pruner=spec["pruner"],
        seed=None if seed == "none" else int(seed),
        timeout=spec["timeout"],
        heartbeat_interval=int(spec["heartbeat_interval"]),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
