"""Image decoding and the input contract's arithmetic: one copy, used by edgekd and shipped in smoke bundles.

Needs only numpy and Pillow (no edgekd import): a smoke bundle carries this file so the board turns a raw photo
into the model's input with exactly the code that made the training data.

``decode(path, size, channels)``: open with Pillow, apply the EXIF orientation, convert to RGB or grey (alpha is
composited on black), resize so the shorter side is ``size`` (bilinear with Pillow's antialiasing), centre-crop
``size`` x ``size``; uint8 C x H x W. ``size=None`` keeps the image as it is.
``to_input(u8, mean, std, order, layout)``: uint8 N x C x H x W -> float32 ``(x / 255 - mean) / std`` in the
channel order (RGB/BGR) and layout (NCHW/NHWC) the model takes.
"""

import numpy as np

GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def decode(path, size, channels):
    """uint8 array C x H x W (C = ``channels``, 1 or 3) of the image file ``path``."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.load()  # a truncated file fails here, not later
        im = ImageOps.exif_transpose(im)
        im = _convert(im, channels)
        if size is not None:
            im = _resize_crop(im, int(size))
        arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _convert(im, channels):
    from PIL import Image

    if im.mode.startswith("I;16") or im.mode == "I":
        im = Image.fromarray((np.asarray(im).astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8))
    elif im.mode == "F":
        im = Image.fromarray(np.asarray(im).clip(0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        im = Image.alpha_composite(black, rgba)
    return im.convert("L" if channels == 1 else "RGB")


def _resize_crop(im, size):
    from PIL import Image

    # the sizes and offsets torchvision's Resize(size) + CenterCrop(size) compute, so a teacher trained with those
    # transforms sees the same pixels here
    w, h = im.size
    nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.BILINEAR)
    left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
    return im.crop((left, top, left + size, top + size))


def to_input(u8, mean, std, order="RGB", layout="NCHW"):
    """float32 model input from uint8 N x C x H x W (RGB or grey channels)."""
    x = np.asarray(u8, dtype=np.float32) / 255.0
    if order == "BGR" and x.shape[1] == 3:
        x = x[:, ::-1]
    c = x.shape[1]
    m = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
    if m.shape[1] not in (1, c) or s.shape[1] not in (1, c):
        raise ValueError("mean/std have %d/%d values for %d channels" % (m.shape[1], s.shape[1], c))
    x = (x - m) / s
    if layout == "NHWC":
        x = x.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x, dtype=np.float32)
