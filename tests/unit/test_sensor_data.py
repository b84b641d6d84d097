"""The basic-motions data spec (BasicMotions from aeon's wheel, read by edgekd's own .ts parser) and its
paired accelerometer-only view for cross-modal distillation."""

from __future__ import annotations

import importlib.machinery
import importlib.util

import numpy as np
import pytest

from edgekd.data import list_builtin_specs, load_dataset
from edgekd.data.ts_format import aeon_data_file, read_ts
from edgekd.errors import DataError

needs_aeon = pytest.mark.skipif(
    importlib.util.find_spec("aeon") is None,
    reason='aeon is not installed (./setup.sh --dev installs it; or pip install --no-deps "aeon==1.6.*")',
)

TINY = """\
# two channels, three steps, three samples
@problemName Tiny
@timeStamps false
@univariate false
@dimensions 2
@seriesLength 3
@classLabel true up down
@data
1,2,3:4,5,6:up
-1,-2,-3:0.5,0.25,1e-3:down

7,8,9:10,11,12:up
"""


def _tiny(tmp_path, text: str = TINY):
    path = tmp_path / "Tiny_TRAIN.ts"
    path.write_text(text)
    return path


def test_read_ts_hand_written(tmp_path):
    x, labels = read_ts(_tiny(tmp_path))
    assert x.dtype == np.float32 and x.shape == (3, 2, 3)
    np.testing.assert_array_equal(x[1], np.float32([[-1, -2, -3], [0.5, 0.25, 1e-3]]))
    np.testing.assert_array_equal(x[2, 1], [10, 11, 12])
    assert labels == ["up", "down", "up"]


@pytest.mark.parametrize("bad, match", [
    ("1,2,x:4,5,6:up", r"line 13: channel 0 holds 'x', not a number"),
    ("1,2,3:4,?,6:up", r"line 13: channel 1 holds '\?'"),
    ("1,2,3:4,5:up", r"line 13: channel 1 has 2 values, channel 0 3"),
    ("1,2,3:up", r"line 13: 1 channels of 3 values, but the first sample has 2 of 3"),
    ("1,2,3,4,5,6", r"line 13: expected channels and a class label"),
    ("1,2,3:4,5,6:sideways", r"line 13: label 'sideways' is not in @classLabel \(up down\)"),
])
def test_read_ts_bad_line_names_it(tmp_path, bad, match):
    with pytest.raises(DataError, match=match) as e:
        read_ts(_tiny(tmp_path, TINY + bad + "\n"))
    assert "\n" not in str(e.value) and "Tiny_TRAIN.ts" in str(e.value)


@pytest.mark.parametrize("text, match", [
    (TINY.replace("@dimensions 2", "@dimensions 3"), "@dimensions 3 but the samples have 2"),
    (TINY.replace("@timeStamps false", "@timeStamps true"), "line 8: time-stamped"),
    (TINY.replace("@classLabel true up down", "@classLabel false"), "declares no class labels"),
    (TINY.split("@data")[0], r"holds no samples \(no @data line\)"),
    ("1,2:3,4:up\n", "line 1: data before the @data line"),
])
def test_read_ts_bad_header(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        read_ts(_tiny(tmp_path, text))


@needs_aeon
def test_basic_motions_shapes_classes_splits():
    assert "basic-motions" in list_builtin_specs()
    d = load_dataset("basic-motions", seed=0)
    assert d.kind == "sequence" and d.input_shape == (6, 100) and d.num_classes == 4
    assert d.class_names == ("Badminton", "Running", "Standing", "Walking")
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (36, 4, 40)
    assert all(a.dtype == np.float32 for a in (d.x_train, d.x_val, d.x_test))
    # the official TEST file is the test split; val is carved from TRAIN, stratified (one per class)
    assert np.bincount(d.y_test).tolist() == [10] * 4
    assert np.bincount(d.y_val).tolist() == [1] * 4 and np.bincount(d.y_train).tolist() == [9] * 4
    x_tr, labels_tr = read_ts(aeon_data_file("BasicMotions", "TRAIN"))
    x_te, _ = read_ts(aeon_data_file("BasicMotions", "TEST"))
    np.testing.assert_array_equal(d.x_test, x_te)
    pool = np.concatenate([d.x_train, d.x_val])
    assert sorted(map(bytes, pool)) == sorted(map(bytes, x_tr))  # train + val = TRAIN, no row twice
    assert {d.class_names[i] for i in d.y_train} == set(labels_tr)
    again = load_dataset("basic-motions", seed=0)
    np.testing.assert_array_equal(again.x_val, d.x_val)


@needs_aeon
def test_paired_accelerometer_view():
    """The teacher sees all 6 channels (accelerometer + gyroscope), the student only the accelerometer."""
    s = load_dataset("paired:channels=0,1,2:basic-motions", seed=0)
    t = s.teacher_view
    assert s.input_shape == (3, 100) and t.input_shape == (6, 100) and s.kind == t.kind == "sequence"
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(s, f"x_{part}"), getattr(t, f"x_{part}")[:, :3])
        np.testing.assert_array_equal(getattr(s, f"y_{part}"), getattr(t, f"y_{part}"))
    with pytest.raises(DataError, match=r"channels \[6\] do not exist"):
        load_dataset("paired:channels=6:basic-motions")


def test_missing_aeon_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None)
    with pytest.raises(DataError) as e:
        load_dataset("basic-motions")
    msg = str(e.value)
    assert "\n" not in msg and "aeon" in msg and "not installed" in msg
    assert 'pip install --no-deps "aeon==1.6.*"' in msg and "./setup.sh" in msg


def test_aeon_without_its_data_files(monkeypatch, tmp_path):
    spec = importlib.machinery.ModuleSpec("aeon", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: spec)
    with pytest.raises(DataError, match=r"BasicMotions_TRAIN\.ts is missing from the installed aeon.*reinstall"):
        load_dataset("basic-motions")
