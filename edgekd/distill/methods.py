"""Distillation methods, one registry: how a student is trained (``--method``).

A method takes a ``MethodContext`` (data, student spec, config, teacher(s), progress) and returns the
trainer's ``TrainResult``. Each entry's docstring gives its formula and paper; the losses themselves are
in ``losses.py`` and the larger methods in their own modules (qat, multi_teacher, mutual, data_free).

| method        | teacher                | what                                                        |
|---------------|------------------------|-------------------------------------------------------------|
| kd            | any (or none: --loss ce) | one logit loss (--loss hinton/dkd/lskd/dkd_ls) + optional hints |
| feature       | torch                  | KD + feature losses (mse/cosine/at), pairs by name or auto    |
| qat           | any (or none)          | KD through simulated int8 (fake-quantized student)            |
| multi-teacher | several, any kind      | mixture of teachers' soft targets (fixed / confidence)        |
| mutual        | none                   | deep mutual learning of --peers students                      |
| born-again    | none (itself)          | --generations, each distilled from the previous               |
| self-ckpt     | an earlier checkpoint of this student | continue from it, distilled from it            |
| data-free     | torch with BatchNorm   | DeepInversion inputs, no real training data                   |
| cross-modal   | any, on its own view   | paired data: teacher and student see different inputs        |
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import ConfigError
from ..registry import Registry
from .names import METHODS as METHOD_NAMES
from .names import MethodInfo, kd_loss

if TYPE_CHECKING:
    from ..models.teachers import Teacher
    from ..data import Dataset
    from ..models.students import StudentSpec
    from .config import DistillConfig
    from .seeding import Seeding


@dataclass
class MethodContext:
    data: "Dataset"  # the student's Dataset (for cross-modal: the student view; ``data.teacher_view`` the teacher's)
    spec: "StudentSpec"
    config: "DistillConfig"
    teacher: "Teacher | None" = None  # the teacher (for self-ckpt: the earlier checkpoint)
    teacher_logits: np.ndarray | None = None  # the teacher's logits on data.x_train, when already computed
    teachers: tuple[Any, ...] = ()  # multi-teacher: every teacher, in --teacher order
    class_maps: dict[int, tuple[int, ...]] = field(default_factory=dict)  # multi-teacher: 1-based position -> map
    progress: Callable[[str], None] = lambda _m: None
    shard: tuple[int, int] = (0, 1)  # (rank, world) under torchrun
    wrap: Callable[[Any], Any] = lambda m: m  # DDP wrapper under torchrun
    device: Any = None  # torch.device the students train on (None: the CPU); models come back on the CPU
    seeding: "Seeding | None" = None  # how the student's weights started (set by ``student(seeded=True)``)

    def student(self, seed_offset: int = 0, seeded: bool = False) -> Any:
        """A new student; ``seeded``: pruned from the teacher where ``config.init`` and the models allow
        (``distill.seeding``), the outcome kept in ``self.seeding``."""
        import torch

        from ..models.students import build_student

        torch.manual_seed(self.config.seed + seed_offset)
        model = build_student(self.spec)
        if seeded:
            self.seeding = self._seed(model)
            if self.seeding.seeded:
                self.progress(f"initialised: {self.seeding.detail}")
        return model

    def _seed(self, model: Any) -> "Seeding":
        from .seeding import Seeding, not_applicable, seed_from_teacher

        why = not_applicable(self.config, self.teacher, self.data)
        outcome = Seeding(False, why) if why else seed_from_teacher(model, self.teacher.module, self.data.x_train)
        if not outcome.seeded and self.config.init == "teacher":
            raise ConfigError(f"--init teacher: the student cannot be pruned from the teacher: {outcome.detail}",
                              "use --init auto (random weights where the teacher cannot seed the student)")
        return outcome

    def logits(self) -> np.ndarray:
        if self.teacher_logits is None:
            if self.teacher is None:
                raise ConfigError(f"method {self.config.method!r} needs a teacher", "pass --teacher")
            self.teacher_logits = self.teacher.logits((self.data.teacher_view or self.data).x_train)
        return self.teacher_logits

    def train(self, model: Any, config: "DistillConfig | None" = None, **kw: Any) -> Any:
        from .trainer import train

        kw.setdefault("progress", self.progress)
        wrapped = self.wrap(model)
        result = train(wrapped, kw.pop("data", self.data), replace(config or self.config, method="kd"),
                       shard=self.shard, device=self.device, **kw)
        result.model = model
        return result


@dataclass(frozen=True)
class Method:
    run: Callable[[MethodContext], Any]
    info: MethodInfo  # the torch-free metadata (``names.METHODS``): needs a teacher, precomputes its outputs, ...

    @property
    def needs_teacher(self) -> str:
        return self.info.needs_teacher

    @property
    def summary(self) -> str:
        return self.info.summary


METHODS: Registry[Method] = Registry("distillation method")


def method(name: str):
    def deco(fn: Callable[[MethodContext], Any]) -> Callable[[MethodContext], Any]:
        METHODS.add(name, Method(fn, METHOD_NAMES[name]))
        return fn

    return deco


def _kd_logits(ctx: MethodContext) -> np.ndarray | None:
    return ctx.logits() if ctx.config.uses_kd_loss else None


@method("kd")
def run_kd(ctx: MethodContext) -> Any:
    """Logit distillation with ``--loss`` (hinton, dkd, lskd, dkd_ls; formulas in ``losses.py``), or the
    student alone with ``--loss ce``; ``--hint`` pairs add feature losses."""
    module = ctx.teacher.module if ctx.teacher is not None else None
    z = ctx.teacher_logits
    per_batch = ctx.config.augment != "none"  # every batch is a new view: the teacher runs on it
    if z is None and ctx.config.uses_kd_loss and module is None and not per_batch:
        z = ctx.logits()  # a non-torch teacher: its logits once; a torch one runs per batch in the trainer
    fn = ctx.teacher.logits if ctx.teacher is not None else None
    return ctx.train(ctx.student(seeded=True), teacher_logits=z, teacher_module=module, teacher_fn=fn)


@method("feature")
def run_feature(ctx: MethodContext) -> Any:
    """L = L_logit + β · Σ_pairs L_feat(r(f_s), f_t), L_feat ∈ {mse (FitNets), cosine, at (attention transfer)}.

    Pairs come from ``--hint T:S`` or, by default, ``--hint auto`` (last layers of each spatial size both
    models share); r is a 1×1-conv/linear projection trained with the student (none for ``at``).
    Papers: Romero et al., FitNets, ICLR 2015 (arXiv:1412.6550); Zagoruyko & Komodakis, Attention Transfer,
    ICLR 2017 (arXiv:1612.03928).
    """
    if ctx.teacher is None or ctx.teacher.module is None:
        raise ConfigError("feature distillation reads the teacher's layers and needs a PyTorch teacher",
                          "use a .pt (TorchScript or state_dict) teacher or the built-in one")
    config = ctx.config if ctx.config.hints else replace(ctx.config, hints=(("auto", "auto"),))
    return ctx.train(ctx.student(seeded=True), config, teacher_logits=_kd_logits(ctx),
                     teacher_module=ctx.teacher.module)


@method("qat")
def run_qat(ctx: MethodContext) -> Any:
    """KD (``--loss``) with a fake-quantized student: weights int8 per channel (``--qat-weights per-tensor``: one
    scale per weight, on the BN-folded weight), activations int8 per tensor,
    straight-through gradients (``qat.py``); after ``--qat-bn-epochs`` BatchNorm is frozen to its running
    statistics, so the last epochs train the deployed forward; the returned student is float, trained to survive int8.
    Papers: Jacob et al., CVPR 2018 (arXiv:1712.05877); Polino et al., ICLR 2018 (arXiv:1802.05668)."""
    from .qat import FakeQuantized

    from ..quantize.ort_int8 import OrtInt8Config

    model = ctx.student(seeded=True)
    fq = FakeQuantized(model, weights=ctx.config.qat_weights)
    n = min(OrtInt8Config().calibration_samples, len(ctx.data.x_train))
    calib = ctx.data.calibration_samples(n, seed=0)  # the samples the int8 export calibrates on

    def recalibrate(epoch: int, _student: Any) -> None:
        if epoch == ctx.config.qat_bn_frozen_after:
            fq.freeze_batchnorm()
            ctx.progress(f"qat: BatchNorm statistics frozen after epoch {epoch} (--qat-bn-epochs)")
        fq.calibrate(calib)

    try:
        result = ctx.train(model, teacher_logits=_kd_logits(ctx), on_epoch_end=recalibrate)
    finally:
        fq.remove()
    result.model = model
    model.eval()
    return result


@method("multi-teacher")
def run_multi_teacher(ctx: MethodContext) -> Any:
    """Soft target p = Σ_i w_i(x) · softmax(z_i/T), fed to ``--loss`` as logits T·log p (``multi_teacher.py``).
    Papers: You et al., KDD 2017; confidence weights after Zhang et al., ICASSP 2022 (arXiv:2201.00007)."""
    from .multi_teacher import teacher_logits_for

    teachers = ctx.teachers or ((ctx.teacher,) if ctx.teacher is not None else ())
    if len(teachers) < 2:
        raise ConfigError(f"multi-teacher distillation needs at least 2 teachers, got {len(teachers)}",
                          "repeat --teacher (e.g. --teacher a.onnx --teacher b.pt)")
    if not ctx.config.uses_kd_loss:
        raise ConfigError("multi-teacher with --loss ce would ignore the teachers", "use --loss hinton (or dkd, lskd)")
    z = teacher_logits_for(teachers, ctx.data, ctx.config, ctx.class_maps, ctx.progress)
    return ctx.train(ctx.student(), teacher_logits=z)


@method("mutual")
def run_mutual(ctx: MethodContext) -> Any:
    """L_k = CE(z_k, y) + mean_{j≠k} T²·KL(softmax(z_j/T) ‖ softmax(z_k/T)) (``mutual.py``).
    Paper: Zhang, Xiang, Hospedales, Lu, "Deep Mutual Learning", CVPR 2018 (arXiv:1706.00384)."""
    from .mutual import train_mutual

    return train_mutual(lambda: ctx.student(), ctx.data, ctx.config, ctx.progress, device=ctx.device)


@method("born-again")
def run_born_again(ctx: MethodContext) -> Any:
    """Generation 0 is trained alone (CE); generation g ≥ 1, same architecture, fresh initialisation, minimises
    ``--loss`` (hinton unless given) against generation g−1's logits; the last generation is returned.
    Paper: T. Furlanello, Z. C. Lipton, M. Tschannen, L. Itti, A. Anandkumar, "Born-Again Neural Networks",
    ICML 2018 (arXiv:1805.04770)."""
    from ..models.teachers import torch_teacher

    cfg = ctx.config
    ctx.progress(f"born-again: generation 0 (alone), then {cfg.generations} distilled generation(s)")
    result = ctx.train(ctx.student(), replace(cfg, loss="ce", hints=()))
    loss = kd_loss(cfg.loss)
    for g in range(1, cfg.generations + 1):
        prev = torch_teacher(f"generation {g - 1}", result.model)
        z = prev.logits(ctx.data.x_train)
        ctx.progress(f"born-again: generation {g} (teacher: generation {g - 1}, val acc {result.best_val_accuracy:.4f})")
        result = ctx.train(ctx.student(seed_offset=g), replace(cfg, loss=loss, hints=()), teacher_logits=z)
    return result


@method("self-ckpt")
def run_self_checkpoint(ctx: MethodContext) -> Any:
    """The student starts from its own earlier checkpoint θ₀ (``--teacher old/student.json``) and trains on
    L = ``--loss``(z_θ, z_θ₀, y): the frozen earlier self is the teacher, so further training is regularised
    towards what it already knew (self-distillation from a snapshot: C. Yang, L. Xie, C. Su, A. L. Yuille,
    "Snapshot Distillation: Teacher-Student Optimization in One Generation", CVPR 2019, arXiv:1812.00123)."""
    import copy

    if ctx.teacher is None or ctx.teacher.module is None or ctx.teacher.kind != "checkpoint":
        raise ConfigError("self-ckpt distils a student from its own earlier checkpoint",
                          "pass --teacher DIR/student.json written by `edgekd distill` for this student size")
    was = getattr(ctx.teacher, "spec", {}) or {}
    if (was.get("family"), was.get("width"), was.get("depth")) != (ctx.spec.family, ctx.spec.width, ctx.spec.depth):
        raise ConfigError(f"self-ckpt needs a checkpoint of the same student: {ctx.teacher.name} is "
                          f"{was.get('family')} w{was.get('width')} d{was.get('depth')}, the student is {ctx.spec.name}",
                          "pass the checkpoint of this student size, or use --method born-again / kd")
    model = copy.deepcopy(ctx.teacher.module)
    for p in model.parameters():
        p.requires_grad_(True)
    loss = kd_loss(ctx.config.loss)
    return ctx.train(model, replace(ctx.config, loss=loss, hints=()), teacher_logits=ctx.logits())


@method("data-free")
def run_data_free(ctx: MethodContext) -> Any:
    """Synthetic inputs x* = argmin_x CE(f_t(x), y) + a_bn·Σ_l(‖μ_l(x) − μ̂_l‖ + ‖σ²_l(x) − σ̂²_l‖) + priors,
    then ``--loss`` against f_t(x*) (``data_free.py``). No real sample is used for training or validation;
    ``ctx.data`` only gives the input shape, class count and the test split the accuracy is reported on.
    Paper: Yin et al., "Dreaming to Distill", CVPR 2020 (arXiv:1912.08086)."""
    from .data_free import synthetic_dataset

    if ctx.teacher is None or ctx.teacher.module is None:
        raise ConfigError("data-free distillation needs a PyTorch teacher (gradients flow through it)",
                          "use the built-in teacher or a .pt teacher with BatchNorm")
    ctx.progress("data-free: training on synthetic inputs only (no real training data is used)")
    real = ctx.data if len(getattr(ctx.data, "x_test", ())) else None
    synth = synthetic_dataset(ctx.teacher.module, ctx.spec.input_shape, ctx.spec.num_classes, ctx.config,
                              test=real, progress=ctx.progress, device=ctx.device)
    z = ctx.teacher.logits(synth.x_train)
    loss = kd_loss(ctx.config.loss)
    return ctx.train(ctx.student(), replace(ctx.config, loss=loss, hints=()), data=synth, teacher_logits=z)


@method("cross-modal")
def run_cross_modal(ctx: MethodContext) -> Any:
    """``--loss`` between the student on its view x_s and the teacher on the paired view x_t of the same
    sample: L = α·T²·KL(softmax(f_t(x_t)/T) ‖ softmax(f_s(x_s)/T)) + (1−α)·CE (for hinton).
    Needs a ``paired:`` data spec. Paper: S. Gupta, J. Hoffman, J. Malik, "Cross Modal Distillation for
    Supervision Transfer", CVPR 2016 (arXiv:1507.00448)."""
    view = getattr(ctx.data, "teacher_view", None)
    if view is None:
        raise ConfigError("cross-modal distillation needs paired data", "use e.g. --data paired:lowres:fashion-mnist")
    if ctx.teacher is None:
        raise ConfigError("cross-modal distillation needs a teacher for the teacher's view", "pass --teacher")
    z = ctx.teacher_logits if ctx.teacher_logits is not None else ctx.teacher.logits(view.x_train)
    return ctx.train(ctx.student(), replace(ctx.config, hints=()), teacher_logits=z)
