"""Tasks: the Task contract (:mod:`rnnlab.tasks.base`) and the synthetic tasks.

Each task is registered by name with the schema of its ``[data]``; the registry
(:data:`rnnlab.registry.TASKS`) imports the built-in task modules, the synthetic ones here and
those of the domain wings, on its first lookup. A new task is one module with
``@register_task("name")`` and one line in the registry's providers.
"""

from rnnlab.registry import TASKS
from rnnlab.tasks.base import DataSpec, Task, TaskData, model_device, move_to, register_task

__all__ = [
    "TASKS",
    "DataSpec",
    "Task",
    "TaskData",
    "model_device",
    "move_to",
    "register_task",
]
