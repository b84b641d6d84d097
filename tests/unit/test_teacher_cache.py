"""Teacher outputs are computed once per (teacher, data, split) and reused."""

from __future__ import annotations

import numpy as np

from edgekd.distill.cache import cached_teacher_logits


class CountingTeacher:
    """Stands in for a Teacher (our own cache logic is under test, not a runtime)."""

    outputs = "logits"

    def __init__(self, classes: int) -> None:
        self.calls, self.classes = 0, classes

    def logits(self, x):
        self.calls += 1
        return np.tile(np.arange(self.classes, dtype=np.float32), (len(x), 1))


def test_computed_once_then_reused_per_split(tmp_path, digits):
    t = CountingTeacher(digits.num_classes)
    a = cached_teacher_logits(t, "tid", digits, tmp_path)
    b = cached_teacher_logits(t, "tid", digits, tmp_path)
    assert t.calls == 1 and np.array_equal(a, b) and a.shape == (len(digits.x_train), 10)
    z = cached_teacher_logits(t, "tid", digits, tmp_path, split="test")
    assert t.calls == 2 and z.shape == (len(digits.x_test), 10)
    cached_teacher_logits(t, "another-teacher", digits, tmp_path)
    assert t.calls == 3  # a different teacher is never served another's outputs
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")]
