"""A made-up image folder for tests, benchmarks and demos: one shape or texture per class, drawn with Pillow.

``make_image_folder(root, classes, per_class, ...)`` writes ``root/<class>/<n>.<ext>`` photos-like files of
mixed sizes (the shorter side ``min_side``..``max_side``), at a random place and scale, random colours on a noisy
background, in a mix of formats (JPEG, PNG, BMP, WebP) and modes (RGB, grey, RGBA with transparency) when
``mixed`` is set. The class is in the shape, not the colour, so a grey copy keeps it learnable. Deterministic for a
seed. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHAPES = ("disc", "square", "triangle", "hstripes", "vstripes", "checker", "ring", "cross", "diagonal", "dots")


def _draw(kind: str, size: tuple[int, int], rng: np.random.Generator):
    from PIL import Image, ImageDraw

    w, h = size
    bg = rng.integers(0, 256, 3)
    noise = rng.normal(0, 18, (h, w, 3))
    base = np.clip(np.asarray(bg, np.float64)[None, None] + noise, 0, 255).astype(np.uint8)
    im = Image.fromarray(base, "RGB")
    d = ImageDraw.Draw(im)
    fg = tuple(int(v) for v in (np.asarray(bg) + rng.integers(90, 166, 3)) % 256)
    side = min(w, h)
    r = int(side * rng.uniform(0.25, 0.42))
    cx, cy = int(w / 2 + rng.uniform(-0.15, 0.15) * w), int(h / 2 + rng.uniform(-0.15, 0.15) * h)
    box = (cx - r, cy - r, cx + r, cy + r)
    step = max(3, side // int(rng.integers(6, 10)))
    if kind == "disc":
        d.ellipse(box, fill=fg)
    elif kind == "square":
        d.rectangle(box, fill=fg)
    elif kind == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    elif kind == "hstripes":
        for y in range(cy - r, cy + r, 2 * step):
            d.rectangle((cx - r, y, cx + r, y + step - 1), fill=fg)
    elif kind == "vstripes":
        for x in range(cx - r, cx + r, 2 * step):
            d.rectangle((x, cy - r, x + step - 1, cy + r), fill=fg)
    elif kind == "checker":
        for i, y in enumerate(range(cy - r, cy + r, step)):
            for j, x in enumerate(range(cx - r, cx + r, step)):
                if (i + j) % 2 == 0:
                    d.rectangle((x, y, x + step - 1, y + step - 1), fill=fg)
    elif kind == "ring":
        d.ellipse(box, outline=fg, width=max(2, r // 4))
    elif kind == "cross":
        t = max(2, r // 4)
        d.rectangle((cx - r, cy - t, cx + r, cy + t), fill=fg)
        d.rectangle((cx - t, cy - r, cx + t, cy + r), fill=fg)
    elif kind == "diagonal":
        d.line((cx - r, cy - r, cx + r, cy + r), fill=fg, width=max(2, r // 3))
    else:  # dots
        for _ in range(9):
            px, py = cx + int(rng.uniform(-r, r)), cy + int(rng.uniform(-r, r))
            q = max(2, r // 6)
            d.ellipse((px - q, py - q, px + q, py + q), fill=fg)
    return im


def make_image_folder(root: str | Path, classes: int = 3, per_class: int = 20, *, min_side: int = 48,
                      max_side: int = 160, mixed: bool = True, seed: int = 0, split: dict[str, int] | None = None,
                      fmt: str = "jpg", shapes: tuple[str, ...] | None = None) -> Path:
    """Write the folder (see the module's doc) and return it; ``split={"train": n, "test": m}`` writes
    ``root/train/<class>`` and ``root/test/<class>`` with n and m images per class instead; ``shapes`` picks the
    classes from SHAPES (default: the first ``classes``)."""
    shapes = tuple(shapes) if shapes else SHAPES[:classes]
    if not shapes or any(k not in SHAPES for k in shapes):
        raise ValueError(f"classes are shapes from {SHAPES}")
    rng = np.random.default_rng(seed)
    root = Path(root)
    parts = {"": per_class} if split is None else split
    for part, n in parts.items():
        for kind in shapes:
            folder = root / part / kind if part else root / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                short = int(rng.integers(min_side, max_side + 1))
                long = int(short * rng.uniform(1.0, 1.5))
                size = (long, short) if rng.random() < 0.5 else (short, long)
                im = _draw(kind, size, rng)
                _save(im, folder / str(i), i if mixed else None, fmt)
    return root


def _save(im, stem: Path, variant: int | None, fmt: str) -> None:
    from PIL import Image

    if variant is None:
        im.save(stem.with_suffix("." + fmt), quality=90) if fmt == "jpg" else im.save(stem.with_suffix("." + fmt))
        return
    kind = variant % 5
    if kind == 0:
        im.save(stem.with_suffix(".jpg"), quality=90)
    elif kind == 1:
        im.convert("L").save(stem.with_suffix(".png"))
    elif kind == 2:  # RGBA with a transparent border: decoded over black
        rgba = im.convert("RGBA")
        a = np.full(rgba.size[::-1], 255, np.uint8)
        a[:4], a[-4:], a[:, :4], a[:, -4:] = 0, 0, 0, 0
        rgba.putalpha(Image.fromarray(a, "L"))
        rgba.save(stem.with_suffix(".png"))
    elif kind == 3:
        im.save(stem.with_suffix(".bmp"))
    else:
        im.save(stem.with_suffix(".webp"), quality=90)


def truncate(path: str | Path, keep: float = 0.5) -> None:
    """Cut a file to ``keep`` of its bytes (a damaged download)."""
    p = Path(path)
    blob = p.read_bytes()
    p.write_bytes(blob[: max(16, int(len(blob) * keep))])
