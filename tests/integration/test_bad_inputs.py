"""The bad-input catalogue (issue 9): every entry point (CLI and API) answers each bad input with one line naming
the cause and the fix, exit code 2 (3 for an unmet budget; 130 for Ctrl-C), no traceback without --debug, no
partial artifact, and earlier artifacts intact. Three tables: CASES (in process), OUTPUT_CASES (read-only, full
disk, file-size limit: subprocess builds) and INTERRUPTS (SIGINT at each stage of a build). The README's
troubleshooting section lists them (tests/integration/test_bad_inputs.py::test_readme_lists_the_catalogue)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from edgekd.cli import main
from edgekd.errors import EdgeKDError
from tests.conftest import EDGEKD, REPO
from tests.integration.bad_inputs_fixtures import Bad, build_bad

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Bad:
    return build_bad(tmp_path_factory.mktemp("bad-inputs"))


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...] | Callable[..., Any]  # CLI arguments ({files}, {out}, ... filled in), or an API call
    says: str  # regex the cause must match
    fix: str  # regex the fix must match
    rc: int = 2
    leaves: str | None = None  # regex of files (relative to the output dir) the case may leave, all complete
    prepare: Callable[[Bad, Path], None] | None = None

    @property
    def entry(self) -> str:
        return "api" if callable(self.args) else "cli"


def _build(*extra: str, tdir: str = "{targets}", out: str = "{out}", data: str = "digits",
           extra_data: tuple[str, ...] = ()) -> tuple[str, ...]:
    return ("build", "--target", "box", "--targets-dir", tdir, "--data", data, *extra_data, "--size", "0.25x1",
            "--epochs", "1", "--bench-runs", "5", "--no-int8-search", "--cache-dir", "{cache}", "--out", out, *extra)


def _teacher(name: str) -> tuple[str, ...]:
    return ("distill", "--data", "digits", "--teacher", "{files}/" + name, "--epochs", "1",
            "--cache-dir", "{tmp}/cache", "--out", "{out}")


def _data(spec: str, *extra: str) -> tuple[str, ...]:
    return ("distill", "--data", spec, "--loss", "ce", "--epochs", "1", "--out", "{out}", "--cache-dir", "{cache}",
            *extra)


def _api_build(**kw: Any) -> Callable[[Bad, Path], Any]:
    def call(b: Bad, out: Path) -> Any:
        from edgekd import BuildConfig, build

        kw2 = {k: v.format(files=b.root / "files") if isinstance(v, str) else v for k, v in kw.items()}
        return build(BuildConfig(**{"target": "box", "targets_dir": str(b.targets), "data": "digits",
                                    "sizes": ((0.25, 1),), "out_dir": str(out), "cache_dir": str(b.cache), **kw2}))
    return call


def _tamper(b: Bad, out: Path) -> None:
    shutil.copytree(b.run, out.parent / "tampered")
    f = out.parent / "tampered" / "candidates" / "convnet_w0.25_d1" / "model_int8.onnx"
    f.write_bytes(f.read_bytes()[:-1] + b"\x00")


def _hostile_archive(b: Bad, out: Path) -> None:
    with tarfile.open(out.parent / "bundle.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("bundle/../../escaped.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))


NOT_TORCH = r"is truncated or not a PyTorch file"
CASES = [
    # -- model files: truncated, corrupt, wrong format, for every teacher format and the other entry points
    Case("teacher-pt-truncated", _teacher("cut_ts.pt"), r"cut_ts\.pt " + NOT_TORCH, "re-save"),
    Case("teacher-pt-corrupt-member", _teacher("flipped_ts.pt"), r"flipped_ts\.pt (is corrupt|" + NOT_TORCH + ")",
         "re-save"),
    Case("teacher-pt-wrong-format", _teacher("onnx_named.pt"), r"onnx_named\.pt " + NOT_TORCH, "re-save"),
    Case("teacher-pt-pickled-module", _teacher("whole_module.pt"), r"holds a pickled Python object",
         r"state_dict.*--trust-pickle \(dangerous"),
    Case("teacher-pt2-truncated", _teacher("cut_t.pt2"), r"cut_t\.pt2 " + NOT_TORCH, "torch.export.save"),
    Case("teacher-pt2-wrong-format", _teacher("torchscript_named.pt2"),
         r"torch\.export teacher .*torchscript_named\.pt2 cannot be loaded", "torch.export.save"),
    Case("teacher-onnx-truncated", _teacher("cut_t.onnx"), r"ONNX teacher .*cut_t\.onnx cannot be loaded",
         "complete .onnx model"),
    Case("teacher-onnx-wrong-format", _api_build(teacher="{files}/tflite_named.onnx"),
         r"ONNX teacher .*tflite_named\.onnx cannot be loaded", "complete .onnx model"),
    Case("teacher-tflite-truncated", _teacher("cut_t.tflite"), r"TFLite teacher .*cut_t\.tflite cannot be loaded",
         "complete .tflite model"),
    Case("teacher-tflite-wrong-format", lambda b, out: __import__("edgekd").load_teacher(b.f("onnx_named.tflite")),
         r"TFLite teacher .*onnx_named\.tflite cannot be loaded", "complete .tflite model"),
    Case("teacher-unknown-format", _teacher("model.h5"), r"model\.h5 has an unknown format '\.h5'", r"\.pt2.*\.onnx"),
    Case("quantize-truncated-onnx", ("quantize", "{files}/cut_t.onnx", "--data", "digits", "--out", "{out}/q.onnx"),
         r"cut_t\.onnx is not a readable ONNX model", "edgekd export"),
    Case("quantize-out-not-onnx", ("quantize", "{files}/t.onnx", "--data", "digits", "--out", "{out}/q.tflite"),
         r"--out .*q\.tflite is not an \.onnx file name", r"model_int8\.onnx"),
    Case("bench-truncated-tflite", ("bench", "{files}/cut_t.tflite", "--runs", "5"),
         r"LiteRT cannot load .*cut_t\.tflite", r"complete \.tflite model"),
    Case("export-corrupt-student-weights", ("export", "{files}/student_junk/student.json", "--out", "{out}/m.onnx"),
         r"student weights .*student_junk/student\.pt cannot be loaded", "re-run `edgekd distill`"),
    Case("smoke-truncated-model", ("smoke", "{files}/cut_t.onnx", "--target", "box", "--targets-dir", "{targets}",
                                   "--out", "{out}/b", "--data", "digits"),
         r"onnxruntime cannot load .*cut_t\.onnx", "valid ONNX file"),
    # -- shapes and classes
    Case("teacher-input-shape-mismatch", _teacher("t28.onnx"),
         r"teacher t28\.onnx expects samples of shape \(1, 28, 28\) but the data's are \(1, 8, 8\)",
         "trained on this data's input shape"),
    Case("bench-dynamic-input-shape", ("bench", "{files}/dyn.onnx", "--runs", "5"),
         r"dyn\.onnx has dynamic dimensions besides the batch", "static sample shape"),
    Case("export-data-shape-mismatch", ("export", "{files}/student/student.json", "--out", "{out}/m.onnx",
                                        "--data", "npz:{files}/images16.npz"),
         r"samples of shape \(1, 16, 16\) but convnet_w0\.25_d1 was built for \(1, 8, 8\)", "--data the student"),
    Case("teacher-student-class-mismatch", _teacher("three_classes.pt"),
         r"teacher three_classes\.pt outputs 3 classes but the data has 10", "same classes"),
    # -- data sets
    Case("data-empty", _api_build(data="npz:{files}/empty.npz"), r"empty\.npz: x is empty", "at least a few"),
    Case("data-single-class", _data("npz:{files}/single_class.npz"), r"fewer than 2 classes \(only label 0\)",
         "at least 2 classes"),
    Case("data-nan", _build("--data", "npz:{files}/nan.npz"), r"nan\.npz: x holds 1 NaN and 0 inf values",
         "drop or impute"),
    Case("data-inf-in-test-split", _data("npz:{files}/inf_test.npz"), r"x_test holds 0 NaN and 576 inf values",
         "drop or impute"),
    Case("labels-out-of-range", _data("npz:{files}/label_out_of_range.npz"),
         r"label 9 is out of range for 3 class names", "one class name per label"),
    Case("labels-huge-index", _data("npz:{files}/label_huge.npz"),
         r"label 1000000000 would make 1000000001 classes \(at most 10000\)", r"re-number the labels"),
    Case("labels-negative", lambda b, out: __import__("edgekd").load_dataset(
        f"npz:{b.root / 'files' / 'label_negative.npz'}"), r"y holds 1 negative labels \(e\.g\. -1\)",
         r"class indices 0\.\.K-1"),
    Case("folder-mixed-image-sizes", _data("folder:{files}/mixed_sizes"),
         r"image .*c1/3\.png is 12x12 but the other images are 8x8", "pass --image-size N"),
    Case("folder-not-images", _data("folder:{files}/not_images"),
         r"image .*c0/a\.png cannot be decoded \(UnidentifiedImageError", "--skip-bad-images"),
    Case("folder-truncated-image", _data("folder:{files}/truncated", "--image-size", "8"),
         r"image .*c1/2\.jpg cannot be decoded \(OSError: .*[Tt]runcated", "--skip-bad-images"),
    Case("option-image-size-tiny", _data("folder:{files}/mixed_sizes", "--image-size", "4"),
         r"--image-size 4 is outside 8\.\.4096 pixels", "--image-size 96"),
    Case("option-teacher-input-malformed", _build("--teacher-input", "resnet", data="folder:{files}/mixed_sizes",
                                                  extra_data=("--image-size", "8")),
         r"unknown --teacher-input preset 'resnet'", "--teacher-input imagenet"),
    Case("option-teacher-input-without-images", _build("--teacher-input", "imagenet"),
         r"--teacher-input needs image folder data \(folder:DIR\), not 'digits'", "folder:DIR"),
    Case("option-student-arch-unimportable", _build("--student-arch", "no_such_module:make_student"),
         r"--student-arch no_such_module:make_student cannot be imported: No module named 'no_such_module'",
         "PYTHONPATH"),
    Case("option-resolution-tiny", _build("--resolution", "4"), r"--resolution \(4,\) is not a list of sizes",
         "--resolution 96"),
    Case("unlabeled-rest-without-limit", _data("digits", "--unlabeled", "rest"),
         r"--unlabeled rest: --limit left no training sample out", "pass a --limit below"),
    Case("unlabeled-without-teacher", _data("digits", "--limit", "100", "--unlabeled", "rest"),
         r"training samples are unlabelled .* no teacher outputs to label them", "use a distillation loss"),
    Case("data-spec-malformed", _data("npz:"), r"data spec 'npz:' lacks its path", "npz:PATH"),
    # -- target profiles: malformed or contradictory TOML
    Case("target-toml-syntax", _build(tdir="{targets_bad}/syntax"), r"box\.toml is not valid TOML \(.*line \d+",
         "fix the syntax"),
    Case("target-threads-over-cores", _build(tdir="{targets_bad}/threads_over_cores"),
         r"threads \(8\) must be between 1 and cores \(2\)", "at most the number of cores"),
    Case("target-vela-without-npu", lambda b, out: __import__("edgekd").load_target(
        "box", b.target_dir("vela_without_npu")), r'emulation = "vela" and an \[npu\] table go together',
         "needs both"),
    Case("target-wrong-type", ("targets", "show", "box", "--targets-dir", "{targets_bad}/wrong_type"),
         r"cores has the wrong type \(str\)", "expected types"),
    Case("target-unknown-key", ("targets", "list", "--targets-dir", "{targets_bad}/unknown_key"),
         r"unknown key\(s\) turbo", "use only"),
    # -- budgets: negative, out of range, impossible (exit 3), and negative or impossible options
    Case("budget-negative", _build(tdir="{targets_bad}/negative_budget"),
         r"box\.toml\): budget p90_latency_ms must be positive, got -5", "positive number"),
    Case("budget-accuracy-over-1", _build(tdir="{targets_bad}/accuracy_over_1"),
         r"budget min_accuracy is a fraction in 0\.\.1, got 85", "0.85"),
    Case("budget-impossible-latency", _build("--search", tdir="{targets_bad}/impossible_latency"),
         r"no candidate can meet the box budget \(estimated before training, none trained\)", "relax the budget",
         rc=3, leaves=r"search/.*"),
    Case("budget-impossible-accuracy", _build("--no-search", tdir="{targets_bad}/impossible_accuracy"),
         r"no student meets the box budget; closest is convnet_w0\.25_d1@onnxruntime: min_accuracy", "relax",
         rc=3, leaves=r".*"),
    Case("option-time-budget-negative", _build("--time-budget", "-1"), r"--time-budget -1\.0 is not a positive",
         "--time-budget 600"),
    Case("option-epochs-zero", _data("digits", "--epochs", "0"), r"epochs, batch size and patience must be >= 1",
         "positive integers"),
    Case("option-bench-runs-zero", _api_build(bench_runs=0), r"bench runs must be >= 1", "--bench-runs 200"),
    Case("option-size-impossible", _build("--size", "0x1"), r"student width must be in \(0, 16\], got 0\.0",
         "0.25"),
    # -- calibration data of the wrong shape
    Case("calibration-wrong-shape", ("quantize", "{files}/t.onnx", "--data", "npz:{files}/images16.npz",
                                     "--out", "{out}/q.onnx"),
         r"calibration samples have shape \(1, 16, 16\) but the model expects per-sample shape \(1, 8, 8\)",
         "calibration data shaped"),
    Case("calibration-zero-samples", ("quantize", "{files}/t.onnx", "--data", "digits", "--calibration-samples",
                                      "0", "--out", "{out}/q.onnx"),
         r"calibration_samples must be an integer >= 1, got 0", "256"),
    Case("smoke-samples-wrong-shape", ("smoke", "{files}/t.onnx", "--target", "box", "--targets-dir", "{targets}",
                                       "--out", "{out}/b", "--data", "npz:{files}/images16.npz"),
         r"input data of shape \(8, 1, 16, 16\) does not fit model input", "per-sample shape matches"),
    # -- output location
    Case("output-under-a-file", _build(out="{out}/earlier.txt/run"),
         r"cannot create output directory .*earlier\.txt/run", "writable location"),
    # -- run directories: from an older edgekd, tampered, hostile archive
    Case("report-older-run-dir", ("report", "{old_run}"), r"written by an older edgekd \(report_version 0",
         "re-run the build"),
    Case("compare-older-run-dir", ("compare", "{run}", "{old_run}"), r"written by an older edgekd", "re-run"),
    Case("verify-older-run-dir", ("verify", "{old_run}"), r"manifest\.json lists no artifact hashes \(written by "
         r"another or an older edgekd", "re-run the build"),
    Case("verify-changed-artifact", ("verify", "{tmp}/tampered"),
         r"1 of \d+ artifacts .* candidates/convnet_w0\.25_d1/model_int8\.onnx changed", "do not deploy",
         prepare=_tamper),
    Case("smoke-run-hostile-archive", ("smoke", "run", "{tmp}/bundle.tar.gz"),
         r"unsafe archive bundle\.tar\.gz: member 'bundle/\.\./\.\./escaped\.txt' \(outside the folder\)",
         "do not unpack", prepare=_hostile_archive),
]


def _fill(args: tuple[str, ...], b: Bad, out: Path) -> list[str]:
    places = {"files": b.root / "files", "out": out, "tmp": out.parent, "cache": b.cache, "targets": b.targets,
              "targets_bad": b.root / "targets_bad", "run": b.run, "old_run": b.old_run}
    return [a.format(**places) for a in args]


def _snapshot(*dirs: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for d in dirs for p in sorted(d.rglob("*"))
            if p.is_file()}


def _error_line(err: str, out: str, rc: int) -> str:
    assert "Traceback" not in err + out, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("edgekd: error:")]
    assert len(lines) == 1, err[-3000:]
    return lines[0][len("edgekd: error: "):]


def _check_line(case: Case, line: str) -> None:
    assert "\n" not in line and ". Fix: " in line, line
    cause, fix = line.split(". Fix: ", 1)
    assert re.search(case.says, cause), line
    assert re.search(case.fix, fix), line


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(case: Case, bad: Bad, tmp_path: Path, capsys) -> None:
    out = tmp_path / case.id
    out.mkdir()
    keep = out / "earlier.txt"
    keep.write_text("an artifact from an earlier run")
    if case.prepare:
        case.prepare(bad, out)
    inputs = (bad.root / "files", bad.targets, bad.root / "targets_bad", bad.run, bad.old_run)
    before = _snapshot(*inputs)
    if case.entry == "cli":
        rc = main(_fill(case.args, bad, out))
        cap = capsys.readouterr()
        assert rc == case.rc, cap.err[-3000:]
        line = _error_line(cap.err, cap.out, rc)
    else:
        with pytest.raises(EdgeKDError) as e:
            case.args(bad, out)
        assert e.value.exit_code == case.rc
        line = str(e.value)
    _check_line(case, line)
    assert keep.read_text() == "an artifact from an earlier run"  # earlier artifacts intact
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p != keep)
    assert not [p for p in left if ".tmp" in p], left  # nothing half-written
    assert all(re.fullmatch(case.leaves, p) for p in left) if case.leaves else left == [], left
    assert _snapshot(*inputs) == before  # the inputs (and the finished runs) are untouched
    if case.rc == 3 and (out / "report.json").is_file():  # the report of an unmet budget is complete
        from edgekd.verify import verify_run

        assert verify_run(out).checked >= 10


def test_debug_shows_the_traceback(bad: Bad, tmp_path: Path, capsys) -> None:
    rc = main(["--debug", *_fill(_teacher("cut_t.onnx"), bad, tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback (most recent call last)" in err and "edgekd: error: ONNX teacher" in err


def test_building_into_an_older_run_dir_redoes_its_stages(bad: Bad, tmp_path: Path) -> None:
    run = tmp_path / "old"
    shutil.copytree(bad.old_run, run)
    args = _fill(_build(), bad, run)
    r = subprocess.run([*EDGEKD, *args], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((run / "report.json").read_text())
    assert rep["report_version"] >= 1 and rep["stages"]["reused"] == []  # format-0 stamps are not trusted
    v = subprocess.run([*EDGEKD, "verify", str(run)], capture_output=True, text=True, timeout=120)
    assert v.returncode == 0 and v.stdout.startswith("OK: "), v.stderr


# ------------------------------------------------------------------ output location: read-only, full, size limit

def _mount_tmpfs(where: Path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", str(where)], capture_output=True)


def _stamps_valid(run: Path) -> list[str]:
    """Names of stage stamps whose outputs still hash as recorded (all of them must)."""
    from edgekd.stage_cache import _valid

    good = []
    for stamp in run.rglob(".stages/*.json"):
        where = stamp.parent.parent
        key = json.loads(stamp.read_text())["key"]
        assert _valid(stamp, key, where) is not None, f"{stamp} does not match its outputs"
        good.append(f"{where.name}/{stamp.stem}")
    return good


OUTPUT_CASES = ["output-read-only", "output-disk-full", "output-file-size-limit"]


@pytest.mark.parametrize("kind", OUTPUT_CASES)
def test_unwritable_or_full_output(kind: str, bad: Bad, tmp_path: Path) -> None:
    """read-only: a read-only tmpfs as root (chmod 555 otherwise, which root would ignore); disk full: a 32 KiB
    tmpfs (root only); file-size limit: RLIMIT_FSIZE on the build process (works without root)."""
    mnt = tmp_path / "mnt"
    preexec = None
    if kind == "output-read-only":
        if not _mount_tmpfs(mnt, "ro,size=64k"):
            if os.geteuid() == 0:
                pytest.skip("cannot mount a read-only tmpfs here")
            mnt.mkdir()
            mnt.chmod(0o555)
        run = mnt / "run"
    elif kind == "output-disk-full":
        if not _mount_tmpfs(mnt, "size=32k"):
            pytest.skip("a full disk is simulated with a tiny tmpfs, which needs root (the size-limit case runs)")
        run = mnt / "run"
    else:
        import resource

        run = tmp_path / "run"
        preexec = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (16000, 16000))  # noqa: E731
    try:
        if kind != "output-read-only":
            run.mkdir()
            (run / "earlier.txt").write_text("an artifact from an earlier run")
        args = [*EDGEKD, *_fill(_build("--no-search"), bad, run)]
        r = subprocess.run(args, capture_output=True, text=True, timeout=900, preexec_fn=preexec)
        assert r.returncode == 2, r.stderr[-3000:]
        line = _error_line(r.stderr, r.stdout, r.returncode)
        assert re.search(r"not writable|Read-only|no space is left|No space left|is full|file size limit", line), line
        assert "Fix: " in line and re.search(r"writable location|free space", line), line
        if kind == "output-read-only":
            assert not run.exists()
            return
        assert not [p for p in run.rglob("*") if ".tmp" in p.name]
        assert (run / "earlier.txt").read_text() == "an artifact from an earlier run"
        done = _stamps_valid(run)
        # with room again (a bigger tmpfs / no limit) the same command resumes from the finished stages
        if kind == "output-disk-full":
            assert subprocess.run(["mount", "-o", "remount,size=4m", str(mnt)]).returncode == 0
        r2 = subprocess.run(args, capture_output=True, text=True, timeout=900)
        assert r2.returncode == 0, r2.stderr[-3000:]
        reused = json.loads((run / "report.json").read_text())["stages"]["reused"]
        assert set(done) <= set(reused) and done, (done, reused)
    finally:
        if mnt.is_mount():
            _umount(mnt)


# ------------------------------------------------------------------ Ctrl-C at each stage of a build

INTERRUPTS = [  # (stage, the progress line after which SIGINT is sent)
    ("data", "data: loading"),
    ("teacher", "teacher: preparing"),
    ("search", "search: probing"),
    ("distill", "epoch 1/2"),
    ("export", "export: started"),
    ("quantize", "quantize: started"),
    ("bench", "bench: started"),
    ("ops-profile", "stages: "),
    ("report", "smoke bundle: "),
]


@pytest.fixture(scope="module")
def interrupted_run(bad: Bad) -> Path:
    run = bad.root / "interrupted"
    run.mkdir()
    (run / "earlier.txt").write_text("an artifact from an earlier run")
    return run


def _interrupt(args: list[str], marker: str) -> tuple[int, str]:
    # SIGINT's default action restored in the child: a test run started in the background of a non-interactive
    # shell inherits SIGINT ignored, and so would the build
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground process group
            break
    rest = proc.communicate(timeout=300)[1]
    return proc.returncode, "".join(seen) + rest


@pytest.mark.parametrize("stage, marker", INTERRUPTS, ids=[s for s, _ in INTERRUPTS])
def test_ctrl_c(stage: str, marker: str, bad: Bad, interrupted_run: Path) -> None:
    """Each interrupt resumes where the previous one stopped (one shared run dir): Ctrl-C at every stage."""
    run = interrupted_run
    args = [*EDGEKD, *_fill(_build("--epochs", "2", "--bench-runs", "30"), bad, run)]
    rc, err = _interrupt(args, marker)
    if rc == 0 and stage == "report":  # the signal can land after the last write: then the run is complete
        assert subprocess.run([*EDGEKD, "verify", str(run)], capture_output=True).returncode == 0
        return
    assert rc == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("edgekd: ")]
    assert lines == ["edgekd: interrupted (Ctrl-C): finished stages and artifacts are kept, partial files were "
                     "removed. Fix: re-run the same command to resume"], err[-2000:]
    assert not [str(p) for p in run.rglob("*") if ".tmp" in p.name]
    assert (run / "earlier.txt").read_text() == "an artifact from an earlier run"
    _stamps_valid(run)
    if stage == INTERRUPTS[-1][0]:  # after the last one the same command finishes, reusing what was done
        r = subprocess.run(args, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        assert json.loads((run / "report.json").read_text())["stages"]["reused"]
        assert subprocess.run([*EDGEKD, "verify", str(run)], capture_output=True).returncode == 0


# ------------------------------------------------------------------ the README lists the catalogue

def test_readme_lists_the_catalogue() -> None:
    readme = (REPO / "README.md").read_text()
    ids = [c.id for c in CASES] + OUTPUT_CASES + [f"ctrl-c-{s}" for s, _ in INTERRUPTS]
    missing = [i for i in ids if f"`{i}`" not in readme]
    assert not missing, missing
    assert f"{len(ids)} cases" in readme
