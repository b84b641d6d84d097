"""Quantization-aware distillation: the student trains through simulated int8, against the teacher.

edgekd's own fake quantization (``torch.fake_quantize_per_*_affine``, straight-through gradients), shaped
like the int8 model edgekd deploys (onnxruntime static QDQ, ``quantize.ort_int8``):

* weights of every Conv/Linear: symmetric int8 per output channel, scale = max|w_c| / 127. Per-channel
  quantization is invariant to a per-channel rescaling, so quantizing the conv weight is the same as
  quantizing the BN-folded weight the exporter writes.
* activations: asymmetric int8 per tensor at the model input and at the outputs of ReLU, pooling and Linear
  layers (where onnxruntime places QuantizeLinear after fusing Conv+ReLU), with a running min/max observer
  (observe-only for the first ``warmup_steps`` training steps).

After training the fake quantizers are removed and the student is an ordinary float model: it goes through
the same export and int8 quantization as any student (the int8 scales are calibrated again by onnxruntime;
the observers' ranges are not carried over). What QAT buys is weights that tolerate that rounding.
Reference: B. Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", CVPR 2018, arXiv:1712.05877; with a teacher: A. Polino, R. Pascanu, D. Alistarh, "Model compression
via distillation and quantization", ICLR 2018, arXiv:1802.05668.
"""

from __future__ import annotations

from typing import Any

QMIN, QMAX = -128, 127


def _weight_fake_quant():
    import torch
    import torch.nn as nn

    class WeightFakeQuant(nn.Module):
        def forward(self, w):
            amax = w.detach().abs().flatten(1).amax(dim=1).clamp_min(1e-8)
            zero = torch.zeros(w.shape[0], dtype=torch.int32)
            return torch.fake_quantize_per_channel_affine(w, amax / 127.0, zero, 0, -127, 127)

    return WeightFakeQuant()


class ActivationFakeQuant:
    """Running min/max observer + asymmetric per-tensor int8 fake quantization of one tensor."""

    def __init__(self, warmup_steps: int, momentum: float = 0.05) -> None:
        self.lo = self.hi = None
        self.steps, self.warmup, self.momentum = 0, warmup_steps, momentum

    def __call__(self, x, training: bool):
        import torch

        if training:
            lo, hi = float(x.detach().min()), float(x.detach().max())
            if self.lo is None:
                self.lo, self.hi = lo, hi
            else:
                m = self.momentum
                self.lo, self.hi = (1 - m) * self.lo + m * lo, (1 - m) * self.hi + m * hi
            self.steps += 1
        if self.lo is None or self.steps <= self.warmup:
            return x
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)
        scale = max(hi - lo, 1e-8) / (QMAX - QMIN)
        zero = int(min(max(round(QMIN - lo / scale), QMIN), QMAX))
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, QMIN, QMAX)


class FakeQuantized:
    """Attach fake quantization to ``model`` in place; ``remove()`` restores a plain float model."""

    def __init__(self, model: Any, warmup_steps: int = 50) -> None:
        import torch.nn as nn
        import torch.nn.utils.parametrize as P

        self.model, self._handles, self._params = model, [], []
        for mod in model.modules():
            if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                P.register_parametrization(mod, "weight", _weight_fake_quant())
                self._params.append(mod)
            if isinstance(mod, (nn.ReLU, nn.Linear, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
                fq = ActivationFakeQuant(warmup_steps)
                self._handles.append(mod.register_forward_hook(lambda m, _i, out, fq=fq: fq(out, m.training)))
        fq_in = ActivationFakeQuant(warmup_steps)
        self._handles.append(model.register_forward_pre_hook(
            lambda m, args, fq=fq_in: (fq(args[0], m.training), *args[1:])))

    def remove(self) -> Any:
        import torch.nn.utils.parametrize as P

        for h in self._handles:
            h.remove()
        for mod in self._params:
            P.remove_parametrizations(mod, "weight", leave_parametrized=False)  # keep the trained float weights
        self._handles, self._params = [], []
        return self.model
