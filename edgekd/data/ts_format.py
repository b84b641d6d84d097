"""The ``.ts`` time-series format (UEA/UCR archive, sktime/aeon) and the BasicMotions files inside aeon's wheel.

A ``.ts`` file is ``#`` comment lines, ``@`` header lines (``@dimensions 6``, ``@seriesLength 100``,
``@classLabel true A B C``...), ``@data``, then one sample a line: the channels separated by ``:``, each
channel's values separated by ``,``, the class label last::

    0.07,0.07,-0.90,...:0.39,0.39,-3.66,...:...:Standing

Only what labelled, equal-length, time-stamp-free files need is read; anything else is a ``DataError``
naming the file and line. The BasicMotions files are found through ``importlib.util.find_spec("aeon")``,
which locates the installed package without importing it (aeon pulls numba, pandas, ...).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..errors import DataError

AEON_FIX = 'pip install --no-deps "aeon==1.6.*" (edgekd only reads its data files), or run ./setup.sh'
_FORMAT_FIX = "write one sample a line: channels separated by ':', values by ',', the class label last"


def read_ts(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """Samples (N×C×L float32) and their class labels (strings, as written) of a labelled ``.ts`` file."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path} ({e})", "check the file is a readable .ts text file") from None
    header: dict[str, str] = {}
    rows: list[list[list[float]]] = []
    labels: list[str] = []
    in_data = False
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise DataError(f"{path}, line {lineno}: data before the @data line", "put @data before the samples")
            key, _, value = line[1:].partition(" ")
            header[key.lower()] = value.strip()
            in_data = key.lower() == "data"
            if in_data:
                _check_header(header, path, lineno)
            continue
        channels, label = _parse_line(line, path, lineno)
        declared = header["classlabel"].split()[1:]
        if declared and label not in declared:
            raise DataError(f"{path}, line {lineno}: label {label[:30]!r} is not in @classLabel ({' '.join(declared)})",
                            "list every class in the @classLabel header")
        if rows and (len(channels), len(channels[0])) != (len(rows[0]), len(rows[0][0])):
            raise DataError(f"{path}, line {lineno}: {len(channels)} channels of {len(channels[0])} values, but the "
                            f"first sample has {len(rows[0])} of {len(rows[0][0])}", "give every sample the same shape")
        rows.append(channels)
        labels.append(label)
    if not rows:
        raise DataError(f"{path} holds no samples" + ("" if in_data else " (no @data line)"),
                        "add an @data line followed by one sample a line")
    x = np.asarray(rows, dtype=np.float32)
    _check_declared(header, x, path)
    return x, labels


def _check_header(header: dict[str, str], path: Path, lineno: int) -> None:
    if header.get("timestamps", "false").lower() == "true":
        raise DataError(f"{path}, line {lineno}: time-stamped .ts files are not supported", "drop the time stamps")
    if not header.get("classlabel", "").lower().startswith("true"):
        raise DataError(f"{path}, line {lineno}: the file declares no class labels (@classLabel true ...)",
                        "use a labelled .ts file")


def _parse_line(line: str, path: Path, lineno: int) -> tuple[list[list[float]], str]:
    *fields, label = line.split(":")
    label = label.strip()
    if not fields or not label:
        raise DataError(f"{path}, line {lineno}: expected channels and a class label separated by ':'", _FORMAT_FIX)
    channels = []
    for c, field_ in enumerate(fields):
        try:
            values = [float(v) for v in field_.split(",")]
        except ValueError:
            bad = next(v for v in field_.split(",") if not _is_float(v))
            raise DataError(f"{path}, line {lineno}: channel {c} holds {bad.strip()[:20]!r}, not a number",
                            "fill or drop samples with missing ('?') or malformed values") from None
        if not all(np.isfinite(values)):
            raise DataError(f"{path}, line {lineno}: channel {c} holds NaN or inf", "drop or impute those values")
        if c and len(values) != len(channels[0]):
            raise DataError(f"{path}, line {lineno}: channel {c} has {len(values)} values, channel 0 "
                            f"{len(channels[0])}", "give every channel of a sample the same length")
        channels.append(values)
    return channels, label


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _check_declared(header: dict[str, str], x: np.ndarray, path: Path) -> None:
    """The samples agree with @dimensions and @seriesLength, when the header gives them."""
    for key, got in (("dimensions", x.shape[1]), ("serieslength", x.shape[2])):
        want = header.get(key, "")
        if want.isdigit() and int(want) != got:
            raise DataError(f"{path}: the header says @{key} {want} but the samples have {got}",
                            "fix the header or the samples")


def aeon_data_file(problem: str, split: str) -> Path:
    """``aeon/datasets/data/PROBLEM/PROBLEM_SPLIT.ts`` in the installed aeon, found without importing aeon."""
    try:
        spec = importlib.util.find_spec("aeon")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"{problem} needs the data files of the Python package aeon, which is not installed",
                        AEON_FIX)
    for location in spec.submodule_search_locations:
        path = Path(location) / "datasets" / "data" / problem / f"{problem}_{split}.ts"
        if path.is_file():
            return path
    where = ", ".join(spec.submodule_search_locations)
    raise DataError(f"{problem}_{split}.ts is missing from the installed aeon ({where}/datasets/data/{problem})",
                    'reinstall it: pip install --force-reinstall --no-deps "aeon==1.6.*"')


def load_basic_motions() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """BasicMotions (smart-watch 3-axis accelerometer channels 0-2 + 3-axis gyroscope 3-5, 100 steps at 10 Hz;
    4 activities; 40 train / 40 test): x_train, y_train, x_test, y_test, class names (sorted)."""
    x_tr, l_tr = read_ts(aeon_data_file("BasicMotions", "TRAIN"))
    x_te, l_te = read_ts(aeon_data_file("BasicMotions", "TEST"))
    names = tuple(sorted(set(l_tr) | set(l_te)))
    index = {n: i for i, n in enumerate(names)}
    y_tr = np.array([index[s] for s in l_tr], dtype=np.int64)
    y_te = np.array([index[s] for s in l_te], dtype=np.int64)
    return x_tr, y_tr, x_te, y_te, names
