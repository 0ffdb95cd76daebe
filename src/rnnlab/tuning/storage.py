"""Where a study lives: an RDB storage with heartbeats (by default a SQLite file).

Storage is a SQLite file ``<study dir>/study.db`` unless another RDB URL is given, so running
the same command again resumes the study. The storage keeps a heartbeat for each running
trial; a trial whose worker was killed is marked failed once its heartbeat is
``2 * heartbeat_interval`` seconds old and retried with the same parameters.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from rnnlab.tuning.failures import TuningError


def default_storage(study_dir: Path) -> str:
    """``sqlite:///<study_dir>/study.db`` (absolute)."""
    return f"sqlite:///{(study_dir / 'study.db').resolve()}"


SCHEMA_RACE_ATTEMPTS = 5


def open_storage(url: str, heartbeat_interval: int = 10) -> RDBStorage:
    """An RDB storage with heartbeats: trials of killed workers are failed, then retried.

    Raises:
        TuningError: a URL the storage cannot open.
    """
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": 60}}  # several workers wait on the file lock
    for attempt in range(SCHEMA_RACE_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna 5.0
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=2 * heartbeat_interval,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as err:
            # Processes opening a new database together race to create its schema: the
            # loser's insert of the schema version fails, or it reads a table not yet
            # created. A moment later the winner's schema is complete.
            if attempt == SCHEMA_RACE_ATTEMPTS - 1:
                raise TuningError(
                    f"cannot open storage {url!r}: {type(err).__name__}: {err}"
                ) from None
            time.sleep(0.2 * (attempt + 1))
        except Exception as err:  # sqlalchemy's errors: a bad URL, a missing driver, no server
            raise TuningError(f"cannot open storage {url!r}: {type(err).__name__}: {err}") from None
    raise AssertionError("unreachable")
