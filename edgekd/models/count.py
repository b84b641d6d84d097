"""Parameter and multiply-accumulate (MAC) counts, measured by running one sample through the model."""

from __future__ import annotations


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model, input_shape: tuple[int, ...]) -> int:
    """MACs for one sample at batch 1: convolutions and linear layers (the layers that dominate).

    Conv: output elements × (in_channels / groups) × kernel elements. Linear: in × out.
    BatchNorm, activations and pooling are not counted (they fold away or are negligible).
    """
    import torch
    import torch.nn as nn

    total = 0

    def conv_hook(mod, _inp, out):
        nonlocal total
        k = 1
        for s in mod.kernel_size:
            k *= s
        total += out.numel() * (mod.in_channels // mod.groups) * k

    def linear_hook(mod, inp, _out):
        nonlocal total
        total += inp[0].numel() // inp[0].shape[-1] * mod.in_features * mod.out_features

    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)
