"""Tasks: one module per task, each registered by name with the schema of its ``[data]``.

Every module in this package is imported here, so each task registers itself; a new task
is one new module and nothing else. The contract every task follows is
:class:`rnnlab.tasks.base.Task`.
"""

import importlib
import pkgutil

from rnnlab.tasks.base import TASKS, DataSpec, Task, TaskData, model_device, move_to, register_task

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "TASKS",
    "DataSpec",
    "Task",
    "TaskData",
    "model_device",
    "move_to",
    "register_task",
]
