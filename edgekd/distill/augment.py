"""Random-resized-crop and horizontal flip, drawn once per sample and applied to every view of it.

A crop is an affine map in normalised coordinates (``theta``, as ``torch.nn.functional.affine_grid`` takes it),
so the same crop lands on the same part of the scene in the student's view (e.g. 96 px) and the teacher's (e.g.
224 px, its own normalisation and layout): teacher and student see one view, as consistent distillation needs
(L. Beyer et al., "Knowledge distillation: A good teacher is patient and consistent", CVPR 2022,
arXiv:2106.05237). Crop area and aspect ratio are drawn as torchvision's RandomResizedCrop draws them (its
default area is 8%..100%; here 35%..100%: a small student at low resolution loses the object in tinier crops).
Bilinear sampling commutes with the per-channel normalisation, so normalised views can be cropped directly.
"""

from __future__ import annotations

import math
from typing import Any

SCALE = (0.35, 1.0)  # crop area as a fraction of the image
RATIO = (3 / 4, 4 / 3)  # crop aspect ratio


def crop_flip_theta(n: int, gen: Any, scale: tuple[float, float] = SCALE,
                    ratio: tuple[float, float] = RATIO) -> Any:
    """(n, 2, 3) affine parameters: a random crop (area, aspect) at a random place, flipped with probability 1/2."""
    import torch

    area = torch.empty(n).uniform_(scale[0], scale[1], generator=gen)
    log_r = torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
    r = torch.exp(log_r)
    w = torch.sqrt(area * r).clamp(max=1.0)  # fractions of the image's width / height
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = (torch.rand(n, generator=gen) * 2 - 1) * (1 - w)  # centre, in [-1, 1] coordinates, crop inside
    cy = (torch.rand(n, generator=gen) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    return theta


def warp(x: Any, theta: Any, layout: str = "NCHW") -> Any:
    """Apply ``theta`` to a batch of images (``layout`` NCHW or NHWC), output at the input's own size."""
    import torch.nn.functional as F

    nchw = x.permute(0, 3, 1, 2) if layout == "NHWC" else x
    grid = F.affine_grid(theta.to(nchw.device, nchw.dtype), list(nchw.shape), align_corners=False)
    out = F.grid_sample(nchw, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.permute(0, 2, 3, 1).contiguous() if layout == "NHWC" else out
