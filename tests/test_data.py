"""Tests for the data layer: file lists, decoding, cropping, the dataset, named datasets."""

import logging
import math
import os
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from piigan_tf.data import datasets, flist, pipeline, sample

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_CELEBA = os.path.join(REPO, "..", "shared", "data", "celeba", "train")


# ---------------------------------------------------------------- test images


def _texture(height, width, seed=0):
    """A smooth random RGB texture (compresses like a photo, unlike white noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3)).astype(np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def _gradient(height, width):
    """R = column, G = row (both < 256), B = 77: every pixel tells where it came from."""
    assert height <= 256 and width <= 256
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([cols, rows, np.full_like(rows, 77)], axis=-1).astype(np.uint8)


def _pil_rgb(path):
    """What PIL decodes a file to, as RGB."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _write_rgb(path, rgb, params=()):
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]), list(params))
    return str(path)


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """Every kind of file the pipeline must cope with, and the RGB each should decode to.

    Returns a dict name -> (path, expected RGB or None); None marks files that
    must be skipped (by the pre-scan or at decode time).
    """
    root = tmp_path_factory.mktemp("images")
    files = {}
    rgb = _texture(60, 70, seed=1)

    files["rgb_png"] = (_write_rgb(root / "rgb.png", rgb), rgb)
    gray = rgb[:, :, 1]
    cv2.imwrite(str(root / "gray.png"), gray)
    files["gray_png"] = (str(root / "gray.png"), np.repeat(gray[:, :, None], 3, axis=2))
    rgba = np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 90, np.uint8)])
    cv2.imwrite(str(root / "rgba.png"), rgba)
    files["rgba_png"] = (str(root / "rgba.png"), rgb)
    deep = rgb.astype(np.uint16) * 257 + 100  # 16-bit, low byte not all zero
    cv2.imwrite(str(root / "deep16.png"), deep[:, :, ::-1])
    # 16 -> 8 bits keeps the high byte, as tf.image.convert_image_dtype(uint16 -> uint8)
    files["png16"] = (str(root / "deep16.png"), (deep >> 8).astype(np.uint8))
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(root / "palette.png")
    files["palette_png"] = (str(root / "palette.png"), _pil_rgb(root / "palette.png"))
    Image.fromarray(rgb).convert("LA").save(root / "gray_alpha.png")
    files["gray_alpha_png"] = (str(root / "gray_alpha.png"), _pil_rgb(root / "gray_alpha.png"))
    frames = [Image.fromarray(rgb).quantize(64), Image.fromarray(255 - rgb).quantize(64)]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:])
    files["gif"] = (str(root / "anim.gif"), np.asarray(frames[0].convert("RGB")))
    files["bmp"] = (_write_rgb(root / "rgb.bmp", rgb), rgb)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(root / "palette.bmp")
    files["palette_bmp"] = (str(root / "palette.bmp"), _pil_rgb(root / "palette.bmp"))
    jpeg = _write_rgb(root / "photo.jpg", _texture(90, 120, seed=2), [cv2.IMWRITE_JPEG_QUALITY, 90])
    files["jpeg"] = (jpeg, cv2.imread(jpeg)[:, :, ::-1])
    files["one_pixel"] = (_write_rgb(root / "one.png", np.array([[[10, 200, 30]]], np.uint8)), None)
    files["tiny"] = (_write_rgb(root / "tiny.png", _texture(20, 30, seed=3)), None)
    big = _write_rgb(root / "big.jpg", _texture(2000, 3000, seed=4), [cv2.IMWRITE_JPEG_QUALITY, 80])
    files["big_jpeg"] = (big, None)
    files["big_png"] = (_write_rgb(root / "big.png", _texture(2000, 3000, seed=5)), None)
    files["gradient"] = (_write_rgb(root / "gradient.png", _gradient(180, 250)), _gradient(180, 250))

    # Unusable files.
    with open(jpeg, "rb") as handle:
        data = handle.read()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 3])  # valid header, corrupt body
    files["truncated_jpeg"] = (str(root / "truncated.jpg"), None)
    (root / "truncated.png").write_bytes(open(files["rgb_png"][0], "rb").read()[:200])
    files["truncated_png"] = (str(root / "truncated.png"), None)
    (root / "empty.jpg").write_bytes(b"")
    files["empty"] = (str(root / "empty.jpg"), None)
    (root / "notes.jpg").write_text("this is a text file, not a JPEG\n")
    files["text"] = (str(root / "notes.jpg"), None)
    files["missing"] = (str(root / "missing.png"), None)
    return files


PRESCAN_BAD = ("empty", "text", "missing")
DECODE_BAD = ("truncated_jpeg", "truncated_png")
LOSSLESS = (
    "rgb_png",
    "gray_png",
    "rgba_png",
    "png16",
    "palette_png",
    "gray_alpha_png",
    "gif",
    "bmp",
    "palette_bmp",
)


def _read(path):
    return tf.io.read_file(path)


# ------------------------------------------------------------------ file lists


def test_read_flist_skips_blank_lines_and_resolves_relative_paths(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(b"x")
    absolute = str(tmp_path / "elsewhere.png")
    path = tmp_path / "list.flist"
    path.write_text(f"imgs/a.png\n\n  \n{absolute}\r\n")
    assert flist.read_flist(path) == [str(tmp_path / "imgs" / "a.png"), absolute]
    assert pipeline.read_flist is flist.read_flist
    with pytest.raises(FileNotFoundError, match="nope.flist"):
        pipeline.read_flist(tmp_path / "nope.flist")


def test_scan_files_drops_bad_files_and_logs(image_files, caplog):
    paths = [image_files[k][0] for k in ("jpeg", "rgb_png", *PRESCAN_BAD, "truncated_jpeg")]
    with caplog.at_level(logging.WARNING, logger="piigan_tf"):
        good, bad = pipeline.scan_files(paths)
    assert bad == 3
    assert good == [image_files[k][0] for k in ("jpeg", "rgb_png", "truncated_jpeg")]
    message = caplog.text
    assert "skipping 3 of 6" in message and "empty.jpg" in message and "notes.jpg" in message


def test_scan_files_all_bad_raises(image_files):
    with pytest.raises(ValueError, match="no usable image"):
        pipeline.scan_files([image_files[k][0] for k in PRESCAN_BAD])


# -------------------------------------------------------------------- decoding


@pytest.mark.parametrize("name", (*LOSSLESS, "jpeg"))
def test_decode_image_gives_rgb_uint8(image_files, name):
    path, expected = image_files[name]
    decoded = pipeline.decode_image(_read(path))
    assert decoded.dtype == tf.uint8 and decoded.shape[-1] == 3
    # JPEG: same IDCT as OpenCV, so bit-identical to cv2.imread.
    np.testing.assert_array_equal(decoded.numpy(), expected)


@pytest.mark.parametrize("name", (*LOSSLESS, "jpeg"))
def test_load_image_file_matches_the_pipeline_decoder(image_files, name):
    path, expected = image_files[name]
    loaded = pipeline.load_image_file(path)
    assert loaded.dtype == np.uint8 and loaded.ndim == 3 and loaded.shape[2] == 3
    np.testing.assert_array_equal(loaded, expected)


def test_load_image_file_errors_name_the_file(image_files):
    with pytest.raises(ValueError, match="notes.jpg"):
        pipeline.load_image_file(image_files["text"][0])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        pipeline.load_image_file(image_files["missing"][0])


# -------------------------------------------------------------------- cropping


def test_random_crop_is_a_native_scale_window(image_files):
    path, image = image_files["gradient"]  # 180 x 250, R = column, G = row
    offsets = set()
    for i in range(40):
        crop = pipeline.decode_and_crop(_read(path), (128, 128), tf.constant([i, 1])).numpy()
        top, left = int(crop[0, 0, 1]), int(crop[0, 0, 0])
        np.testing.assert_array_equal(crop, image[top : top + 128, left : left + 128])
        # consecutive pixel differences are preserved: no rescaling
        assert (np.diff(crop[..., 0].astype(int), axis=1) == 1).all()
        assert (np.diff(crop[..., 1].astype(int), axis=0) == 1).all()
        offsets.add((top, left))
    tops, lefts = zip(*offsets)
    assert 0 <= min(tops) and max(tops) <= 180 - 128 and max(lefts) <= 250 - 128
    assert len(offsets) > 30  # uniformly spread, not a fixed window


def test_small_image_is_scaled_up_to_cover_then_cropped(image_files):
    path = image_files["tiny"][0]  # 20 x 30
    decoded = pipeline.decode_image(_read(path))
    # neuralgym np_scale_to_shape: s = max(128/20, 128/30) = 6.4, size (ceil(20 s), ceil(30 s)).
    scale = max(128 / 20, 128 / 30)
    scaled_hw = (math.ceil(20 * scale), math.ceil(30 * scale))
    assert scaled_hw == (128, 192)
    scaled = pipeline.resize_image(decoded, scaled_hw).numpy()
    reference = cv2.resize(decoded.numpy(), scaled_hw[::-1], interpolation=cv2.INTER_LINEAR)
    assert np.abs(scaled.astype(int) - reference).max() <= 1  # same bilinear as OpenCV
    lefts = set()
    for i in range(12):
        crop = pipeline.decode_and_crop(_read(path), (128, 128), tf.constant([7, i])).numpy()
        matches = [x for x in range(192 - 128 + 1) if np.array_equal(crop, scaled[:, x : x + 128])]
        assert matches, "crop is not a window of the scaled-up image"
        lefts.add(matches[0])
    assert len(lefts) > 1


def test_one_pixel_image_becomes_a_flat_crop(image_files):
    contents = _read(image_files["one_pixel"][0])
    crop = pipeline.decode_and_crop(contents, (32, 48), tf.constant([0, 0])).numpy()
    assert crop.shape == (32, 48, 3)
    assert (crop == [10, 200, 30]).all()


@pytest.mark.parametrize("progressive", [False, True])
def test_partial_jpeg_decoding_equals_full_decoding(tmp_path, progressive):
    image = Image.fromarray(_texture(700, 520, seed=8))
    path = tmp_path / "big.jpg"
    image.save(path, quality=85, progressive=progressive)  # 4:2:0 chroma
    contents = _read(str(path))
    full = pipeline.decode_image(contents)
    for i in range(15):
        seed = tf.constant([i, 99])
        fast = pipeline.decode_and_crop(contents, (128, 96), seed)
        slow = pipeline.random_crop_image(full, (128, 96), seed)
        np.testing.assert_array_equal(fast.numpy(), slow.numpy())


def test_without_random_crop_images_are_resized(image_files):
    path = image_files["jpeg"][0]  # 90 x 120
    out = pipeline.decode_and_crop(_read(path), (32, 40), tf.constant([0, 0]), random_crop=False).numpy()
    reference = cv2.resize(image_files["jpeg"][1], (40, 32), interpolation=cv2.INTER_LINEAR)
    assert out.shape == (32, 40, 3)
    assert np.abs(out.astype(int) - reference).max() <= 1


# --------------------------------------------------------------------- dataset


def _small_dataset(files, batch_size, **kwargs):
    """build_dataset at 32 x 32 with a 16 x 16 box: fast."""
    return pipeline.build_dataset(files, (32, 32, 3), batch_size, box_shape=(16, 16), **kwargs)


def _all_elements(dataset):
    return [{k: v.numpy() for k, v in element.items()} for element in dataset]


def test_dataset_shapes_ranges_and_bad_files_skipped(image_files, caplog):
    paths = [path for path, _ in image_files.values()]
    usable = len(paths) - len(PRESCAN_BAD) - len(DECODE_BAD)
    with caplog.at_level(logging.WARNING, logger="piigan_tf"):
        dataset = pipeline.build_dataset(
            paths, (64, 64, 3), 4, box_shape=(32, 32), repeat=False, drop_remainder=False, seed=3
        )
    assert "skipping 3 of" in caplog.text
    spec = dataset.element_spec
    assert spec["images"].shape.as_list() == [None, 64, 64, 3] and spec["images"].dtype == tf.float32
    assert spec["masks"].dtype == tf.float32 and spec["boxes"].dtype == tf.int32
    elements = _all_elements(dataset)
    images = np.concatenate([e["images"] for e in elements])
    masks = np.concatenate([e["masks"] for e in elements])
    boxes = np.concatenate([e["boxes"] for e in elements])
    assert images.shape == (usable, 64, 64, 3)  # corrupt files dropped, nothing crashed
    assert images.min() >= -1.0 and images.max() <= 1.0 and images.std() > 0.1
    assert masks.shape == (usable, 64, 64, 1) and set(np.unique(masks)) == {0.0, 1.0}
    assert (boxes == [16, 16, 32, 32]).all()


def test_dataset_all_bad_files_raise(image_files):
    with pytest.raises(ValueError, match="no usable image"):
        pipeline.build_dataset([image_files[k][0] for k in PRESCAN_BAD])


@pytest.fixture(scope="module")
def coloured_files(tmp_path_factory):
    """Ten flat images whose red value (10 * i) identifies the file."""
    root = tmp_path_factory.mktemp("coloured")
    return [
        _write_rgb(root / f"{i}.png", np.full((40, 50, 3), (10 * i, 0, 0), np.uint8)) for i in range(10)
    ]


def _file_ids(images):
    return np.rint((images[..., 0, 0, 0] + 1.0) * 127.5 / 10).astype(int).ravel().tolist()


def test_dataset_visits_every_file_each_epoch_in_a_new_order(coloured_files):
    dataset = _small_dataset(coloured_files, 10, seed=5)
    epochs = [_file_ids(e["images"].numpy()) for e in dataset.take(3)]
    for order in epochs:
        assert sorted(order) == list(range(10))
    assert epochs[0] != epochs[1] != epochs[2]
    unshuffled = _small_dataset(coloured_files, 5, shuffle=False)
    assert _file_ids(next(iter(unshuffled))["images"].numpy()) == [0, 1, 2, 3, 4]


def test_dataset_is_deterministic_for_a_seed(image_files):
    paths = [image_files[k][0] for k in ("rgb_png", "jpeg", "tiny", "gradient", "bmp", "gif", "png16")]
    first = _all_elements(_small_dataset(paths, 3, mask_type="free_form", seed=11).take(5))
    again = _all_elements(
        _small_dataset(paths, 3, mask_type="free_form", seed=11, num_parallel_calls=1).take(5)
    )
    other = _all_elements(_small_dataset(paths, 3, mask_type="free_form", seed=12).take(5))
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert not all(np.array_equal(a["images"], b["images"]) for a, b in zip(first, other))
    assert not all(np.array_equal(a["masks"], b["masks"]) for a, b in zip(first, other))


def test_group_stacks_batches(coloured_files):
    dataset = _small_dataset(coloured_files, 4, group=6, mask_type="random_box")
    element = next(iter(dataset))
    assert element["images"].shape == (6, 4, 32, 32, 3)
    assert element["masks"].shape == (6, 4, 32, 32, 1)
    assert element["boxes"].shape == (6, 4, 4) and element["boxes"].dtype == tf.int32
    # 24 images from 10 files: the stream continues across epochs.
    assert len(set(_file_ids(element["images"].numpy()))) == 10
    # One epoch of 10 files = 3 full batches of 3 = one full group of 2; the rest is dropped.
    finite = _small_dataset(coloured_files, 3, group=2, repeat=False, drop_remainder=False)
    assert [e["images"].shape for e in finite] == [(2, 3, 32, 32, 3)]


@pytest.mark.parametrize("group", [None, 2])
def test_start_batch_resumes_exactly_like_skip(coloured_files, group):
    kwargs = dict(group=group, mask_type="random_box", seed=4)
    # 10 files, 3 (or 6) images per element: resuming at 4 crosses an epoch boundary.
    reference = _all_elements(_small_dataset(coloured_files, 3, **kwargs).skip(4).take(3))
    resumed = _all_elements(_small_dataset(coloured_files, 3, start_batch=4, **kwargs).take(3))
    for a, b in zip(reference, resumed):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_build_dataset_reads_a_flist(coloured_files, tmp_path):
    list_path = tmp_path / "train.flist"
    flist.write_flist(list_path, coloured_files[:3])
    dataset = _small_dataset(str(list_path), 3, repeat=False)
    assert sorted(_file_ids(next(iter(dataset))["images"].numpy())) == [0, 1, 2]


def test_invalid_dataset_arguments(coloured_files):
    with pytest.raises(ValueError, match="mask_type"):
        pipeline.build_dataset(coloured_files, mask_type="circle")
    with pytest.raises(ValueError, match="3 channels"):
        pipeline.build_dataset(coloured_files, (32, 32, 1))


@pytest.mark.skipif(
    not os.path.isdir(SHARED_CELEBA), reason="../shared/data (real CelebA images) not available"
)
def test_real_celeba_faces_are_cropped_at_native_scale():
    paths = sorted(os.path.join(SHARED_CELEBA, n) for n in os.listdir(SHARED_CELEBA))[:26]
    element = next(iter(pipeline.build_dataset(paths, batch_size=13, seed=0)))
    assert element["images"].shape == (13, 128, 128, 3)
    # A CelebA face is 178 x 218: a 128 x 128 window of the decoded file.
    first = element["images"][0].numpy()
    assert -1.0 <= first.min() and first.max() <= 1.0


# ------------------------------------------------------------------- flist.py


def _touch_images(root, names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_make_flists_counts_seed_and_recursion(tmp_path):
    images = [f"a/{i:03d}.jpg" for i in range(15)] + [f"b/c/{i:03d}.PNG" for i in range(10)]
    _touch_images(tmp_path / "imgs", images + ["readme.txt", "b/notes.md"])
    assert flist.make_flists(tmp_path / "imgs", tmp_path / "out", num_val=10, seed=0) == (15, 10)
    train = flist.read_flist(tmp_path / "out" / "train.flist")
    val = flist.read_flist(tmp_path / "out" / "val.flist")
    assert len(set(train) | set(val)) == 25 and not set(train) & set(val)
    assert all(os.path.isabs(p) for p in train + val)

    # same seed, same split; another seed, another split
    flist.make_flists(tmp_path / "imgs", tmp_path / "again", num_val=10, seed=0)
    assert flist.read_flist(tmp_path / "again" / "val.flist") == val
    flist.make_flists(tmp_path / "imgs", tmp_path / "other", num_val=10, seed=1)
    assert flist.read_flist(tmp_path / "other" / "val.flist") != val

    # the reference recipe: shuffle the sorted list with random.Random(seed), val first
    import random

    expected = sorted(str(tmp_path / "imgs" / n) for n in images)
    random.Random(0).shuffle(expected)
    assert val == expected[:10] and train == expected[10:]


def test_small_folders_hold_out_ten_percent(tmp_path, caplog):
    _touch_images(tmp_path / "imgs", [f"{i}.jpg" for i in range(20)])
    with caplog.at_level(logging.INFO, logger="piigan_tf"):
        assert flist.make_flists(tmp_path / "imgs", tmp_path / "out", num_val=10) == (18, 2)
    assert "holding out 2" in caplog.text
    assert flist.num_held_out(1, 1000) == 0 and flist.num_held_out(2000, 1000) == 200
    assert flist.num_held_out(2001, 1000) == 1000
    with pytest.raises(ValueError, match="no images"):
        flist.make_flists(tmp_path / "out", tmp_path / "x")


def _run_cli(args, cwd):
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "piigan_tf.cli.flist", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_flist_cli(tmp_path):
    help_run = _run_cli(["--help"], tmp_path)
    assert help_run.returncode == 0 and "--folder" in help_run.stdout and "--num_val" in help_run.stdout

    _touch_images(tmp_path / "mauflex_raw", [f"{i}.jpg" for i in range(30)])
    folder = str(tmp_path / "mauflex_raw")
    run = _run_cli(["--folder", folder, "--name", "mauflex", "--num_val", "5"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert len(flist.read_flist(tmp_path / "data" / "mauflex" / "train.flist")) == 25
    assert len(flist.read_flist(tmp_path / "data" / "mauflex" / "val.flist")) == 5

    missing = _run_cli(["--folder", str(tmp_path / "nowhere"), "--name", "x"], tmp_path)
    assert missing.returncode == 2
    assert "nowhere" in missing.stderr and "not a directory" in missing.stderr


def test_flist_cli_with_a_separate_validation_folder(tmp_path):
    _touch_images(tmp_path / "train", [f"{i}.jpg" for i in range(12)])
    _touch_images(tmp_path / "val", [f"v{i}.png" for i in range(3)])
    run = _run_cli(["--folder", str(tmp_path / "train"), "--val_folder", str(tmp_path / "val"),
                    "--name", "faces"], tmp_path)
    assert run.returncode == 0, run.stderr
    train = flist.read_flist(tmp_path / "data" / "faces" / "train.flist")
    val = flist.read_flist(tmp_path / "data" / "faces" / "val.flist")
    # Everything of each folder, nothing held out, shuffled with seed 0 as the split is.
    assert sorted(train) == flist.list_images(tmp_path / "train") and len(train) == 12
    assert sorted(val) == flist.list_images(tmp_path / "val") and len(val) == 3
    assert train != sorted(train)
    bad = _run_cli(["--folder", str(tmp_path / "train"), "--val_folder", str(tmp_path / "no"),
                    "--name", "x"], tmp_path)
    assert bad.returncode == 2 and "--val_folder" in bad.stderr and "not a directory" in bad.stderr


# ---------------------------------------------------------------- datasets.py


def test_missing_named_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        datasets.resolve_dataset("MauFlex", data_dir=tmp_path / "data")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "python -m piigan_tf.cli.flist --folder /path/to/mauflex --name mauflex" in message
    assert "MauFlex_Dataset.rar" in message and "train.flist" in message
    for name, url_part in [
        ("celeba", "mmlab.ie.cuhk.edu.hk/projects/CelebA.html"),
        ("celebahq", "CelebAMask-HQ"),
        ("plantvillage", "PlantVillage-Dataset"),
    ]:
        with pytest.raises(datasets.DatasetNotFoundError, match=url_part):
            datasets.resolve_dataset(name, data_dir="data-that-does-not-exist")
    with pytest.raises(datasets.DatasetNotFoundError, match="unknown dataset"):
        datasets.resolve_dataset("imagenet", data_dir=tmp_path)


def test_named_dataset_with_lists_resolves(tmp_path):
    flist.write_flist(tmp_path / "celeba" / "train.flist", ["a.jpg"])
    flist.write_flist(tmp_path / "celeba" / "val.flist", ["b.jpg"])
    train, val = datasets.resolve_dataset("celeba", data_dir=tmp_path)
    assert train == str(tmp_path / "celeba" / "train.flist")
    assert val == str(tmp_path / "celeba" / "val.flist")


def test_folder_path_makes_cached_lists(tmp_path, coloured_files):
    folder = os.path.dirname(coloured_files[0])
    train, val = datasets.resolve_dataset(folder, data_dir=tmp_path / "data")
    assert os.path.dirname(os.path.dirname(train)) == str(tmp_path / "data" / "folders")
    assert os.path.basename(os.path.dirname(train)).startswith(os.path.basename(folder) + "-")
    assert len(flist.read_flist(train)) == 9 and len(flist.read_flist(val)) == 1
    stamp = os.path.getmtime(train)
    assert datasets.resolve_dataset(folder, data_dir=tmp_path / "data") == (train, val)
    assert os.path.getmtime(train) == stamp  # cached


def test_folder_lists_never_overwrite_a_named_dataset_or_another_folder(tmp_path):
    # A folder named like a registered dataset, and two folders with one name.
    data = tmp_path / "data"
    flist.write_flist(data / "mauflex" / "train.flist", ["kept.jpg"])
    flist.write_flist(data / "mauflex" / "val.flist", ["kept-val.jpg"])
    lists = {}
    for where in ("x", "y"):
        for name in ("mauflex", "train"):
            folder = tmp_path / where / name
            folder.mkdir(parents=True)
            for i in range(4):
                cv2.imwrite(str(folder / f"{where}{i}.png"), np.full((8, 8, 3), i, np.uint8))
            lists[where, name] = datasets.resolve_dataset(folder, data_dir=data)
    assert flist.read_flist(data / "mauflex" / "train.flist") == [str(data / "mauflex" / "kept.jpg")]
    assert len(set(lists.values())) == 4  # each folder its own cache
    for (where, name), (train, val) in lists.items():
        files = flist.read_flist(train) + flist.read_flist(val)
        assert sorted(os.path.basename(f) for f in files) == [f"{where}{i}.png" for i in range(4)]
        stamp = os.path.getmtime(train)
        assert datasets.resolve_dataset(tmp_path / where / name, data_dir=data) == (train, val)
        assert os.path.getmtime(train) == stamp  # still cached after the others were made


def test_flist_path_uses_sibling_val_or_holds_out(tmp_path, coloured_files):
    flist.write_flist(tmp_path / "lists" / "train.flist", coloured_files)
    flist.write_flist(tmp_path / "lists" / "val.flist", coloured_files[:2])
    assert datasets.resolve_dataset(tmp_path / "lists" / "train.flist", tmp_path / "data") == (
        str(tmp_path / "lists" / "train.flist"),
        str(tmp_path / "lists" / "val.flist"),
    )
    flist.write_flist(tmp_path / "solo" / "all.flist", coloured_files)
    train, val = datasets.resolve_dataset(tmp_path / "solo" / "all.flist", tmp_path / "data")
    assert len(flist.read_flist(train)) == 9 and len(flist.read_flist(val)) == 1
    assert os.path.isfile(tmp_path / "solo" / "all.flist")  # input untouched


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_sample_dataset_builds_offline_and_is_idempotent(tmp_path, no_network):
    # (how long it takes is measured by bench/bench_pipeline.py, not asserted here)
    train, val = datasets.resolve_dataset("sample", data_dir=tmp_path)
    train_files, val_files = flist.read_flist(train), flist.read_flist(val)
    assert len(train_files) == sample.NUM_TRAIN == 240 and len(val_files) == sample.NUM_VAL == 16
    for path in train_files[::40] + val_files[::8]:
        image = pipeline.load_image_file(path)
        assert image.shape == (160, 160, 3) and image.std() > 5
    # validation photos are never used for training
    assert not {os.path.basename(p).rsplit("_", 1)[0] for p in val_files} & {
        os.path.basename(p).rsplit("_", 1)[0] for p in train_files
    }
    stamp = os.path.getmtime(train_files[0])
    assert sample.ensure_sample_dataset(tmp_path) == (train, val)
    assert os.path.getmtime(train_files[0]) == stamp  # not rebuilt

    os.remove(val_files[0])  # incomplete -> rebuilt, identically
    sample.ensure_sample_dataset(tmp_path)
    assert flist.read_flist(val) == val_files and os.path.isfile(val_files[0])

    element = next(iter(pipeline.build_dataset(train, batch_size=4)))
    assert element["images"].shape == (4, 128, 128, 3)
