"""Quantization-aware distillation: the student trains through simulated int8, against the teacher.

edgekd's own fake quantization (``torch.fake_quantize_per_*_affine``, straight-through gradients), shaped
like the int8 model edgekd deploys (onnxruntime static QDQ, ``quantize.ort_int8``):

* weights of every Conv/Linear: symmetric int8 per output channel, scale = max|w_c| / 127. Per-channel
  quantization is invariant to a per-channel rescaling, so quantizing the conv weight is the same as
  quantizing the BN-folded weight the exporter writes. ``--qat-weights per-tensor`` (for int8 kernels with one
  weight scale per tensor): one scale, taken on the BN-folded weight, as the export will.
* activations: asymmetric int8 per tensor at the model input and at the outputs of ReLU(6), pooling and Linear
  layers (where onnxruntime places QuantizeLinear after fusing Conv+ReLU). During the first epoch a running
  min/max observer sets the ranges (observe-only for the first ``warmup_steps`` steps); after each epoch
  :meth:`FakeQuantized.calibrate` sets them the way the export will: the float model over the deploy calibration
  samples, global min/max (onnxruntime MinMax, ``OrtInt8Config``), and keeps them fixed for the next epoch.

* BatchNorm: batch statistics while it learns; :meth:`FakeQuantized.freeze_batchnorm` (``--qat-bn-epochs``, by
  default after two thirds of the epochs) switches it to its running statistics, which the export folds into the
  conv, so the last epochs train the deployed forward. Measured on mobilenet w1 with per-tensor weights: without
  freezing, the float model QAT returns drifted from the int8 one it was trained as (one seed's export lost 0.86
  points), see benchmarks/RESULTS.md.

After training the fake quantizers are removed and the student is an ordinary float model: it goes through
the same export and int8 quantization as any student, whose calibration then finds the ranges the student was
trained with (measured: with a running observer instead, a w0.25 student that lost 0.75 points in simulated
int8 lost 2.16 after onnxruntime's calibration).
Reference: B. Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", CVPR 2018, arXiv:1712.05877; with a teacher: A. Polino, R. Pascanu, D. Alistarh, "Model compression
via distillation and quantization", ICLR 2018, arXiv:1802.05668.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .names import QAT_WEIGHT_SCHEMES

QMIN, QMAX = -128, 127


WEIGHT_SCHEMES = QAT_WEIGHT_SCHEMES


def _weight_fake_quant(per_channel: bool, bn: Any = None):
    """Symmetric int8 fake quantization of a Conv/Linear weight. Per tensor, one scale covers every output channel
    of the weight the exporter writes, which has the following BatchNorm folded in (w·γ/σ per channel): the range
    is taken on that folded weight and the rounding applied to it, then the fold is undone, so the float student
    trains through exactly the rounding the export will apply (Jacob et al. 2018, section 3.2, with BN frozen
    to its running statistics)."""
    import torch
    from torch import nn

    class WeightFakeQuant(nn.Module):
        enabled = True

        def forward(self, w):
            if not self.enabled:
                return w
            if per_channel:  # invariant to a per-channel rescaling: the fold does not change the rounding
                amax = w.detach().abs().flatten(1).amax(dim=1).clamp_min(1e-8)
                zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
                return torch.fake_quantize_per_channel_affine(w, amax / 127.0, zero, 0, -127, 127)
            fold = torch.ones(w.shape[0], dtype=w.dtype, device=w.device)
            if bn is not None:
                fold = (bn.weight.detach().abs() / torch.sqrt(bn.running_var + bn.eps)).clamp_min(1e-8)
            fold = fold.reshape(-1, *([1] * (w.dim() - 1)))
            folded = w * fold
            scale = float(folded.detach().abs().max().clamp_min(1e-8)) / 127.0
            return torch.fake_quantize_per_tensor_affine(folded, scale, 0, -127, 127) / fold

    return WeightFakeQuant()


def _following_batchnorm(model: Any) -> dict[int, Any]:
    """id(conv) -> the BatchNorm right after it in the same container (what the exporter folds into it)."""
    from torch import nn

    out = {}
    for parent in model.modules():
        kids = list(parent.children())
        for a, b in zip(kids, kids[1:]):
            if isinstance(a, (nn.Conv1d, nn.Conv2d)) and isinstance(b, (nn.BatchNorm1d, nn.BatchNorm2d)):
                out[id(a)] = b
    return out


class ActivationFakeQuant:
    """Asymmetric per-tensor int8 fake quantization of one tensor. Its range comes from a running min/max observer
    until :meth:`FakeQuantized.calibrate` fixes it the way the deployed int8 model's calibration will."""

    def __init__(self, warmup_steps: int, momentum: float = 0.05) -> None:
        self.lo = self.hi = None
        self.steps, self.warmup, self.momentum = 0, warmup_steps, momentum
        self.calibrating = self.fixed = False

    def __call__(self, x, training: bool):
        import torch

        if self.calibrating:  # the deploy calibration (MinMax): global min/max over the samples, no rounding
            lo, hi = float(x.detach().min()), float(x.detach().max())
            self.lo = lo if self.lo is None else min(self.lo, lo)
            self.hi = hi if self.hi is None else max(self.hi, hi)
            return x
        if training and not self.fixed:
            lo, hi = float(x.detach().min()), float(x.detach().max())
            if self.lo is None:
                self.lo, self.hi = lo, hi
            else:
                m = self.momentum
                self.lo, self.hi = (1 - m) * self.lo + m * lo, (1 - m) * self.hi + m * hi
            self.steps += 1
        if self.lo is None or (self.steps <= self.warmup and not self.fixed):
            return x
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)
        scale = max(hi - lo, 1e-8) / (QMAX - QMIN)
        zero = int(min(max(round(QMIN - lo / scale), QMIN), QMAX))
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, QMIN, QMAX)


class FakeQuantized:
    """Attach fake quantization to ``model`` in place; ``remove()`` restores a plain float model."""

    def __init__(self, model: Any, warmup_steps: int = 50, weights: str = "per-channel") -> None:
        import torch.nn as nn
        import torch.nn.utils.parametrize as P

        if weights not in WEIGHT_SCHEMES:
            raise ConfigError(f"unknown QAT weight scheme {weights!r}", f"use one of {', '.join(WEIGHT_SCHEMES)}")
        self.model, self._handles, self._params, self._acts, self._weights = model, [], [], [], []
        bns = _following_batchnorm(model)
        for mod in model.modules():
            if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                wq = _weight_fake_quant(weights == "per-channel", bns.get(id(mod)))
                P.register_parametrization(mod, "weight", wq)
                self._params.append(mod)
                self._weights.append(wq)
            if isinstance(mod, (nn.ReLU, nn.ReLU6, nn.Linear, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
                fq = ActivationFakeQuant(warmup_steps)
                self._acts.append(fq)
                self._handles.append(mod.register_forward_hook(lambda m, _i, out, fq=fq: fq(out, m.training)))
        fq_in = ActivationFakeQuant(warmup_steps)
        self._acts.append(fq_in)
        self._handles.append(model.register_forward_pre_hook(
            lambda m, args, fq=fq_in: (fq(args[0], m.training), *args[1:])))
        self.bn_frozen = False
        for mod in model.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                self._handles.append(mod.register_forward_pre_hook(self._frozen_bn_hook))

    def _frozen_bn_hook(self, bn: Any, _args: Any) -> None:
        if self.bn_frozen:  # the trainer's model.train() each epoch would otherwise switch batch statistics back on
            bn.training = False

    def freeze_batchnorm(self) -> None:
        """From now on every BatchNorm normalises with its running statistics and stops updating them, in training
        too: the forward pass is then the deployed one (conv with the BN folded in, at the folded weight's
        int8 rounding), no longer one normalised by each batch's own statistics. Jacob et al. 2018 (section 3.2)
        freeze them for the end of training; so does torchvision's QAT recipe."""
        self.bn_frozen = True

    def calibrate(self, x: Any, batch_size: int = 256) -> None:
        """Fix every activation range as the deploy quantizer will compute it for the current weights: the float
        model (no rounding anywhere) run over the calibration samples ``x``, global min/max per tensor (onnxruntime
        MinMax). Training then goes through exactly the rounding the int8 export will apply."""
        import torch

        from .device import device_of

        was_training = self.model.training
        dev = device_of(self.model)
        for fq in self._acts:
            fq.lo = fq.hi = None
            fq.calibrating = True
        for wq in self._weights:
            wq.enabled = False
        self.model.eval()
        try:
            with torch.no_grad():
                for i in range(0, len(x), batch_size):
                    self.model(torch.as_tensor(x[i:i + batch_size]).to(dev))
        finally:
            for fq in self._acts:
                fq.calibrating, fq.fixed = False, fq.lo is not None
            for wq in self._weights:
                wq.enabled = True
            self.model.train(was_training)

    def remove(self) -> Any:
        import torch.nn.utils.parametrize as P

        for h in self._handles:
            h.remove()
        for mod in self._params:
            P.remove_parametrizations(mod, "weight", leave_parametrized=False)  # keep the trained float weights
        self._handles, self._params = [], []
        return self.model
