"""The training loop: one readable function, top to bottom.

Seeded; AdamW or SGD with a cosine schedule; early stopping on validation accuracy (best weights are
restored); the teacher is frozen (eval mode, no gradients) and, without hints, never run here at all:
its logits on the training set are computed once by the caller and passed in (``teacher_logits``),
aligned with ``data.x_train``. With hints the teacher runs on each batch under ``no_grad`` to give
its intermediate features.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import ConfigError, TeacherError, TrainingError
from ..progress import EpochBar, eta_text
from .config import DistillConfig

if TYPE_CHECKING:
    from ..data import Dataset

Progress = Callable[[str], None]


@dataclass
class TrainResult:
    model: Any  # the student with its best-validation weights loaded
    best_val_accuracy: float
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)


def evaluate(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Top-1 accuracy of a torch model on numpy arrays (run on the device the model is on)."""
    import torch

    from .device import device_of

    from ..data.image_rows import inference_batch

    model.eval()
    dev = device_of(model)
    batch_size = inference_batch(tuple(x.shape[1:]), batch_size)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out = model(torch.from_numpy(x[i:i + batch_size]).to(dev))
            correct += int((out.argmax(dim=1).cpu().numpy() == y[i:i + batch_size]).sum())
    return correct / max(1, len(x))


def train(student: Any, data: "Dataset", config: DistillConfig, *, teacher_logits: np.ndarray | None = None,
          teacher_module: Any = None, progress: Progress | None = None, shard: tuple[int, int] = (0, 1),
          on_epoch_end: Callable[[int, Any], np.ndarray | None] | None = None, device: Any = None,
          teacher_fn: Callable[[np.ndarray], np.ndarray] | None = None) -> TrainResult:
    """Train ``student``; ``shard=(rank, world)`` trains rank's share of every batch (DDP: ``student`` is
    wrapped in DistributedDataParallel by the caller, the global batch stays ``config.batch_size``);
    ``on_epoch_end(epoch, student)`` may return new teacher logits for the next epochs (self-distillation).
    ``device`` (a torch.device, default the CPU): where the student, and a teacher run per batch, compute; the
    training arrays stay on the CPU and go over a batch at a time; the student comes back on the CPU.
    ``teacher_fn``: the teacher on a numpy batch (e.g. an ONNX teacher), for ``--augment crop-flip`` when there is
    no torch ``teacher_module``; the teacher sees ``data.teacher_view`` (its own input contract) when there is one."""
    import torch

    from ..data.image_rows import is_rows
    from .augment import crop_flip_theta, warp
    from .device import moved
    from .hints import HintMatcher
    from .losses import LOSSES, loss_kwargs, warmup_epochs, warmup_factor

    say = progress or (lambda _msg: None)
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    loss_fn = LOSSES.get(config.loss)
    loss_opts = loss_kwargs(loss_fn, config)
    _check_teacher_inputs(config, data, teacher_logits, teacher_module)

    lazy = data.is_lazy  # image folders: ImageRows read a batch at a time
    x_train = data.x_train if lazy else torch.from_numpy(data.x_train)
    y_train = torch.from_numpy(data.y_train.astype(np.int64))
    mix = config.augment == "mixup"  # function matching: the teacher labels each mixed batch as it is trained
    crop = config.augment == "crop-flip"  # one random crop per sample, the same for the teacher's view
    view = data.teacher_view  # the teacher's own inputs (size, normalisation, layout) for the same rows
    if crop and (len(data.input_shape) != 3 or data.kind != "image"):
        raise ConfigError(f"--augment crop-flip crops images, and {data.spec} has samples of shape {data.input_shape}",
                          "use --augment none for this data")
    if crop and config.uses_teacher and teacher_module is None and teacher_fn is None:
        raise ConfigError("--augment crop-flip runs the teacher on every cropped batch, and no teacher was given "
                          "to run", "pass --teacher, or use --augment none")
    if (lazy or view is not None) and config.hints:
        raise ConfigError("--hint reads teacher features on the student's own inputs; with image folders or a "
                          "teacher input contract the teacher sees other inputs", "drop --hint for this data")
    if mix and config.uses_teacher and teacher_module is None:
        raise ConfigError("--augment mixup runs the teacher on every mixed batch and needs a PyTorch teacher",
                          "use a .pt/.pt2 teacher or the built-in one, or --augment none")
    unlabeled = data.n_unlabeled > 0  # --unlabeled: the teacher's top class stands in for the label
    if unlabeled and mix:
        raise ConfigError("--augment mixup mixes labels, and some training samples have none (--unlabeled)",
                          "use --augment none with --unlabeled")
    if unlabeled and not (config.uses_teacher and config.uses_kd_loss):
        raise ConfigError(f"{data.n_unlabeled} training samples are unlabelled (--unlabeled) and loss "
                          f"{config.loss!r} has no teacher outputs to label them", "use a distillation loss "
                          "(e.g. --loss kd) or drop --unlabeled")
    if mix or crop:
        teacher_logits = None  # outputs on the unmixed / uncropped samples do not apply
    t_train = torch.from_numpy(teacher_logits.astype(np.float32)) if teacher_logits is not None else None

    hints = None
    if config.hints:  # teacher features are precomputed once when the inputs are static (cached logits)
        hints = HintMatcher(config.hints, student, teacher_module, x_train, config.hint_weight,
                            precompute=teacher_logits is not None, say=say, feature_loss=config.feature_loss)
    projections = hints.projections if hints else torch.nn.ModuleList()
    dev = device if device is not None else torch.device("cpu")
    nhwc = config.channels_last and len(data.input_shape) == 3  # images: NCHW batches kept as NHWC in memory
    if nhwc:
        student.to(memory_format=torch.channels_last)
    student.to(dev)  # before the optimiser takes the parameters
    projections.to(dev)
    per_batch_teacher = teacher_module if teacher_module is not None and (
        (t_train is None and config.uses_teacher) or (hints is not None and hints.cached is None)) else None

    params = list(student.parameters()) + list(projections.parameters())
    if config.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    gen = torch.Generator().manual_seed(config.seed)
    warm_steps = warmup_epochs(loss_fn, config) * steps_per_epoch
    mix_gen = torch.Generator().manual_seed(config.seed + 1)  # its own stream: the batch order stays the seed's

    def rows(x: Any, idx: Any) -> Any:
        return torch.from_numpy(np.ascontiguousarray(x[idx.numpy()])) if is_rows(x) else x[idx]

    best_acc, best_state, stale, history = -1.0, None, 0, []
    epoch = 0
    teacher_placed = contextlib.ExitStack()  # a teacher run per batch computes on the student's device meanwhile
    teacher_placed.enter_context(moved(per_batch_teacher, dev))
    try:
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            student.train()
            projections.train()
            order = torch.randperm(len(x_train), generator=gen)
            running, seen = 0.0, 0
            per_epoch = sum(h["seconds"] for h in history) / len(history) if history else None
            bar = EpochBar(epoch, config.epochs, steps_per_epoch, per_epoch, enabled=None if progress else False)
            for step in range(steps_per_epoch):
                idx = order[step * config.batch_size:(step + 1) * config.batch_size][shard[0]::shard[1]]
                xb, yb = rows(x_train, idx).to(dev), y_train[idx].to(dev)
                tb = t_train[idx].to(dev) if t_train is not None else None
                if mix:
                    xb, yb = _mixup(xb, yb, data.num_classes, mix_gen)
                if crop:
                    theta = crop_flip_theta(len(idx), mix_gen)
                    if config.uses_teacher:
                        tb = _teacher_on(view, idx, theta, xb, teacher_module, teacher_fn, rows, dev)
                    xb = warp(xb, theta)
                logits = student(xb.contiguous(memory_format=torch.channels_last) if nhwc else xb)
                teacher_ran = tb is None and teacher_module is not None and config.uses_teacher
                if teacher_ran:
                    with torch.no_grad():
                        tb = teacher_module(xb if view is None else rows(view.x_train, idx).to(dev))
                if unlabeled:
                    yb = torch.where(yb >= 0, yb, tb.argmax(1))
                if warm_steps:
                    loss_opts["warmup"] = warmup_factor((epoch - 1) * steps_per_epoch + step, warm_steps)
                loss = loss_fn(logits, tb, yb, **loss_opts)
                if hints:
                    loss = loss + hints.loss(idx, xb, teacher_ran)
                if not torch.isfinite(loss):
                    raise _diverged(f"loss is {float(loss.detach())}", epoch, step, idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                norm = float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm or math.inf))
                if not norm <= EXPLODING_GRAD_NORM:  # NaN/inf or exploding gradients (measured before clipping)
                    raise _diverged(f"gradient norm is {norm:.3g} (limit {EXPLODING_GRAD_NORM:g})", epoch, step, idx)
                opt.step()
                sched.step()
                running += float(loss.detach()) * len(idx)
                seen += len(idx)
                bar.update(step, running / seen)
            bar.clear()
            val_acc = evaluate(student, data.x_val, data.y_val)
            history.append({"epoch": epoch, "loss": running / seen, "val_accuracy": val_acc,
                            "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0})
            improved = val_acc > best_acc
            if improved:
                best_acc, best_state, stale = val_acc, copy.deepcopy(student.state_dict()), 0
            else:
                stale += 1
            left = config.epochs - epoch
            mean_s = sum(h["seconds"] for h in history) / len(history)
            say(f"epoch {epoch}/{config.epochs}  loss {running / seen:.4f}  val acc {val_acc:.4f}"
                f"{'  (best)' if improved else ''}  {time.perf_counter() - t0:.1f}s"
                + (f"  ETA {eta_text(mean_s * left)}" if left else ""))
            new_targets = on_epoch_end(epoch, student) if on_epoch_end is not None else None
            if new_targets is not None:
                t_train = torch.from_numpy(new_targets.astype(np.float32))
            if stale >= config.patience:
                say(f"early stop: no better validation accuracy for {config.patience} epochs")
                break
    finally:
        teacher_placed.close()
        if hints:
            hints.close()
    opt.zero_grad(set_to_none=True)  # no stale gradients left on the returned model
    student.load_state_dict(best_state)
    student.cpu()  # exported and saved from the CPU
    if nhwc:
        student.to(memory_format=torch.contiguous_format)  # saved and exported as any other model
    student.eval()
    return TrainResult(student, best_acc, epoch, epoch < config.epochs, history)


EXPLODING_GRAD_NORM = 1e6  # a total gradient norm above this (before clipping) means training has diverged


def _teacher_on(view: Any, idx: Any, theta: Any, xb: Any, module: Any, fn: Any, rows: Any, dev: Any) -> Any:
    """The teacher's outputs on the crop ``theta`` of its own view of rows ``idx`` (the student's batch ``xb``
    when the teacher takes the student's inputs)."""
    import torch

    from .augment import warp

    xt = xb if view is None else rows(view.x_train, idx).to(dev)
    layout = view.preprocess.layout if view is not None and view.preprocess is not None else "NCHW"
    xt = warp(xt, theta, layout)
    with torch.no_grad():
        if module is not None:
            return module(xt)
        return torch.from_numpy(fn(xt.cpu().numpy())).to(dev)


def _mixup(xb: Any, yb: Any, num_classes: int, gen: Any) -> tuple[Any, Any]:
    """Per-sample mixup of a batch: x' = λ·x + (1 − λ)·x[π], y' = λ·onehot(y) + (1 − λ)·onehot(y[π]), λ ~ U(0, 1),
    π a random pairing within the batch. The label becomes a distribution (cross-entropy takes it as such).
    Papers: H. Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018 (arXiv:1710.09412); as a
    distillation recipe (teacher and student see the same mixed input): L. Beyer et al., "Knowledge distillation:
    A good teacher is patient and consistent", CVPR 2022 (arXiv:2106.05237)."""
    import torch

    lam = torch.rand(len(xb), generator=gen).to(xb.device)  # drawn on the CPU: the same stream on any device
    perm = torch.randperm(len(xb), generator=gen).to(xb.device)
    w = lam.view((-1,) + (1,) * (xb.dim() - 1))
    onehot = torch.nn.functional.one_hot(yb, num_classes).float()
    return w * xb + (1 - w) * xb[perm], lam[:, None] * onehot + (1 - lam[:, None]) * onehot[perm]


def _diverged(what: str, epoch: int, step: int, idx: Any) -> TrainingError:
    """The divergence guard's error: names the epoch, the step and the batch's training samples."""
    rows = [int(i) for i in idx[:6]]
    shown = ", ".join(map(str, rows)) + (", ..." if len(idx) > len(rows) else "")
    return TrainingError(f"training diverged: {what} at epoch {epoch}, step {step + 1} (batch of {len(idx)} "
                         f"training samples: rows {shown} of the training split)",
                         "lower --lr or --temperature, or check the data and teacher outputs for extreme values")


def _check_teacher_inputs(config: DistillConfig, data: "Dataset", teacher_logits: np.ndarray | None,
                          teacher_module: Any) -> None:
    if config.hints and teacher_module is None:
        raise ConfigError("hints need a PyTorch teacher (its layers are read)",
                          "use a .pt/.pt2/state_dict teacher, or drop --hint")
    if config.uses_teacher and config.uses_kd_loss and teacher_logits is None and teacher_module is None:
        raise ConfigError(f"loss {config.loss!r} needs a teacher", "pass --teacher, or use --loss ce")
    if teacher_logits is not None:
        if teacher_logits.shape != (len(data.x_train), data.num_classes):
            raise TeacherError(
                f"teacher outputs have shape {teacher_logits.shape}, expected ({len(data.x_train)}, {data.num_classes})",
                "use a teacher trained on the same classes as the data")
        if not np.isfinite(teacher_logits).all():
            raise TeacherError("the teacher produced NaN or inf outputs on the training data",
                               "check the teacher model and the input scaling it expects")
