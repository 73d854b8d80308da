"""Pluralistic sampling: many completions of each image from one batched pass.

The public entry point is :class:`Inpainter`::

    from piigan_tf.inference import Inpainter

    inpainter = Inpainter.from_checkpoint()                # latest under checkpoints/
    # or Inpainter.from_saved_model("export/piigan")       # latest exported version
    samples = inpainter.sample(images, masks, num_samples=10, seed=0)
    # samples: uint8 [B, 10, H, W, 3]

Conventions at this API (they differ from the float convention inside the
networks on purpose: these are the pixels a user has):

* ``images``: uint8 RGB, ``[B, H, W, 3]`` (or one ``[H, W, 3]`` image), any
  ``H`` and ``W``. The generator needs multiples of 8, so the image is padded
  on the bottom and right by repeating its last row/column and the result is
  cropped back; no pixel is cut off (the reference cropped the image to a
  multiple of 8 instead).
* ``masks``: ``[B, H, W, 1]``, ``[B, H, W]``, ``[H, W, 1]`` or ``[H, W]``, one
  per image or one for all. Integer masks: **any non-zero value is a hole**
  (so both 0/255 and 0/1 masks work); bool: True = hole; float: ``>= 0.5``
  is a hole.
* Output: uint8 ``[B, N, H, W, 3]``. Known pixels (mask 0) are the input
  pixels, bit for bit; only hole pixels are generated.
* A mask with **no hole** is not an error: every "sample" is the image
  itself, unchanged (nothing to fill in).
* Noise: ``z`` is float32 standard normal, one ``[H, W, 1]`` field per
  sample, and the noise of sample ``j`` of image ``i`` depends only on
  ``(seed, i, j)`` (the rule is in :mod:`piigan_tf.serving`): an image alone
  or in a batch, N = 3 or the first 3 of N = 10, a checkpoint or the
  exported SavedModel, one call or several (``first_image`` /
  ``first_sample``) — the same seed gives the same samples. Only z's values
  inside the hole matter (the generator multiplies z by the mask).

All samples of all images in a call go through the generator as one batch of
``B * N``; there is no loop over samples. The graph itself lives in
:mod:`piigan_tf.serving` (``InpaintingModule``): a checkpoint-loaded
``Inpainter`` runs the very functions that ``export.py`` saves, which is why
the two give the same numbers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from piigan_tf import serving
from piigan_tf.blending import DEFAULT_BLEND, check_blend, model_blend
from piigan_tf.loading import (CheckpointNotFoundError, default_model_dir, load_generator,
                               no_checkpoint_message, resolve_saved_model)
# Kept importable from here: the reference test.py's mask and the graph functions.
from piigan_tf.data.masks import center_box_mask  # noqa: F401
from piigan_tf.serving import (MAX_SAMPLES, SEED_RANGE, InpaintingModule,  # noqa: F401
                               check_inputs, check_noise, complete_with_noise, sample_noise,
                               scalar_input)

log = logging.getLogger("piigan_tf")
_SEED_RANGE = SEED_RANGE


# ---------------------------------------------------------- host-side checks
def _as_batch(images: Any, masks: Any) -> tuple[np.ndarray, np.ndarray]:
    """Normalises user inputs to uint8 ``[B, H, W, 3]`` and ``[B|1, H, W, 1]``.

    Raises:
        ValueError: with the expected layout and what was given.
    """
    images = np.asarray(images)
    single = images.ndim == 3
    if single:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        hint = ""
        if images.ndim in (3, 4) and images.shape[-1] == 4:
            hint = " (RGBA? drop the alpha channel: images[..., :3])"
        elif images.ndim == 2 or (images.ndim == 4 and images.shape[-1] == 1):
            hint = " (greyscale? repeat it to 3 channels)"
        raise ValueError("images must be uint8 RGB of shape [H, W, 3] or [B, H, W, 3]; got "
                         f"shape {images.shape}{hint}")
    if images.dtype != np.uint8:
        if np.issubdtype(images.dtype, np.integer) and images.size and \
                images.min() >= 0 and images.max() <= 255:
            images = images.astype(np.uint8)
        else:
            raise ValueError(f"images must be uint8 in 0..255; got {images.dtype}"
                             + (" (float images: convert with np.uint8(np.rint(x)) from "
                                "0..255, or np.uint8(np.rint((x + 1) * 127.5)) from [-1, 1])"
                                if np.issubdtype(images.dtype, np.floating) else ""))
    if min(images.shape[:3]) == 0:
        raise ValueError(f"images is empty: shape {images.shape}")

    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None, :, :, None]
    elif masks.ndim == 3:
        # [H, W, C] with one image, [B, H, W] with a batch.
        masks = masks[None] if single else masks[..., None]
    if masks.ndim != 4 or masks.shape[-1] != 1:
        raise ValueError("masks must be [H, W], [H, W, 1], [B, H, W] or [B, H, W, 1] with "
                         f"non-zero = hole; got shape {np.asarray(masks).shape}")
    if masks.shape[1:3] != images.shape[1:3]:
        raise ValueError(f"mask size {masks.shape[1]}x{masks.shape[2]} differs from image size "
                         f"{images.shape[1]}x{images.shape[2]}; resize the mask to the image "
                         "with nearest-neighbour (test.py --mask does this)")
    if masks.shape[0] not in (1, images.shape[0]):
        raise ValueError(f"got {masks.shape[0]} masks for {images.shape[0]} images; pass one "
                         "mask per image or a single mask for all")
    if masks.dtype == bool:
        masks = masks.astype(np.uint8)
    elif np.issubdtype(masks.dtype, np.floating):
        masks = (masks >= 0.5).astype(np.uint8)
    else:
        masks = (masks != 0).astype(np.uint8)
    return np.ascontiguousarray(images), np.ascontiguousarray(masks)


def _check_num_samples(num_samples: Any) -> int:
    if isinstance(num_samples, bool) or int(num_samples) != num_samples or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    return int(num_samples)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or int(seed) != seed or not 0 <= seed < SEED_RANGE:
        raise ValueError(f"seed must be an integer in [0, {SEED_RANGE}), got {seed!r}")
    return int(seed)


# ------------------------------------------------------------ helpers
#: Datasets of aligned faces: their models get the bundled face as example.
FACE_DATASETS = ("celeba", "celebahq")
#: Aerial datasets: their models get public-domain textures as examples.
AERIAL_DATASETS = ("mauflex",)


def example_images(config, num_images: int = 4) -> list[tuple[str, np.ndarray]]:
    """``(name, uint8 RGB)`` examples a model can be shown without any dataset.

    A face model (``DATASET`` celeba or celebahq) gets the astronaut's face
    framed like CelebA (:func:`piigan_tf.data.example_face`); an aerial model
    (mauflex) the grass and gravel textures in aerial colours
    (:func:`piigan_tf.data.sample.example_textures`); any other the first
    ``num_images`` validation images of the embedded sample set. All come
    from scikit-image's public-domain photographs and are brought to the
    model's size as training did (:func:`piigan_tf.data.preprocess.fit_to_model`).
    """
    from piigan_tf.config import Config
    from piigan_tf.data import ensure_sample_dataset, example_face, load_image_file, read_flist
    from piigan_tf.data.preprocess import fit_to_model

    config = config or Config()
    dataset = Path(config.DATASET).name.lower()
    if dataset in FACE_DATASETS:
        return [("astronaut_face", fit_to_model(example_face(), config))]
    if dataset in AERIAL_DATASETS:
        from piigan_tf.data.sample import example_textures

        return [(name, fit_to_model(texture, config))
                for name, texture in example_textures()[:max(1, num_images)]]
    _, val_flist = ensure_sample_dataset(config.DATA_DIR)
    files = read_flist(val_flist)[:max(1, num_images)]
    return [(Path(f).stem, fit_to_model(load_image_file(f), config)) for f in files]


# ------------------------------------------------------------------- API
class Inpainter:
    """Samples many completions per image, from a checkpoint or a SavedModel.

    Build it with :meth:`from_checkpoint` or :meth:`from_saved_model`; then
    call :meth:`sample`. Attributes: ``config`` (the training
    ``piigan_tf.config.Config``, or None when unknown), ``source`` (where the
    weights came from), ``last_seed`` (the seed of the last :meth:`sample`),
    ``blend`` (how generated pixels join the known ones:
    :data:`piigan_tf.blending.BLENDS`).
    """

    #: Largest number of pixels one generator pass of a :meth:`sample` call may
    #: hold: B * N * H * W for images completed whole, N * h * w for the
    #: largest window of a larger one (:mod:`piigan_tf.windows`). Callers
    #: that split requests (test.py) keep each call under it.
    max_pixels: int = 2**23
    #: Largest estimated peak (bytes) of a call (:func:`piigan_tf.windows.estimate`);
    #: None: the memory the machine has available when the call is made.
    max_memory: float | None = None

    def __init__(self, sample_fn, noise_fn, config=None, source: str = "",
                 module: tf.Module | None = None, window: int | None = None,
                 margin: int | None = None, blend: str = DEFAULT_BLEND):
        from piigan_tf import windows

        # (images, masks, num_samples, seed, first_image, first_sample, window, margin) -> uint8
        self._sample_fn = sample_fn
        self._noise_fn = noise_fn        # (images, masks, z, window, margin) -> uint8
        self.config = config
        self.source = source
        self.module = module
        self.blend = check_blend(blend)
        train_hw = config.img_hw if config is not None else None
        #: Least window side (:func:`piigan_tf.windows.default_window`): every
        #: image up to this size is completed whole.
        self.window = int(window or windows.default_window(train_hw))
        #: Context kept on every side of a group of holes (pixels).
        self.margin = int(margin or windows.default_margin(train_hw))
        self.last_seed: int | None = None
        self._offsets_fn = None  # compiled on first use by attention_offsets

    @classmethod
    def from_checkpoint(cls, checkpoint_dir: str | os.PathLike | None = None,
                        root: str | os.PathLike = "checkpoints",
                        blend: str | None = None) -> "Inpainter":
        """Loads the generator of a training run.

        Args:
            checkpoint_dir: folder holding ``checkpoint``, ``ckpt-*`` and
                ``config.yml`` (what ``train.py`` writes), or a shipped model
                folder (``pretrained/celeba64``: ``generator.npz`` +
                ``config.yml``); default: the most recent checkpoint folder
                under ``root``, else the shipped model (:func:`default_model_dir`).
            root: where to look when ``checkpoint_dir`` is None.
            blend: how generated pixels join the known ones: ``"paste"``
                (the reference's rule) or ``"poisson"`` (:mod:`piigan_tf.blending`);
                None: the model's own (its config's ``BLEND``).

        Raises:
            CheckpointNotFoundError: nothing to load (the message says how to train).
        """
        if checkpoint_dir is None:
            checkpoint_dir = default_model_dir(root)
            if checkpoint_dir is None:
                raise CheckpointNotFoundError(no_checkpoint_message(f"{root}/"))
        if blend is not None:
            check_blend(blend)  # before loading anything
        generator, config, path = load_generator(checkpoint_dir)
        return cls.from_generator(generator, config=config, source=path, blend=blend)

    @classmethod
    def from_generator(cls, generator, config=None, source: str = "",
                       blend: str | None = None) -> "Inpainter":
        """Wraps a built generator (e.g. the one being trained) in the sampling API.

        The generator's weights are read when sampling, so later updates of
        them (training steps) show in later samples. ``blend`` None: the
        config's ``BLEND`` (paste without a config).
        """
        blend = model_blend(blend, config)
        # No num_samples cap in-process (the exported model has one): max_pixels
        # and max_memory bound a call, checked before it runs.
        module = InpaintingModule(generator, max_samples=None,
                                  train_hw=config.img_hw if config is not None else None,
                                  blend=blend)
        def sample_fn(images, masks, num_samples, seed, first_image, first_sample, window,
                      margin):
            return module.sample_at(images, masks, num_samples, seed, first_image, first_sample,
                                    window, margin)

        def noise_fn(images, masks, z, window, margin):
            return module.noise_at(images, masks, z, window, margin)

        return cls(sample_fn, noise_fn, config=config, source=source, module=module,
                   window=module.window, margin=module.margin, blend=blend)

    @classmethod
    def from_saved_model(cls, path: str | os.PathLike, blend: str | None = None) -> "Inpainter":
        """Loads a SavedModel written by ``export.py``.

        Args:
            path: a version folder (``export/piigan/3``) or the base folder
                (``export/piigan``: its highest version is used).
            blend: the compositing rule the caller wants; the graph has its
                own (``export.py --blend``), so another one is refused.
                None: the graph's.

        Raises:
            ValueError: ``blend`` is not the one the model was exported with.
        """
        path = resolve_saved_model(path)
        loaded = tf.saved_model.load(str(path))
        serve = loaded.signatures["serving_default"]
        with_noise = loaded.signatures["complete_with_noise"]

        def sample_fn(images, masks, num_samples, seed, first_image, first_sample, window,
                      margin):
            return serve(images=images, masks=masks, num_samples=num_samples,
                         seed=seed)["completions"]

        def noise_fn(images, masks, z, window, margin):
            return with_noise(images=images, masks=masks, z=z)["completions"]

        config = None
        config_file = path / "assets.extra" / "config.yml"
        if config_file.exists():
            from piigan_tf.config import load_config
            config = load_config(config_file)
        # The window and margin the graph was exported with (its windowing is inside it).
        settings = {}
        window_file = path / "assets.extra" / "windows.json"
        if window_file.exists():
            import json
            settings = json.loads(window_file.read_text())
        exported = settings.get("blend", DEFAULT_BLEND)
        if blend is not None and check_blend(blend) != exported:
            raise ValueError(f"{path} was exported with --blend {exported}; export it again "
                             f"with --blend {blend} to serve that")
        inpainter = cls(sample_fn, noise_fn, config=config, source=str(path),
                        window=settings.get("window"), margin=settings.get("margin"),
                        blend=exported)
        inpainter._fixed_window = True
        inpainter._loaded = loaded  # keep the variables alive
        return inpainter

    _fixed_window = False  # a SavedModel: the window is part of its graph

    def sample(self, images, masks, num_samples: int | None = None, seed: int | None = None,
               z=None, *, first_image: int = 0, first_sample: int = 0,
               window: int | None = None) -> np.ndarray:
        """Draws ``num_samples`` completions of each image in one batched pass.

        Args:
            images: uint8 RGB ``[B, H, W, 3]`` or ``[H, W, 3]``, any H and W.
            masks: ``[B|1, H, W(, 1)]`` or ``[H, W(, 1)]``; non-zero (ints),
                True (bool) or ``>= 0.5`` (floats) = hole.
            num_samples: completions per image (default 10, or z's N).
            seed: int; sample ``j`` of image ``i`` depends only on
                ``(seed, i, j)`` (:mod:`piigan_tf.serving`), so a seed gives
                the same samples from a checkpoint or a SavedModel, alone or in
                a batch, for any N. None: a fresh random seed (kept in
                ``self.last_seed``).
            z: optional explicit noise, float ``[B, N, H, W, 1]`` (or
                ``[B, N, H, W]``); replaces ``seed``.
            first_image, first_sample: for a request split into several
                calls: the index of ``images[0]`` in the whole request, and
                of the first sample drawn here. A call with offsets returns
                exactly its part of the unsplit request's samples.
            window: least window side (default ``self.window``): each group
                of holes of an image larger than this is completed in a
                window around it (:mod:`piigan_tf.windows`); an image no
                larger is completed whole. A SavedModel's window is the one
                it was exported with.

        Returns:
            uint8 ``[B, N, H, W, 3]``. Outside the hole, exactly ``images``.
            With a hole-free mask, N copies of the image.

        Raises:
            ValueError: malformed inputs (the message says what is expected),
                a pass larger than ``max_pixels``, or a request whose
                estimated peak memory is over ``max_memory`` (the machine's
                available memory by default; the message says what to lower).
        """
        images, masks = _as_batch(images, masks)
        window = self._check_window(window)
        if not masks.any():
            log.info("mask has no hole: returning the images unchanged")
        if z is not None:
            if seed is not None or first_image or first_sample:
                raise ValueError("pass either seed or z, not both (z replaces the seed and its offsets)")
            z = np.asarray(z, np.float32)
            if z.ndim == 4:
                z = z[..., None]
            b, h, w = images.shape[:3]
            if z.ndim != 5 or z.shape[0] != b or z.shape[2:] != (h, w, 1):
                raise ValueError(f"z must be [B, N, H, W, 1] = [{b}, N, {h}, {w}, 1] for these "
                                 f"images; got shape {z.shape}")
            if num_samples is not None and _check_num_samples(num_samples) != z.shape[1]:
                raise ValueError(f"num_samples={num_samples} but z holds {z.shape[1]} samples")
            if z.shape[1] < 1:
                raise ValueError("z holds no samples")
            self._check_size(images, masks, z.shape[1], window)
            self.last_seed = None
            return self._complete(images, masks, z, window)
        num_samples = _check_num_samples(10 if num_samples is None else num_samples)
        for name, value in (("first_image", first_image), ("first_sample", first_sample)):
            if isinstance(value, bool) or int(value) != value or not 0 <= value < SEED_RANGE:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        self._check_size(images, masks, num_samples, window)
        if seed is None:
            seed = secrets.randbelow(SEED_RANGE)
        self.last_seed = _check_seed(seed)
        if self._fixed_window and (first_image or first_sample):
            # A SavedModel's signatures take no offsets: the part's noise, drawn
            # host-side by the graph's own rule.
            z = self.noise(images, num_samples, seed, first_image=first_image,
                           first_sample=first_sample)
            return self._complete(images, masks, z, window)
        with _graph_errors_as_value_errors():
            return self._sample_fn(*(tf.constant(v) for v in (images, masks)), *(
                tf.constant(int(v), tf.int32)
                for v in (num_samples, seed, first_image, first_sample, window,
                          self.margin))).numpy()

    def _check_window(self, window) -> int:
        if window is None:
            return self.window
        if isinstance(window, bool) or int(window) != window or window < 8:
            raise ValueError(f"window must be an integer of at least 8 pixels, got {window!r}")
        if self._fixed_window and int(window) != self.window:
            raise ValueError(f"this SavedModel completes holes in windows of {self.window} "
                             "pixels (set at export: export.py --window); load the checkpoint "
                             "to choose another")
        return int(window)

    def _complete(self, images: np.ndarray, masks: np.ndarray, z: np.ndarray,
                  window: int) -> np.ndarray:
        with _graph_errors_as_value_errors():
            return self._noise_fn(tf.constant(images), tf.constant(masks), tf.constant(z),
                                  tf.constant(window, tf.int32),
                                  tf.constant(self.margin, tf.int32)).numpy()

    def pass_size(self, masks, num_samples: int = 1, window: int | None = None
                  ) -> tuple[float, int, int]:
        """``(estimated peak bytes, height, width)`` of the largest generator pass
        that sampling images with ``masks`` (uint8 ``[B, H, W, 1]``, non-zero =
        hole) makes: the whole image, or its largest window."""
        from piigan_tf import windows

        masks = np.asarray(masks)
        masks = masks.reshape(masks.shape[:3] + (1,)) if masks.ndim == 3 else masks
        return windows.estimate((masks != 0).astype(np.uint8), num_samples,
                                self._check_window(window), self.margin)

    def memory_limit(self) -> float | None:
        """Bytes a call may use: ``max_memory``, else what the machine has available."""
        from piigan_tf import windows

        return self.max_memory if self.max_memory is not None else windows.available_memory()

    def _check_size(self, images: np.ndarray, masks: np.ndarray, num_samples: int,
                    window: int) -> None:
        b, h, w = images.shape[:3]
        masks = np.broadcast_to(masks, (b, h, w, 1))
        needed, ph, pw = self.pass_size(masks, num_samples, window)
        together = b if (ph, pw) == (h, w) else 1  # windowed images go one at a time
        pixels = together * num_samples * ph * pw
        if pixels > self.max_pixels:
            raise ValueError(
                f"this call puts {together} image(s) x {num_samples:,} samples x {ph}x{pw} = "
                f"{pixels:,} pixels through the generator in one pass (about "
                f"{needed / 1e9:.1f} GB of memory); the limit is {self.max_pixels:,} "
                "(Inpainter.max_pixels). Ask for fewer samples per call (several calls with "
                "the same seed and first_sample offsets) or a smaller window, or raise "
                "inpainter.max_pixels if the machine has the memory")
        limit = self.memory_limit()
        if limit is not None and needed > limit:
            from piigan_tf import windows

            raise ValueError(windows.memory_message(needed, limit, b, num_samples, h, w, ph, pw)
                             .numpy().decode())

    def noise(self, images, num_samples: int, seed: int, *, first_image: int = 0,
              first_sample: int = 0) -> np.ndarray:
        """The z that ``sample(images, ..., num_samples, seed, first_image=, first_sample=)``
        uses: float32 ``[B, N, H, W, 1]``."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        b, h, w = images.shape[:3]
        return serving.noise(seed, b, num_samples, h, w, first_image, first_sample)

    def attention_offsets(self, images, masks, seed: int, *, first_image: int = 0
                          ) -> tuple[np.ndarray, np.ndarray]:
        """Sample 0 of each image, and where its contextual attention copied from.

        The generator's attention layer fills the hole's features with soft
        copies of known patches; the offsets are the (dy, dx) of the patch
        each position took the most from. Colour them with
        :func:`piigan_tf.utils.flow_to_image` (``test.py --show_flow`` does).

        Args:
            images, masks: As for :meth:`sample`.
            seed, first_image: As for :meth:`sample`: the sample is sample 0
                of ``sample(images, masks, N, seed, first_image=first_image)``.

        Returns:
            ``(samples, offsets)``: uint8 ``[B, H, W, 3]``, and int32
            ``[B, ceil(H / 8), ceil(W / 8), 2]``: one (dy, dx) per 8 x 8 cell
            of the image (padded to a multiple of 8), counted in cells; 0 where
            a known patch matched itself.

        Raises:
            ValueError: malformed inputs or seed, a request over
                ``max_pixels``, or an Inpainter without the generator (loaded
                from a SavedModel, whose signatures return completions only).
        """
        generator = getattr(self.module, "generator", None)
        if generator is None:
            raise ValueError("attention offsets need the generator itself: load the model with "
                             "Inpainter.from_checkpoint (an exported SavedModel returns "
                             "completions only)")
        images, masks = _as_batch(images, masks)
        # The offsets are of the whole image (one pass): checked as such.
        self._check_size(images, masks, 1, max(images.shape[1:3]))
        z = self.noise(images, 1, _check_seed(seed), first_image=first_image)
        if self._offsets_fn is None:
            # Compiled as the sampling functions are, so the sample's pixels
            # are theirs (eager kernels round differently now and then).
            def offsets_fn(images, masks, z):
                images, masks = serving.check_inputs(images, masks)
                return serving.complete_with_noise(generator, images, masks, z,
                                                   return_offsets=True, blend=self.blend)

            spec = tf.TensorSpec(None, tf.uint8)
            self._offsets_fn = tf.function(offsets_fn, input_signature=[
                spec, spec, tf.TensorSpec(None, tf.float32)])
        with _graph_errors_as_value_errors():
            samples, offsets = self._offsets_fn(tf.constant(images), tf.constant(masks),
                                                tf.constant(z))
        return samples.numpy()[:, 0], offsets.numpy()[:, 0]


@contextlib.contextmanager
def _graph_errors_as_value_errors():
    """Re-raises a failed in-graph check as ValueError with just its message."""
    try:
        yield
    except tf.errors.InvalidArgumentError as e:
        text = e.message
        if "assertion failed:" in text:
            text = text.split("assertion failed:", 1)[1].split("\n\t [[", 1)[0].strip()
        raise ValueError(text) from None
