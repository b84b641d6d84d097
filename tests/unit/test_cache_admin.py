"""edgekd cache list|prune (pure file logic): sizes and ages per area; prune by age, never a busy student nor the
board measurements."""

from __future__ import annotations

import fcntl
import os
import time

from edgekd.cache_admin import list_areas, prune


def _entry(path, days_old, size=1000):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    t = time.time() - days_old * 86400
    os.utime(path, (t, t))


def test_list_and_prune_by_age(tmp_path):
    _entry(tmp_path / "students" / "old" / "student.pt", 40)
    os.utime(tmp_path / "students" / "old", (time.time() - 40 * 86400,) * 2)
    _entry(tmp_path / "students" / "new", 1)
    _entry(tmp_path / "arm-counts" / "a.json", 60, 10)
    _entry(tmp_path / "calibration" / "measurements.jsonl", 400)
    areas = {a.name: a for a in list_areas(tmp_path)}
    assert areas["students"].entries == 2 and areas["students"].bytes == 2000
    assert 0.9 < areas["students"].newest_days < 1.1 and areas["images"].entries == 0
    removed, freed = prune(tmp_path, 30, ("students", "arm-counts"))
    assert (removed, freed) == (2, 1010)
    assert [p.name for p in (tmp_path / "students").iterdir()] == ["new"]
    assert (tmp_path / "calibration" / "measurements.jsonl").is_file()  # never an area to prune


def test_a_student_being_trained_is_not_pruned(tmp_path):
    _entry(tmp_path / "students" / "k", 99)
    with open(tmp_path / "students" / "k.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        assert prune(tmp_path, 0, ("students",)) == (0, 0)
    assert prune(tmp_path, 0, ("students",))[0] == 1 and not (tmp_path / "students" / "k").exists()
