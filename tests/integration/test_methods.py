"""Every distillation method end to end on tiny data (digits, tiny students, a few epochs).

Real components throughout: a real (small) trained teacher, the real trainer, real ONNX export and int8
quantization for QAT, real torchrun for DDP.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.data import load_dataset
from edgekd.distill.config import DistillConfig
from edgekd.distill.methods import METHODS, MethodContext
from edgekd.distill.trainer import evaluate, train
from edgekd.errors import ConfigError, TeacherError
from edgekd.models.students import StudentSpec, build_student
from edgekd.models.teachers import torch_teacher

from ..conftest import EDGEKD

FAST = dict(epochs=4, batch_size=32, lr=2e-2, patience=4)


@pytest.fixture(scope="module")
def digits_data():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def teacher(digits_data):
    torch.manual_seed(0)
    m = build_student(StudentSpec("convnet", 0.5, 1, digits_data.input_shape, digits_data.num_classes))
    train(m, digits_data, DistillConfig(loss="ce", alpha=0.0, epochs=6, batch_size=32, lr=1e-2, patience=6))
    t = torch_teacher("tiny-teacher", m)
    t.outputs = "logits"
    return t


@pytest.fixture(scope="module")
def teacher_file(teacher, tmp_path_factory):
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    torch.jit.save(torch.jit.script(teacher.module), str(path))
    return path


def _run(data, teacher, method, student="test_convnet", device=None, **over):
    spec = StudentSpec(student, 1.0, 1, data.input_shape, data.num_classes)
    cfg = DistillConfig(method=method, **{**FAST, **over})
    msgs: list[str] = []
    res = METHODS.get(method).run(MethodContext(data, spec, cfg, teacher=teacher, progress=msgs.append,
                                                device=device))
    return res, evaluate(res.model, data.x_test, data.y_test), msgs


def test_teacher_is_good(teacher, digits_data):
    assert evaluate(teacher.module, digits_data.x_test, digits_data.y_test) > 0.85


@pytest.mark.parametrize("loss", ["dkd", "lskd", "dkd_ls"])
def test_logit_losses_train_a_student(digits_data, teacher, loss):
    _res, acc, _ = _run(digits_data, teacher, "kd", loss=loss, temperature=4.0)
    assert acc > 0.4  # chance is 0.1


def test_kd_with_mixup_trains_a_student(digits_data, teacher):
    _res, acc, _ = _run(digits_data, teacher, "kd", augment="mixup")
    assert acc > 0.4  # chance is 0.1


@pytest.mark.parametrize("feature_loss", ["mse", "cosine", "at"])
def test_feature_method_pairs_layers_automatically(digits_data, teacher, feature_loss):
    _res, acc, msgs = _run(digits_data, teacher, "feature", feature_loss=feature_loss, hint_weight=0.1)
    assert any("auto, by spatial size): stage1:stage1, stage2:stage2" in m for m in msgs), msgs  # 8x8, 4x4
    assert acc > 0.3


def test_feature_method_refuses_a_teacher_without_layers(digits_data, teacher):
    onnx_like = replace(teacher, module=None, kind="onnx")
    with pytest.raises(ConfigError, match="PyTorch teacher"):
        _run(digits_data, onnx_like, "feature")


def test_qat_student_is_plain_float_and_its_int8_export_keeps_accuracy(digits_data, teacher, tmp_path):
    from edgekd.stages import export_student, quantize_student

    res, acc, _ = _run(digits_data, teacher, "qat")
    fresh = build_student(StudentSpec("test_convnet", 1.0, 1, digits_data.input_shape, 10))
    assert set(res.model.state_dict()) == set(fresh.state_dict())  # fake quantizers removed
    assert not res.model._forward_pre_hooks
    assert acc > 0.4
    fp32 = export_student(res.model, digits_data, tmp_path / "m.onnx")
    q = quantize_student(fp32, digits_data, tmp_path / "m_int8.onnx")
    assert q.accuracy > acc - 0.05


def test_multi_teacher_mixes_torch_and_onnx_teachers(digits_data, teacher, tmp_path):
    from edgekd.models.teachers import load_teacher
    from edgekd.stages import export_student

    export_student(teacher.module, digits_data, tmp_path / "t.onnx")
    second = load_teacher(tmp_path / "t.onnx")
    spec = StudentSpec("test_convnet", 1.0, 1, digits_data.input_shape, 10)
    for weighting in ("fixed", "confidence"):
        cfg = DistillConfig(method="multi-teacher", teacher_weighting=weighting, **FAST)
        res = METHODS.get("multi-teacher").run(MethodContext(digits_data, spec, cfg, teachers=(teacher, second)))
        assert evaluate(res.model, digits_data.x_test, digits_data.y_test) > 0.4


def _permuted_teacher(teacher, perm):
    import copy

    m = copy.deepcopy(teacher.module)
    with torch.no_grad():
        m.head.weight.copy_(m.head.weight[perm])
        m.head.bias.copy_(m.head.bias[perm])
    t = torch_teacher("permuted", m)
    t.outputs = "logits"
    return t


def test_multi_teacher_refuses_other_class_order_unless_mapped(digits_data, teacher):
    perm = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8]  # output j of the permuted teacher scores class perm[j]
    bad = _permuted_teacher(teacher, perm)
    spec = StudentSpec("test_convnet", 1.0, 1, digits_data.input_shape, 10)
    cfg = DistillConfig(method="multi-teacher", **{**FAST, "epochs": 1})
    with pytest.raises(TeacherError, match=r"another order.*--teacher-map N=1,0,3,2,5,4,7,6,9,8"):
        METHODS.get("multi-teacher").run(MethodContext(digits_data, spec, cfg, teachers=(teacher, bad)))
    res = METHODS.get("multi-teacher").run(MethodContext(digits_data, spec, cfg, teachers=(teacher, bad),
                                                         class_maps={2: tuple(perm)}))
    assert res.model is not None


def test_mutual_trains_peers_without_a_teacher(digits_data):
    res, acc, msgs = _run(digits_data, None, "mutual", peers=2)
    assert any("keeping peer" in m for m in msgs)
    assert len(res.history[-1]["peer_val_accuracy"]) == 2
    assert acc > 0.4


def test_born_again_distils_each_generation_from_the_previous(digits_data):
    _res, acc, msgs = _run(digits_data, None, "born-again", generations=1)
    assert any("generation 1 (teacher: generation 0" in m for m in msgs)
    assert acc > 0.4


def test_self_checkpoint_continues_from_and_distils_from_an_earlier_checkpoint(digits_data, tmp_path):
    from edgekd.stages import checkpoint_teacher, distill_student

    spec = StudentSpec("test_convnet", 1.0, 1, digits_data.input_shape, 10)
    first = distill_student(digits_data, spec, DistillConfig(loss="ce", alpha=0.0, **FAST), tmp_path / "g0")
    earlier = checkpoint_teacher(tmp_path / "g0" / "student.json")
    res, acc, _ = _run(digits_data, earlier, "self-ckpt", epochs=1)
    assert acc > first.accuracy_fp32 - 0.1  # it starts from the checkpoint, not from scratch
    other = StudentSpec("test_convnet", 2.0, 1, digits_data.input_shape, 10)
    with pytest.raises(ConfigError, match="same student"):
        METHODS.get("self-ckpt").run(MethodContext(digits_data, other, DistillConfig(method="self-ckpt"),
                                                   teacher=earlier))


def test_data_free_reaches_above_chance_without_real_training_data(digits_data, teacher):
    _res, acc, msgs = _run(digits_data, teacher, "data-free", synthetic_samples=512, inversion_steps=40,
                           epochs=6, patience=6)
    assert any("no real training data" in m for m in msgs)
    assert acc > 0.2  # chance 0.1; trained on synthetic inputs only


def test_cross_modal_student_sees_low_resolution_teacher_sees_full(teacher):
    paired = load_dataset("paired:lowres:digits", seed=0)
    assert paired.input_shape == (1, 4, 4) and paired.teacher_view.input_shape == (1, 8, 8)
    assert np.array_equal(paired.y_train, paired.teacher_view.y_train)
    res, acc, _ = _run(paired, teacher, "cross-modal", student="convnet")
    assert acc > 0.3


def test_cross_modal_needs_paired_data(digits_data, teacher):
    with pytest.raises(ConfigError, match="paired"):
        _run(digits_data, teacher, "cross-modal")


def test_cli_methods_end_to_end(teacher_file, tmp_path, cli_env):
    base = [*EDGEKD, "distill", "--data", "digits", "--student", "test_convnet", "--width", "1", "--epochs", "2",
            "--batch-size", "32", "--lr", "0.02", "--teacher", str(teacher_file)]
    out = subprocess.run([*base, "--method", "qat", "--loss", "dkd", "-T", "4", "--kd-warmup-epochs", "1",
                          "--out", str(tmp_path / "a")], capture_output=True, text=True, env=cli_env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "(qat)" in out.stdout
    rec = json.loads((tmp_path / "a" / "student.json").read_text())
    assert rec["config"]["distill"]["method"] == "qat" and rec["config"]["distill"]["loss"] == "dkd"
    assert rec["config"]["distill"]["kd_warmup_epochs"] == 1
    mix = subprocess.run([*base, "--augment", "mixup", "--out", str(tmp_path / "m")], capture_output=True, text=True,
                         env=cli_env, timeout=300)
    assert mix.returncode == 0, mix.stderr
    assert json.loads((tmp_path / "m" / "student.json").read_text())["config"]["distill"]["augment"] == "mixup"
    unl = subprocess.run([*base, "--limit", "200", "--unlabeled", "rest", "--out", str(tmp_path / "u")],
                         capture_output=True, text=True, env=cli_env, timeout=300)
    assert unl.returncode == 0, unl.stderr
    assert "training samples are unlabelled; the teacher's top class stands in" in unl.stdout + unl.stderr
    rec = json.loads((tmp_path / "u" / "student.json").read_text())["config"]
    full = len(load_dataset("digits", seed=0).x_train)
    assert rec["train_samples"] == full and rec["unlabeled_samples"] == full - 200
    clash = subprocess.run([*base, "--augment", "mixup", "--loss", "dkd", "--out", str(tmp_path / "c")],
                           capture_output=True, text=True, env=cli_env, timeout=120)
    assert clash.returncode == 2 and "needs one label per sample" in clash.stderr
    assert len(clash.stderr.strip().splitlines()) == 1 and not (tmp_path / "c").exists()
    bad = subprocess.run([*base, "--method", "nope", "--out", str(tmp_path / "b")], capture_output=True, text=True,
                         env=cli_env, timeout=120)
    assert bad.returncode == 2 and "unknown distillation method 'nope'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_cli_data_none_is_data_free_and_says_so(tmp_path, cli_env):
    out = subprocess.run([*EDGEKD, "distill", "--data", "none", "--student", "test_convnet", "--epochs", "1",
                          "--synthetic-samples", "32", "--inversion-steps", "2", "--out", str(tmp_path / "df")],
                         capture_output=True, text=True, env=cli_env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "DATA-FREE" in out.stderr and "no real test data" in out.stdout


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU and a CUDA build of torch")


@needs_cuda
@pytest.mark.parametrize("method,over,floor", [
    ("kd", {}, 0.4), ("kd", {"augment": "mixup"}, 0.4), ("feature", {"hint_weight": 0.1}, 0.3), ("qat", {}, 0.4),
    ("mutual", {}, 0.4), ("data-free", {"synthetic_samples": 512, "inversion_steps": 40, "epochs": 6}, 0.2)])
def test_methods_train_on_cuda_and_hand_back_cpu_models(digits_data, teacher, method, over, floor):
    """--device cuda: every loop (trainer, hints, mixup's per-batch teacher, QAT calibration, mutual peers,
    DeepInversion) computes on the GPU; the student comes back on the CPU (for export) and so does the shared
    teacher, and it learns as on the CPU."""
    from edgekd.distill.device import device_of

    res, acc, _ = _run(digits_data, teacher, method, device=torch.device("cuda", 0), **over)
    assert device_of(res.model).type == "cpu" and device_of(teacher.module).type == "cpu"
    assert acc > floor


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs (one per rank, NCCL)")
def test_torchrun_nccl_two_ranks_stay_in_sync(teacher_file, tmp_path, cli_env):
    _torchrun_in_sync(teacher_file, tmp_path, cli_env, "cuda")


def test_torchrun_two_ranks_stay_in_sync(teacher_file, tmp_path, cli_env):
    _torchrun_in_sync(teacher_file, tmp_path, cli_env, "cpu")


def _torchrun_in_sync(teacher_file, tmp_path, cli_env, device):
    torchrun = Path(sys.executable).parent / "torchrun"
    script = Path(__file__).with_name("ddp_probe.py")
    out = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(script),
                          str(teacher_file), str(tmp_path), device], capture_output=True, text=True, env=cli_env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["digests"] == ranks[1]["digests"]  # identical weights after every epoch
    assert len(ranks[0]["digests"]) == 2
    assert ranks[0]["losses"] != ranks[1]["losses"]  # each rank trained on its own half of every batch
    assert (tmp_path / "out" / "student.json").is_file() and not (tmp_path / "out1").exists()
