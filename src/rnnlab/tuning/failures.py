"""What goes wrong in tuning: a bad setting, and a trial that fails.

A bad sampler, pruner, storage, study or worker count is a :class:`TuningError` (a
:class:`~rnnlab.errors.UserError`: one line, no traceback). A trial that raises or diverges
raises :class:`TrialFailed` inside Optuna's ``optimize`` (which records it as failed and goes
on); its reason is stored in the trial's user attribute :data:`FAIL_REASON`.
"""

from __future__ import annotations

from rnnlab.errors import UserError

FAIL_REASON = "fail_reason"
"""The user attribute of a failed trial that holds its one-line reason."""


class TuningError(UserError):
    """A bad tuning setting: sampler, pruner, storage, study or worker count."""


class TrialFailed(Exception):  # noqa: N818  (a recorded outcome, caught by study.optimize)
    """A trial raised or diverged; the reason is stored in its ``fail_reason`` user attr."""
