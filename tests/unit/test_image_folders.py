"""Image folders as users have them: decode cache, lazy rows, the input contract, crop-flip views (real Pillow files)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekd.data import load_dataset
from edgekd.data.folder import ImageOptions
from edgekd.data.synthetic_images import make_image_folder, truncate
from edgekd.errors import ConfigError, DataError
from edgekd.preprocess import IMAGENET_MEAN, Preprocess, parse_teacher_input


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """3 classes x 10 images: JPEG/PNG grey/PNG RGBA/BMP/WebP, 40..120 px, aspect up to 1.5."""
    return make_image_folder(tmp_path_factory.mktemp("photos") / "f", classes=3, per_class=10, min_side=40,
                             max_side=120)


def test_mixed_sizes_and_modes_become_one_size_and_rgb(photos, tmp_path):
    d = load_dataset(f"folder:{photos}", images=ImageOptions(size=32), cache_dir=tmp_path)
    assert d.input_shape == (3, 32, 32) and d.is_lazy and d.num_classes == 3
    assert d.class_names == ("disc", "square", "triangle")
    x = np.asarray(d.x_test)
    assert x.dtype == np.float32 and x.shape == (len(d.y_test), 3, 32, 32) and 0 <= x.min() and x.max() <= 1
    assert d.preprocess == Preprocess(size=32, channels=3)
    grey = load_dataset(f"folder:{photos}", images=ImageOptions(size=32, channels="grey"), cache_dir=tmp_path)
    assert grey.input_shape == (1, 32, 32)


def test_rows_read_a_batch_at_a_time_in_any_order(photos, tmp_path):
    d = load_dataset(f"folder:{photos}", images=ImageOptions(size=24), cache_dir=tmp_path)
    full = np.asarray(d.x_train)
    idx = np.array([5, 1, 3, 3, 0])
    np.testing.assert_array_equal(d.x_train[idx], full[idx])
    np.testing.assert_array_equal(d.x_train[2:6], full[2:6])
    np.testing.assert_array_equal(d.x_train[4], full[4])
    sub = d.x_train.take(np.array([2, 0]))
    np.testing.assert_array_equal(np.asarray(sub), full[[2, 0]])


def test_second_load_reads_the_decode_cache_without_decoding(photos, tmp_path, monkeypatch):
    said: list[str] = []
    a = load_dataset(f"folder:{photos}", images=ImageOptions(size=28), cache_dir=tmp_path, progress=said.append)
    assert any("decoding 30 images to 28x28" in s for s in said)
    import edgekd.smoke.image_io as image_io

    def refuse(*_a, **_k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(image_io, "decode", refuse)
    said.clear()
    b = load_dataset(f"folder:{photos}", images=ImageOptions(size=28), cache_dir=tmp_path, progress=said.append)
    assert any("read from the decode cache" in s for s in said) and not any("decoding" in s for s in said)
    np.testing.assert_array_equal(np.asarray(a.x_test), np.asarray(b.x_test))
    assert a.fingerprint() == b.fingerprint()
    with pytest.raises(AssertionError, match="decoded again"):  # another size is another cache entry
        load_dataset(f"folder:{photos}", images=ImageOptions(size=20), cache_dir=tmp_path)


def test_the_cache_is_keyed_by_content_not_by_path(photos, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(photos, copy)
    a = load_dataset(f"folder:{photos}", images=ImageOptions(size=16), cache_dir=tmp_path / "c")
    said: list[str] = []
    b = load_dataset(f"folder:{copy}", images=ImageOptions(size=16), cache_dir=tmp_path / "c", progress=said.append)
    assert any("read from the decode cache" in s for s in said)
    assert a.fingerprint() == b.fingerprint()
    img = next((copy / "disc").glob("*.jpg"))
    from PIL import Image

    Image.new("RGB", (50, 50), (255, 0, 0)).save(img)  # one photo replaced: new content, new cache entry
    said.clear()
    c = load_dataset(f"folder:{copy}", images=ImageOptions(size=16), cache_dir=tmp_path / "c", progress=said.append)
    assert any("decoding" in s for s in said) and c.fingerprint() != a.fingerprint()


def test_an_unreadable_image_is_named_or_skipped_and_counted(tmp_path):
    root = make_image_folder(tmp_path / "f", classes=2, per_class=6, min_side=30, max_side=60)
    bad = sorted((root / "disc").glob("*.jpg"))[0]
    truncate(bad)
    with pytest.raises(DataError) as e:
        load_dataset(f"folder:{root}", images=ImageOptions(size=16), cache_dir=tmp_path / "c")
    msg = str(e.value)
    assert str(bad) in msg and "truncated" in msg and "--skip-bad-images" in msg and "\n" not in msg
    assert not list((tmp_path / "c" / "images").glob("*/pixels_16.u8"))  # nothing half-written
    said: list[str] = []
    d = load_dataset(f"folder:{root}", images=ImageOptions(size=16, skip_bad=True), cache_dir=tmp_path / "c",
                     progress=said.append)
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 11
    assert any("skipped 1 unreadable image(s)" in s and str(bad) in s for s in said)
    all_paths = set(d.x_train.paths(slice(None))) | set(d.x_val.paths(slice(None))) | set(d.x_test.paths(slice(None)))
    assert str(bad) not in all_paths


def test_a_train_test_layout_keeps_its_own_test_split(tmp_path):
    root = make_image_folder(tmp_path / "f", classes=2, split={"train": 8, "test": 3}, min_side=30, max_side=50)
    d = load_dataset(f"folder:{root}", images=ImageOptions(size=16), cache_dir=tmp_path / "c")
    assert len(d.y_test) == 6 and len(d.y_train) + len(d.y_val) == 16
    assert all("/test/" in p for p in d.x_test.paths(slice(None)))
    assert not any("/test/" in p for p in d.x_train.paths(slice(None)))


def test_several_sizes_without_image_size_ask_for_it(photos, tmp_path):
    with pytest.raises(DataError, match=r"pass --image-size N"):
        load_dataset(f"folder:{photos}", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="apply to folder: data"):
        load_dataset("digits", images=ImageOptions(size=32))


def test_teacher_input_contract_and_views(photos, tmp_path):
    pre = parse_teacher_input("imagenet,size=48,layout=nhwc", channels=3)
    assert pre.size == 48 and pre.mean == IMAGENET_MEAN and pre.layout == "NHWC"
    d = load_dataset(f"folder:{photos}", images=ImageOptions(size=32), cache_dir=tmp_path).with_teacher_input(pre)
    t = d.teacher_view
    assert t.input_shape == (48, 48, 3) and d.input_shape == (3, 32, 32)
    np.testing.assert_array_equal(t.y_train, d.y_train)
    raw = t.x_train.raw_rows(slice(0, 2)).astype(np.float32) / 255.0
    want = ((raw - np.array(IMAGENET_MEAN, np.float32)[None, :, None, None])
            / np.array(pre.std, np.float32)[None, :, None, None]).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(t.x_train[0:2], want, rtol=1e-6, atol=1e-6)
    assert t.fingerprint() != d.fingerprint()
    r = d.at_size(24)  # a candidate at another resolution: the teacher keeps its view
    assert r.input_shape == (3, 24, 24) and r.teacher_view.input_shape == (48, 48, 3)
    for bad in ("resnet", "size=x", "mean=1/2", "imagenet,colour=1"):
        with pytest.raises(ConfigError):
            parse_teacher_input(bad, channels=3)
    with pytest.raises(ConfigError, match="does not say the teacher's input size"):
        parse_teacher_input("mean=0.5,std=0.5", channels=3)
    with pytest.raises(ConfigError, match="needs image folder data"):
        load_dataset("digits").with_teacher_input(pre)
    assert json.loads(pre.to_json())["layout"] == "NHWC" and Preprocess.from_dict(pre.as_dict()) == pre


def test_crop_flip_puts_the_same_crop_on_every_view():
    """One theta on a 96 px view and on its 32 px copy gives the same picture (up to resampling); another theta
    does not: teacher and student see one view."""
    import torch
    import torch.nn.functional as F

    from edgekd.distill.augment import crop_flip_theta, warp

    yy, xx = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 96), indexing="ij")
    big = torch.stack([xx, yy, xx * yy])[None].repeat(4, 1, 1, 1)
    small = F.interpolate(big, size=32, mode="bilinear", antialias=True, align_corners=False)
    gen = torch.Generator().manual_seed(0)
    theta = crop_flip_theta(4, gen)
    other = crop_flip_theta(4, gen)
    down = F.interpolate(warp(big, theta), size=32, mode="bilinear", antialias=True, align_corners=False)
    same = (down - warp(small, theta)).abs().mean()
    diff = (down - warp(small, other)).abs().mean()
    assert same < 0.02 < diff
    nhwc = warp(big.permute(0, 2, 3, 1).contiguous(), theta, "NHWC")
    torch.testing.assert_close(nhwc.permute(0, 3, 1, 2), warp(big, theta))
    assert (theta[:, 0, 0].abs() <= 1).all() and (theta[:, 0, 0] < 0).any() and (theta[:, 0, 0] > 0).any()
