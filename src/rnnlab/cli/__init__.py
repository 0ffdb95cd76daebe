"""The ``rnnlab`` command line: one module per command group, one error guard.

The modules only parse arguments, call a documented Python function and print; the work is
in the library (``rnnlab.api``, the domain wings, ``rnnlab.analysis``, ``rnnlab.tuning``).
:mod:`rnnlab.cli.guard` turns every rnnlab error into one line and an exit code.

==============  =========================================================
module          commands
==============  =========================================================
``main``        the app; ``train``, ``evaluate``, ``runs``, ``recipes``
``data``        ``data list``, ``data fetch``
``generate``    ``generate`` (language models)
``forecast``    ``forecast``
``recognize``   ``recognize`` (speech)
``compare``     ``compare``, ``diagnose``
``tune``        ``tune``
==============  =========================================================
"""

from rnnlab.cli.main import app, run

__all__ = ["app", "run"]
