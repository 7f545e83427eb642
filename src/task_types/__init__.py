"""Task types: everything that differs between kinds of task lives behind this registry, keyed by a task's
`type` (conf/task/*.yaml). A new type is one module with a TaskType subclass, registered here, plus configs.

    sequence_classification  one label per text (or text pair): GLUE, SuperGLUE, TweetEval, your own data
    regression               one score per text pair (STS-B)
    token_classification     one tag per word: named entities (CoNLL-2003, your own CoNLL files)
"""

from __future__ import annotations

from src.task_types.base import TaskType
from src.task_types.classification import SequenceClassification
from src.task_types.regression import Regression
from src.task_types.token_classification import TokenClassification

TASK_TYPES: dict[str, TaskType] = {t.name: t for t in (SequenceClassification(), Regression(), TokenClassification())}


def task_type(task) -> TaskType:
    """The TaskType of a TaskConfig (its `type` was checked at start-up)."""
    return TASK_TYPES[task.type]


__all__ = ["TASK_TYPES", "TaskType", "task_type"]
