"""Students seeded by pruning the teacher (edgekd.distill.seeding) and the plan that trains them first."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekd.data import load_dataset
from edgekd.distill.config import DistillConfig
from edgekd.distill.methods import MethodContext
from edgekd.distill.seeding import _reestimate_batchnorm, check, not_applicable, seed_from_teacher
from edgekd.errors import ConfigError
from edgekd.models.students import StudentSpec, build_student
from edgekd.models.teachers import torch_teacher
from edgekd.search import CandidateCost, decide
from edgekd.targets import Budget

SHAPE = (1, 12, 12)


def _model(family: str, width: float, depth: int, shape=SHAPE, classes: int = 5):
    torch.manual_seed(0)
    return build_student(StudentSpec(family, width, depth, shape, classes))


def _inputs(n: int = 256, shape=SHAPE) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, *shape)).astype(np.float32)


def test_which_students_the_teacher_can_seed_and_why_not():
    teacher = _model("convnet", 2, 2)
    assert check(_model("convnet", 1, 2), teacher).seeded
    assert check(_model("convnet", 0.5, 2), teacher).seeded
    other_depth = check(_model("convnet", 1, 1), teacher)
    assert not other_depth.seeded and "another depth or family" in other_depth.detail
    same = check(_model("convnet", 2, 2), teacher)
    assert not same.seeded and "own size" in same.detail
    wider = check(_model("convnet", 4, 2), teacher)
    assert not wider.seeded and "wider than the teacher" in wider.detail
    residual = check(_model("mobilenetv2", 0.5, 1, (3, 32, 32)), _model("mobilenetv2", 1, 1, (3, 32, 32)))
    assert not residual.seeded and "not a plain Sequential chain" in residual.detail
    assert check(_model("mobilenet", 0.5, 2), _model("mobilenet", 1, 2)).seeded  # depthwise: channels follow
    assert check(_model("mlp", 0.5, 2, (20,)), _model("mlp", 2, 2, (20,))).seeded
    flat = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 10 * 10, 5))
    wide = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 10 * 10, 5))
    before = {k: v.clone() for k, v in flat.state_dict().items()}
    seeding = seed_from_teacher(flat, wide, _inputs())
    assert not seeding.seeded and "reads 400 inputs" in seeding.detail  # a Linear over a flattened map
    assert all(torch.equal(before[k], v) for k, v in flat.state_dict().items())  # nothing half-copied


def test_pruning_keeps_the_active_channels_so_a_teacher_with_dead_ones_is_reproduced_exactly():
    """Half of every hidden layer's channels output exactly 0 (BatchNorm scale and shift 0): the student of half the
    width keeps the live ones and, with BatchNorm re-estimated on the same samples, computes the teacher's logits."""
    teacher, x = _model("convnet", 2, 2), _inputs()
    with torch.no_grad():
        for m in teacher.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                dead = torch.arange(m.num_features) % 2 == 1
                m.weight[dead] = 0.0
                m.bias[dead] = 0.0
    _reestimate_batchnorm(teacher, x)
    teacher.eval()
    student = _model("convnet", 1, 2)
    seeding = seed_from_teacher(student, teacher, x)
    assert seeding.seeded and "channels kept" in seeding.detail
    student.eval()
    first = student.stage1[0][0].weight
    assert torch.equal(first, teacher.stage1[0][0].weight[::2])  # the even (live) channels, in order
    with torch.no_grad():
        xt = torch.from_numpy(x)
        assert torch.allclose(student(xt), teacher(xt), atol=1e-4)
    again = _model("convnet", 1, 2)
    seed_from_teacher(again, teacher, x)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), student.state_dict().values()))


def test_the_method_context_seeds_records_and_refuses_as_asked():
    data = load_dataset("digits", seed=0)
    spec = StudentSpec("convnet", 0.5, 2, data.input_shape, data.num_classes)
    teacher = torch_teacher("t", _model("convnet", 1, 2, data.input_shape, data.num_classes))
    ctx = MethodContext(data, spec, DistillConfig(epochs=1), teacher=teacher)
    ctx.student(seeded=True)
    assert ctx.seeding.seeded and ctx.seeding.describe().startswith("pruned from the teacher")
    plain = MethodContext(data, spec, DistillConfig(epochs=1, init="random"), teacher=teacher)
    model = plain.student(seeded=True)
    assert not plain.seeding.seeded and plain.seeding.describe() == "random weights (--init random)"
    torch.manual_seed(0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), build_student(spec).state_dict().values()))
    deeper = StudentSpec("convnet", 0.5, 1, data.input_shape, data.num_classes)
    with pytest.raises(ConfigError, match="--init teacher: the student cannot be pruned"):
        MethodContext(data, deeper, DistillConfig(epochs=1, init="teacher"), teacher=teacher).student(seeded=True)
    assert not_applicable(DistillConfig(method="mutual"), teacher, data) == "method mutual starts from random weights"
    with pytest.raises(ConfigError, match="unknown initialisation"):
        DistillConfig(init="pretrained")


def _cost(name, macs, train_s, seeded=False):
    return CandidateCost(name, 1.0, 1, 10, macs, 0.01, 10.0, 0.01, train_s, seeded=seeded)


def test_the_plan_trains_the_seeded_candidates_first_within_the_time_budget():
    costs = [_cost("small", 100, 10), _cost("seeded", 400, 60, seeded=True), _cost("mid", 500, 50),
             _cost("big", 900, 90)]
    plan = {c.name: c for c in decide(costs, Budget(), None, 2, 120.0)}
    assert {n for n, c in plan.items() if c.decision == "train"} == {"seeded", "mid"}
    assert "time-budget" in plan["big"].reasons[0] and "max-candidates 2" in plan["small"].reasons[0]
    unseeded = {c.name: c for c in decide([_cost(c.name, c.macs, c.est_train_s) for c in costs], Budget(), None, 2,
                                          120.0)}
    assert {n for n, c in unseeded.items() if c.decision == "train"} == {"big", "small"}  # the largest first
