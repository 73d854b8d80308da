"""A small offline dataset built from the photographs bundled with scikit-image.

``ensure_sample_dataset()`` writes ``data/sample/`` with 240 training and 16
validation PNGs of 160×160 (a little larger than the 128×128 training crop so
random cropping has room), cut at random positions and scales from real
photographs, randomly mirrored. Validation comes from photographs that no
training image uses. It needs no network: the photographs ship inside the
scikit-image wheel. It is for smoke tests, demos and CI, not for quality.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile

import numpy as np

from piigan_tf.data.flist import read_flist, write_flist

logger = logging.getLogger("piigan_tf")

SAMPLE_SIZE = 160
NUM_TRAIN = 240
NUM_VAL = 16
# skimage.data colour photographs shipped in the wheel (no pooch download).
TRAIN_PHOTOS = (
    "astronaut",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "motorcycle_left",
)
VAL_PHOTOS = ("chelsea", "coffee")
# Bump when the recipe changes so existing copies are rebuilt.
_VERSION = 1
_MANIFEST = "sample.json"


def _load_photo(name: str) -> np.ndarray:
    """RGB uint8 photo from skimage.data (imported lazily: only needed to build)."""
    import skimage.data

    if name == "motorcycle_left":
        # stereo_motorcycle() also loads a disparity map; the left view is enough.
        import skimage.io

        return skimage.io.imread(os.path.join(skimage.data.data_dir, "motorcycle_left.png"))[:, :, :3]
    return getattr(skimage.data, name)()[:, :, :3]


#: Public-domain textures bundled with scikit-image, shown to aerial models.
TEXTURES = ("grass", "gravel")

#: The colour ramp of aerial foliage: ``(quantile, RGB)``, the mean colour of
#: the pixels at each brightness quantile of MauFlex's training tiles (from
#: deep shadow through canopy to sunlit ground), measured by
#: ``python bench/aerial_ramp.py --data data/mauflex/train.flist``
#: (:func:`colour_ramp`). Only these seven colours come from the dataset.
AERIAL_RAMP = ((0.02, (4, 18, 3)), (0.1, (23, 56, 6)), (0.3, (66, 111, 16)),
               (0.5, (97, 136, 31)), (0.7, (124, 161, 50)), (0.9, (179, 184, 87)),
               (0.98, (222, 218, 157)))
RAMP_QUANTILES = tuple(q for q, _ in AERIAL_RAMP)


def colour_ramp(images, quantiles=RAMP_QUANTILES, width: float = 0.01):
    """``((q, (r, g, b)), ...)``: the mean colour of the pixels ranked near each brightness quantile.

    Args:
        images: uint8 RGB ``[h, w, 3]`` arrays, pooled.
        quantiles: Brightness quantiles in ``[0, 1]``.
        width: Pixels ranked within ``q ± width`` are averaged.
    """
    pixels = np.concatenate([np.asarray(im, np.float64).reshape(-1, 3) for im in images])
    order = np.argsort(pixels @ np.array([0.299, 0.587, 0.114]), kind="stable")
    n = len(order)
    ramp = []
    for q in quantiles:
        lo = int(np.clip(round((q - width) * n), 0, n - 1))
        hi = int(np.clip(round((q + width) * n), lo + 1, n))
        ramp.append((q, tuple(int(v) for v in np.round(pixels[order[lo:hi]].mean(axis=0)))))
    return tuple(ramp)


def tint(grey: np.ndarray, ramp=AERIAL_RAMP) -> np.ndarray:
    """A grey image coloured by brightness rank: its quantile ``q`` pixel gets the ramp's colour at ``q``.

    Args:
        grey: uint8 ``[h, w]``.
        ramp: ``(quantile, (r, g, b))`` in rising quantile, colours between
            them interpolated linearly, beyond the ends held.

    Returns:
        uint8 RGB ``[h, w, 3]``; brighter grey stays brighter colour.
    """
    grey = np.asarray(grey)
    # The quantile of each grey level: the mid-rank of its pixels.
    counts = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
    below = np.cumsum(counts) - counts
    quantile = (below + counts / 2) / grey.size
    stops = [q for q, _ in ramp]
    lut = np.stack([np.interp(quantile, stops, [c[k] for _, c in ramp]) for k in range(3)], -1)
    return np.round(lut).astype(np.uint8)[grey]


def example_textures() -> list[tuple[str, np.ndarray]]:
    """``(name, uint8 RGB [512, 512, 3])`` textures the project may ship.

    scikit-image's public-domain ``grass`` and ``gravel`` photographs, grey,
    coloured with :data:`AERIAL_RAMP` (:func:`tint`): stand-ins for aerial
    imagery, whose datasets (MauFlex) may not be redistributed. Aerial models
    have only seen colour, so they are shown colour.
    """
    import skimage.data

    return [(name, tint(getattr(skimage.data, name)())) for name in TEXTURES]


def _random_views(photo: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` random squares (side ≥ SAMPLE_SIZE) area-resized to SAMPLE_SIZE², maybe mirrored."""
    import cv2

    height, width = photo.shape[:2]
    views = []
    for _ in range(count):
        side = int(rng.integers(SAMPLE_SIZE, min(height, width) + 1))
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        view = photo[top : top + side, left : left + side]
        view = cv2.resize(view, (SAMPLE_SIZE, SAMPLE_SIZE), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:
            view = view[:, ::-1]
        views.append(np.ascontiguousarray(view))
    return views


def _write_split(root: str, split: str, photos, total: int, rng: np.random.Generator) -> list[str]:
    import cv2

    os.makedirs(os.path.join(root, split))
    names = []
    for index, photo_name in enumerate(photos):
        # Spread `total` views over the photos as evenly as possible.
        count = total // len(photos) + (index < total % len(photos))
        for view in _random_views(_load_photo(photo_name), count, rng):
            name = f"{split}/{photo_name}_{len(names):04d}.png"
            cv2.imwrite(os.path.join(root, name), view[:, :, ::-1])  # RGB -> BGR for OpenCV
            names.append(name)
    return names


def _is_complete(root: str) -> bool:
    """True if ``root`` holds a finished build of the current recipe."""
    try:
        with open(os.path.join(root, _MANIFEST), encoding="utf-8") as handle:
            manifest = json.load(handle)
        train = read_flist(os.path.join(root, "train.flist"))
        val = read_flist(os.path.join(root, "val.flist"))
    except (OSError, ValueError):
        return False
    return (
        manifest.get("version") == _VERSION
        and len(train) == NUM_TRAIN
        and len(val) == NUM_VAL
        and all(os.path.isfile(p) for p in train + val)
    )


def ensure_sample_dataset(data_dir: str | os.PathLike = "data") -> tuple[str, str]:
    """Builds ``<data_dir>/sample/`` on first use and returns its file lists.

    Idempotent: an existing complete build is reused. The build takes about a
    second, is deterministic (fixed seed), and goes through a temporary folder
    renamed into place, so an interrupted build is never mistaken for a
    complete one. ``<data_dir>/sample/`` belongs to this function: an
    incomplete or outdated copy there is replaced.

    Args:
        data_dir: The project's data directory.

    Returns:
        ``(train_flist, val_flist)`` paths. The lists hold paths relative to
        their own folder (``train/….png``), which ``read_flist`` resolves.
    """
    data_dir = os.fspath(data_dir)
    root = os.path.join(data_dir, "sample")
    flists = (os.path.join(root, "train.flist"), os.path.join(root, "val.flist"))
    if _is_complete(root):
        return flists

    logger.info("building the sample dataset in %s from scikit-image photographs", root)
    os.makedirs(data_dir, exist_ok=True)
    build = tempfile.mkdtemp(prefix=".sample-build-", dir=data_dir)
    os.chmod(build, 0o755)  # mkdtemp makes it private; the renamed folder should not be
    try:
        rng = np.random.default_rng(20200310)  # owned generator: no global numpy seed
        train = _write_split(build, "train", TRAIN_PHOTOS, NUM_TRAIN, rng)
        val = _write_split(build, "val", VAL_PHOTOS, NUM_VAL, rng)
        write_flist(os.path.join(build, "train.flist"), train)
        write_flist(os.path.join(build, "val.flist"), val)
        manifest = {
            "version": _VERSION,
            "size": SAMPLE_SIZE,
            "train_photos": TRAIN_PHOTOS,
            "val_photos": VAL_PHOTOS,
            "source": "scikit-image skimage.data photographs (bundled, BSD-licensed package)",
        }
        with open(os.path.join(build, _MANIFEST), "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2)
        if os.path.exists(root):
            if _is_complete(root):  # another process finished first
                return flists
            shutil.rmtree(root)
        try:
            os.rename(build, root)
        except OSError:
            if not _is_complete(root):  # lost a race only if the winner finished
                raise
    finally:
        if os.path.exists(build):
            shutil.rmtree(build, ignore_errors=True)
    return flists


# The astronaut photograph's face (Eileen Collins, NASA; public domain), framed
# as CelebA's aligned crops frame faces: a 178:218 window with the eyes at
# 38 % and 62 % of the width and 50 % of the height, the eye distance 24 % of
# the width. Eye centres in the 512x512 photograph: (200, 102) and (245, 103).
_FACE_EYES = ((200.0, 102.0), (245.0, 103.0))
_CELEBA_EYES = ((68.0, 108.0), (110.0, 108.0))  # in a 178x218 aligned crop
_CELEBA_SIZE = (218, 178)


def example_face() -> np.ndarray:
    """A face the project may ship, framed like a CelebA aligned crop.

    The astronaut photograph bundled with scikit-image (public domain), cut
    and scaled so its eyes sit where CelebA's aligned crops put them; rows
    above the photograph are mirrored in. Face models trained on CelebA
    (``--preset celeba64``) see it as they saw their training faces once it
    is resized to the model's size.

    Returns:
        uint8 RGB ``[218, 178, 3]``.
    """
    import cv2

    photo = _load_photo("astronaut")
    scale = (_CELEBA_EYES[1][0] - _CELEBA_EYES[0][0]) / (_FACE_EYES[1][0] - _FACE_EYES[0][0])
    eye_x = (_FACE_EYES[0][0] + _FACE_EYES[1][0]) / 2
    eye_y = (_FACE_EYES[0][1] + _FACE_EYES[1][1]) / 2
    centre_x = (_CELEBA_EYES[0][0] + _CELEBA_EYES[1][0]) / 2
    # An affine map photo -> crop: scale about the eye midpoint, then place it.
    matrix = np.float32([[scale, 0, centre_x - scale * eye_x],
                         [0, scale, _CELEBA_EYES[0][1] - scale * eye_y]])
    height, width = _CELEBA_SIZE
    return cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REFLECT)
