"""Teacher loaders on real files of every supported format, and their failure modes."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from edgekd.errors import TeacherError
from edgekd.models.teachers import load_teacher
from edgekd.prepare import check_teacher_fits


class Net(torch.nn.Module):
    def __init__(self, classes: int = 10, softmax: bool = False) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, classes)
        self.softmax = softmax

    def forward(self, x):
        z = self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))
        return torch.softmax(z, -1) if self.softmax else z


@pytest.fixture
def x():
    return np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)


def _net(**kw):
    torch.manual_seed(0)
    return Net(**kw).eval()


def _ref(net, x):
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def test_torchscript(tmp_path, x):
    net = _net()
    path = tmp_path / "t.pt"
    torch.jit.save(torch.jit.trace(net, torch.from_numpy(x)), path)
    t = load_teacher(path)
    assert t.kind == "torch"
    np.testing.assert_allclose(t.logits(x), _ref(net, x), atol=1e-6)
    assert t.outputs == "logits"


def test_torch_export_pt2(tmp_path, x):
    net = _net()
    path = tmp_path / "t.pt2"
    torch.export.save(torch.export.export(net, (torch.from_numpy(x),)), path)
    np.testing.assert_allclose(load_teacher(path).logits(x), _ref(net, x), atol=1e-6)


def test_state_dict_with_arch(tmp_path, x, monkeypatch):
    (tmp_path / "mymodels.py").write_text(textwrap.dedent("""
        import torch
        from tests.unit.test_teachers import Net
        def make():
            return Net()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    net = _net()
    path = tmp_path / "sd.pt"
    torch.save(net.state_dict(), path)
    with pytest.raises(TeacherError, match="needs its architecture.*--teacher-arch"):
        load_teacher(path)
    t = load_teacher(path, arch="mymodels:make")
    np.testing.assert_allclose(t.logits(x), _ref(net, x), atol=1e-6)
    with pytest.raises(TeacherError, match="cannot be imported"):
        load_teacher(path, arch="nosuchmodule:make")


def test_onnx_teacher(tmp_path, x):
    from edgekd.export.onnx import export_onnx

    net = _net()
    path = tmp_path / "t.onnx"
    export_onnx(net, x, path)
    t = load_teacher(path)
    assert t.kind == "onnx"
    np.testing.assert_allclose(t.logits(x), _ref(net, x), atol=1e-5)


def test_tflite_teacher_nhwc(tmp_path, x):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((8, 8, 1)), tf.keras.layers.Conv2D(4, 3, padding="same"),
                                 tf.keras.layers.GlobalAveragePooling2D(), tf.keras.layers.Dense(10)])
    path = tmp_path / "t.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    t = load_teacher(path)
    assert t.kind == "tflite"
    ref = model(x.transpose(0, 2, 3, 1)).numpy()  # the loader feeds NCHW data to the NHWC model
    np.testing.assert_allclose(t.logits(x), ref, atol=1e-5)


def test_probability_teacher_is_detected_and_turned_into_log_probs(tmp_path, x):
    net = _net(softmax=True)
    path = tmp_path / "p.pt"
    torch.jit.save(torch.jit.trace(net, torch.from_numpy(x)), path)
    t = load_teacher(path)
    z = t.logits(x)
    assert t.outputs == "probs"
    logit_net = _net()
    ref = _ref(logit_net, x)
    # log-probabilities differ from logits by a per-row constant: same tempered softmax
    np.testing.assert_allclose(z - z.mean(1, keepdims=True), ref - ref.mean(1, keepdims=True), atol=1e-5)


def test_declared_logits_are_not_converted(tmp_path, x):
    net = _net(softmax=True)
    path = tmp_path / "p.pt"
    torch.jit.save(torch.jit.trace(net, torch.from_numpy(x)), path)
    t = load_teacher(path, outputs="logits")
    np.testing.assert_allclose(t.logits(x), _ref(net, x), atol=1e-6)


def test_truncated_and_corrupt_files(tmp_path, x):
    net = _net()
    good = tmp_path / "good.pt"
    torch.jit.save(torch.jit.trace(net, torch.from_numpy(x)), good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(TeacherError, match="truncated or not a PyTorch file"):
        load_teacher(cut)
    for suffix in (".onnx", ".tflite", ".pt2"):
        bad = tmp_path / f"bad{suffix}"
        bad.write_bytes(b"this is not a model" * 10)
        with pytest.raises(TeacherError, match="cannot be loaded|not a PyTorch"):
            load_teacher(bad)
    with pytest.raises(TeacherError, match="unknown format"):
        load_teacher(_touch(tmp_path / "m.h5"))
    with pytest.raises(TeacherError, match="does not exist"):
        load_teacher(tmp_path / "missing.pt")


def _touch(p):
    p.write_bytes(b"x")
    return p


def test_full_pickled_model_is_refused_without_running_it(tmp_path, x):
    path = tmp_path / "full.pt"
    torch.save(_net(), path)  # a pickled nn.Module, not weights
    with pytest.raises(TeacherError, match="pickled Python object"):
        load_teacher(path)


def test_class_count_mismatch(tmp_path, digits):
    net = _net(classes=3)
    path = tmp_path / "t.pt"
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 1, 8, 8)), path)
    with pytest.raises(TeacherError, match="outputs 3 classes but the data has 10"):
        check_teacher_fits(load_teacher(path), digits)


def test_input_shape_mismatch(tmp_path):
    from edgekd.data import load_dataset

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    path = tmp_path / "t.pt"
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 1, 28, 28)), path)
    with pytest.raises(TeacherError, match=r"failed on inputs of shape \(1, 8, 8\)"):
        check_teacher_fits(load_teacher(path), load_dataset("digits"))


def test_a_torch_teachers_channels_last_pass_gives_its_outputs_and_leaves_it_as_it_was():
    import numpy as np
    import torch

    from edgekd.models.students import StudentSpec, build_student
    from edgekd.models.teachers import torch_teacher

    torch.manual_seed(0)
    module = build_student(StudentSpec("convnet", 1.0, 2, (1, 12, 12), 4)).eval()
    teacher = torch_teacher("t", module)
    x = np.random.default_rng(0).standard_normal((600, 1, 12, 12)).astype(np.float32)
    plain, fast = teacher.logits(x), teacher.logits(x, fast=True)
    assert fast.shape == plain.shape == (600, 4) and np.allclose(fast, plain, atol=1e-4)
    assert all(p.is_contiguous() for p in module.parameters())  # per-batch uses see the module as it was

    class Flat(torch.nn.Module):  # view() on a channels-last tensor fails: the plain path takes over
        def forward(self, x):
            return x.view(len(x), -1)[:, :4]

    odd = torch_teacher("odd", Flat())
    y = np.random.default_rng(1).standard_normal((8, 3, 4, 4)).astype(np.float32)
    assert np.array_equal(odd.logits(y, fast=True), y.reshape(8, -1)[:, :4])
