"""Tasks: one module per task, each registered by name with the schema of its ``[data]``.

Built-in tasks are imported here so that they register; a new task module adds one import.
The contract every task follows is :class:`rnnlab.tasks.base.Task`.
"""

from rnnlab.tasks import adding
from rnnlab.tasks.base import TASKS, DataSpec, Task, TaskData, model_device, move_to, register_task

__all__ = [
    "TASKS",
    "DataSpec",
    "Task",
    "TaskData",
    "adding",
    "model_device",
    "move_to",
    "register_task",
]
