"""Long-term-dependency tasks for training recurrent cells: synthetic batches (numpy only), each
task's analytic chance/memoryless baseline, its metrics and its definition of solved.

    task = make("adding", T=200)
    b = task.batch(np.random.default_rng(0), 64)   # b.x [L,B,inputs], b.target, b.mask
    m = task.metrics(pred, b); task.solved(m); task.baseline()

Each task's docstring gives its source (paper, section), its layout, baseline and solved rule.
"""

from __future__ import annotations

from .adding import Adding, AddingHS
from .base import Batch, Task, TaskError
from .copying import Copy, CopyVariable
from .cue import Cue, Forget
from .order import TemporalOrder

TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (Adding, AddingHS, Copy, CopyVariable, Cue, Forget, TemporalOrder)
}


def make(name: str, T: int, **options) -> Task:
    """The task `name` with gap/size parameter T and its options; TaskError for an unknown name,
    a bad T or a bad option."""
    cls = TASKS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise TaskError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    return cls(T, **options)


__all__ = ["Batch", "TASKS", "Task", "TaskError", "make"] + [c.__name__ for c in TASKS.values()]
