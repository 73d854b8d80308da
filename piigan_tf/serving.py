"""The serving graph: everything the exported SavedModel runs, in core TensorFlow ops.

:class:`InpaintingModule` holds the generator and three compiled functions,
which are also the SavedModel's signatures (``piigan_tf.export`` writes them;
``Inpainter.from_checkpoint`` runs the very same functions in process, which
is why a checkpoint and its export give the same numbers):

``serving_default``
    inputs  ``images``      uint8 ``[batch, H, W, 3]`` RGB, any H and W
            ``masks``       uint8 ``[batch, H, W, 1]`` (or ``[1, H, W, 1]`` for
                            all images), non-zero = hole
            ``num_samples`` int32 scalar, 1..``max_samples``
            ``seed``        int32 scalar; ``>= 0`` reproducible, ``< 0`` random
    output  ``completions`` uint8 ``[batch, num_samples, H, W, 3]``

``sample_bytes`` (encoded images, TF Serving's convention for image models)
    inputs  ``images_bytes`` string ``[batch]``: PNG or JPEG file bytes, all
                             images of one size
            ``masks_bytes``  string ``[batch]`` (or ``[1]`` for all images): PNG
                             (or JPEG) of the image's size, white (> 127) = hole
            ``num_samples``, ``seed`` as above
    output  ``completions_bytes`` string ``[batch, num_samples]``: PNG bytes

``complete_with_noise``
    inputs  ``images``, ``masks`` as above, ``z`` float32 ``[batch, N, H, W, 1]``
    output  ``completions`` uint8 ``[batch, N, H, W, 3]``

**The noise rule** (one for the Python API, test.py, evaluate.py, the demo and
every signature): sample ``j`` of image ``i`` gets::

    z[i, j] = tf.random.stateless_normal([H, W, 1], seed=tf.random.fold_in([seed, i], j))

(int32 seed, ``i`` the image's index in the request, ``j`` the sample's;
both ops use Philox, which is what ``auto_select`` picks on CPUs and GPUs).
It depends on nothing else: not on the batch size, on N, on the other
images, or on how a request is split into calls (callers that split pass the
offsets of their part, :func:`sample_noise`'s ``first_image`` /
``first_sample``). So the first 3 samples of N = 10 are the samples of N = 3,
and an image alone gets the samples it gets in a batch.

**Windows** (:mod:`piigan_tf.windows`): an image larger than the module's
``window`` on a side has each group of holes completed in a window around it,
planned and run inside the graph (:func:`complete_request`); smaller images
are completed whole, as before. A module built with ``max_memory`` refuses a
request whose estimated peak is larger (:func:`check_memory`) and an image in
``sample_bytes`` too large to decode (from its header), with
INVALID_ARGUMENT and a message saying what to lower.

The inputs are declared with unknown shape on purpose: TF Serving does not
check request shapes against a signature, so the graph checks them itself
(:func:`check_inputs`, :func:`decode_images`) and answers a malformed request
with INVALID_ARGUMENT and a message saying what was expected. The scalars
also accept ``[batch]`` vectors of one repeated value, which is what the REST
"instances" format sends. There is no ``py_func``, so
``tensorflow_model_server`` runs the model as is; :func:`graph_op_types`
lists the ops for the tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf

from piigan_tf import windows as win
from piigan_tf.blending import DEFAULT_BLEND, check_blend, poisson_blend

#: Largest ``num_samples`` the exported signatures accept (bounds the batch the
#: server allocates for one request).
MAX_SAMPLES = 64
#: Seeds are int32 in ``[0, SEED_RANGE)``.
SEED_RANGE = 2**31 - 1

#: Ops that call back into Python: a SavedModel holding one cannot be served.
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})


# ------------------------------------------------------------------ noise
def sample_noise(seed, batch, num_samples, height, width, first_image=0,
                 first_sample=0) -> tf.Tensor:
    """The noise a seed stands for: float32 ``[B, N, H, W, 1]``, standard normal.

    ``z[b, n]`` is the noise of sample ``first_sample + n`` of image
    ``first_image + b`` under the module's noise rule:
    ``tf.random.stateless_normal([H, W, 1], seed=tf.random.fold_in([seed, i], j))``.
    Runs in the exported graph and in Python alike (stateless ops only).
    """
    seed = tf.cast(seed, tf.int32)
    batch, num_samples = tf.cast(batch, tf.int32), tf.cast(num_samples, tf.int32)
    images = tf.range(batch, dtype=tf.int32) + tf.cast(first_image, tf.int32)
    samples = tf.range(num_samples, dtype=tf.int32) + tf.cast(first_sample, tf.int32)
    pairs = tf.stack([tf.repeat(images, num_samples), tf.tile(samples, [batch])], axis=1)
    field = tf.cast(tf.stack([height, width, 1]), tf.int32)

    def one(pair):
        # Philox named, not "auto_select": the same numbers on every device.
        key = tf.random.fold_in(tf.stack([seed, pair[0]]), pair[1], alg="philox")
        return tf.random.stateless_normal(field, seed=key, alg="philox")

    z = tf.map_fn(one, pairs, fn_output_signature=tf.TensorSpec([None, None, 1], tf.float32))
    return tf.reshape(z, tf.concat([[batch, num_samples], field], 0))


@tf.function(input_signature=[tf.TensorSpec([], tf.int32)] * 7)
def _compiled_noise(seed, batch, num_samples, height, width, first_image, first_sample):
    return sample_noise(seed, batch, num_samples, height, width, first_image, first_sample)


def noise(seed: int, batch: int, num_samples: int, height: int, width: int,
          first_image: int = 0, first_sample: int = 0):
    """:func:`sample_noise` as a numpy array, compiled once (for host-side callers)."""
    return _compiled_noise(*(tf.constant(int(v), tf.int32) for v in (
        seed, batch, num_samples, height, width, first_image, first_sample))).numpy()


# ------------------------------------------------------------ input checks
def _shape4(x: tf.Tensor) -> tf.Tensor:
    """``tf.shape(x)`` padded/truncated to 4 entries: safe to index at any rank."""
    return tf.concat([tf.shape(x), tf.zeros([4], tf.int32)], axis=0)[:4]


def check_inputs(images: tf.Tensor, masks: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Validates uint8 images/masks inside the graph and gives them static ranks.

    The serving signature declares its inputs with unknown shape, because
    TF Serving does not check request shapes against a signature: a malformed
    request would otherwise fail in some op deep inside the network. Here it
    fails first, in an assertion whose message says what was expected.

    Returns:
        ``(images [B, H, W, 3], masks [B, H, W, 1])``; a mask batch of 1 is
        broadcast to B.

    Raises (when run):
        tf.errors.InvalidArgumentError: wrong rank, channel count, empty
        batch or image, or a mask whose size differs from its image.
    """
    img_shape, mask_shape = _shape4(images), _shape4(masks)
    rank_ok = tf.debugging.Assert(
        tf.logical_and(tf.equal(tf.rank(images), 4), tf.equal(img_shape[3], 3)),
        ["images must be uint8 RGB of shape [batch, height, width, 3]; got shape",
         tf.shape(images)], summarize=8, name="check_images_shape")
    mask_ok = tf.debugging.Assert(
        tf.logical_and(tf.equal(tf.rank(masks), 4), tf.equal(mask_shape[3], 1)),
        ["masks must be uint8 of shape [batch, height, width, 1] (non-zero = hole); got shape",
         tf.shape(masks)], summarize=8, name="check_masks_shape")
    with tf.control_dependencies([rank_ok, mask_ok]):
        nonempty = tf.debugging.Assert(
            tf.reduce_all(img_shape[:3] > 0),
            ["images must hold at least one image of at least 1x1 pixels; got shape",
             tf.shape(images)], summarize=8, name="check_images_nonempty")
        same_size = tf.debugging.Assert(
            tf.logical_and(tf.reduce_all(tf.equal(img_shape[1:3], mask_shape[1:3])),
                           tf.logical_or(tf.equal(mask_shape[0], img_shape[0]),
                                         tf.equal(mask_shape[0], 1))),
            ["masks must match the images in height and width (and be one per image, "
             "or a single mask for all); images shape", tf.shape(images),
             "masks shape", tf.shape(masks)], summarize=8, name="check_mask_matches_image")
    with tf.control_dependencies([nonempty, same_size]):
        images = tf.ensure_shape(tf.identity(images), [None, None, None, 3])
        masks = tf.ensure_shape(tf.identity(masks), [None, None, None, 1])
        masks = tf.broadcast_to(masks, tf.concat([tf.shape(images)[:3], [1]], 0))
    return images, masks


def scalar_input(x: tf.Tensor, name: str) -> tf.Tensor:
    """A scalar from a scalar or from a batch of equal values.

    TF Serving's REST "instances" format repeats every input per instance, so
    ``num_samples`` and ``seed`` may arrive as ``[B]`` vectors; all entries
    must then agree.
    """
    flat = tf.reshape(x, [-1])
    ok = tf.debugging.Assert(
        tf.logical_and(tf.size(flat) > 0, tf.reduce_all(tf.equal(flat, flat[:1]))),
        [f"{name} must be a scalar (or the same value repeated per instance); got", x],
        summarize=8, name=f"check_{name}")
    with tf.control_dependencies([ok]):
        return tf.identity(flat[0])


def check_noise(z: tf.Tensor, images: tf.Tensor) -> tf.Tensor:
    """Validates explicit noise ``[B, N, H, W, 1]`` against ``images``."""
    z_shape = tf.concat([tf.shape(z), tf.zeros([5], tf.int32)], axis=0)[:5]
    img_shape = tf.shape(images)
    ok = tf.debugging.Assert(
        tf.logical_and(
            tf.equal(tf.rank(z), 5),
            tf.reduce_all(tf.equal(tf.gather(z_shape, [0, 2, 3, 4]),
                                   tf.concat([img_shape[:3], [1]], 0)))),
        ["z must be float32 [batch, num_samples, height, width, 1] matching the images; "
         "images shape", img_shape, "z shape", tf.shape(z)], summarize=8, name="check_z_shape")
    with tf.control_dependencies([ok]):
        nonempty = tf.debugging.Assert(z_shape[1] > 0, ["z has no samples: shape", tf.shape(z)],
                                       summarize=8, name="check_z_nonempty")
    with tf.control_dependencies([nonempty]):
        return tf.ensure_shape(tf.identity(z), [None, None, None, None, 1])


def check_num_samples(num_samples: tf.Tensor, max_samples: int | None) -> tf.Tensor:
    """``num_samples`` (a scalar, or repeated per instance) checked to be in
    ``1..max_samples`` (no upper bound when ``max_samples`` is None)."""
    n = scalar_input(num_samples, "num_samples")
    if max_samples is None:
        ok, text = n >= 1, "num_samples must be at least 1; got"
    else:
        ok, text = tf.logical_and(n >= 1, n <= max_samples), \
            f"num_samples must be in 1..{max_samples}; got"
    check = tf.debugging.Assert(ok, [text, n], summarize=8, name="check_num_samples")
    with tf.control_dependencies([check]):
        return tf.identity(n)


# ------------------------------------------------------- encoded images
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encoded_size(data: tf.Tensor) -> tf.Tensor:
    """``(height, width)`` int64 ``[2]`` of a PNG or JPEG string, read from its
    header without decoding (PNG: the IHDR chunk; JPEG: its SOF marker)."""
    is_png = tf.equal(tf.strings.substr(data, 0, 8), _PNG_SIGNATURE)

    def png():
        header = tf.strings.substr(tf.strings.join([data, "\0" * 24]), 16, 8)
        raw = tf.cast(tf.io.decode_raw(header, tf.uint8), tf.int64)
        big_endian = lambda b: ((b[0] * 256 + b[1]) * 256 + b[2]) * 256 + b[3]  # noqa: E731
        return tf.stack([big_endian(raw[4:]), big_endian(raw[:4])])

    def jpeg():
        return tf.cast(tf.io.extract_jpeg_shape(data)[:2], tf.int64)

    return tf.cond(is_png, png, jpeg)


def _decode_one(data: tf.Tensor, index: tf.Tensor, name: str, channels: int,
                max_pixels=None) -> tf.Tensor:
    """One PNG/JPEG string to uint8 ``[H, W, channels]``, with a readable error.

    ``max_pixels``: refuse (before decoding) an image with more pixels.
    """
    is_png = tf.equal(tf.strings.substr(data, 0, 8), _PNG_SIGNATURE)
    ok = tf.debugging.Assert(
        tf.logical_or(is_png, tf.io.is_jpeg(data)),
        [tf.strings.format(f"{name}[{{}}] is not a PNG or JPEG file ({{}} bytes); send the "
                           "bytes of the image file itself (in a REST request base64-encoded, "
                           "as the value of a b64 key)", [index, tf.strings.length(data)])],
        name=f"check_{name}_format")
    checks = [ok]
    if max_pixels is not None:
        with tf.control_dependencies([ok]):
            hw = encoded_size(data)
        limit = tf.cast(max_pixels, tf.float64)
        checks.append(tf.debugging.Assert(
            tf.cast(hw[0] * hw[1], tf.float64) <= limit,
            [tf.strings.format(f"{name}[{{}}] is {{}}x{{}} pixels: too large to decode within "
                               "the memory a request is allowed (at most {} pixels for these "
                               "num_samples); send a smaller image, or lower the number of "
                               "samples (num_samples) or raise the limit (max_memory)",
                               [index, hw[0], hw[1], tf.cast(limit, tf.int64)])],
            name=f"check_{name}_pixels"))
    with tf.control_dependencies(checks):
        image = tf.io.decode_image(tf.identity(data), channels=channels, dtype=tf.uint8,
                                   expand_animations=False)
    return tf.ensure_shape(image, [None, None, channels])


def _decode_all(strings: tf.Tensor, name: str, channels: int, hw: tf.Tensor | None,
                max_pixels=None) -> tf.Tensor:
    flat = tf.reshape(strings, [-1])
    size = tf.size(flat)
    nonempty = tf.debugging.Assert(size > 0, [f"{name} holds no image"], name=f"check_{name}_empty")
    with tf.control_dependencies([nonempty]):
        flat = tf.identity(flat)
    if hw is None:  # all must have the size of the first
        hw = tf.shape(_decode_one(flat[0], tf.constant(0), name, channels, max_pixels))[:2]
        what = f"{name}[0] is"
    else:
        what = "the images are"

    def one(args):
        data, index = args
        image = _decode_one(data, index, name, channels, max_pixels)
        same = tf.debugging.Assert(
            tf.reduce_all(tf.equal(tf.shape(image)[:2], hw)),
            [tf.strings.format(f"{name}[{{}}] is {{}}x{{}} (height x width) but {what} "
                               "{}x{}; all images of a request must have one size, and each "
                               "mask the size of the images",
                               [index, tf.shape(image)[0], tf.shape(image)[1], hw[0], hw[1]])],
            name=f"check_{name}_size")
        with tf.control_dependencies([same]):
            return tf.identity(image)

    return tf.map_fn(one, (flat, tf.range(size)),
                     fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8))


def decode_images(images_bytes: tf.Tensor, max_pixels=None) -> tf.Tensor:
    """PNG/JPEG strings (a scalar or ``[B]``) to uint8 RGB ``[B, H, W, 3]``.

    ``max_pixels``: an image with more pixels (read from its header) is
    refused before it is decoded.

    Raises (when run):
        tf.errors.InvalidArgumentError: a string that is not a PNG or JPEG
        file, images of different sizes, or one over ``max_pixels``.
    """
    return _decode_all(images_bytes, "images_bytes", 3, None, max_pixels)


def decode_masks(masks_bytes: tf.Tensor, image_hw: tf.Tensor) -> tf.Tensor:
    """PNG (or JPEG) mask strings to uint8 ``[B, H, W, 1]`` in {0, 1}; grey > 127 = hole.

    Colour masks are read as their grey level. Each must be ``image_hw`` in size.
    """
    masks = _decode_all(masks_bytes, "masks_bytes", 1, image_hw)
    return tf.cast(masks > 127, tf.uint8)


def encode_pngs(completions: tf.Tensor) -> tf.Tensor:
    """uint8 ``[B, N, H, W, 3]`` to PNG strings ``[B, N]``."""
    shape = tf.shape(completions)
    flat = tf.reshape(completions, tf.concat([[-1], shape[2:]], 0))
    pngs = tf.map_fn(tf.io.encode_png, flat, fn_output_signature=tf.TensorSpec([], tf.string))
    return tf.reshape(pngs, shape[:2])


# ------------------------------------------------------------- generator
def complete_with_noise(generator, images: tf.Tensor, masks: tf.Tensor,
                        z: tf.Tensor, return_offsets: bool = False, blend: str = DEFAULT_BLEND):
    """Runs the generator once on all ``B * N`` (image, noise) pairs.

    Args:
        generator: ``piigan_tf.networks.Generator``.
        images: uint8 ``[B, H, W, 3]`` (checked with :func:`check_inputs`).
        masks: uint8 ``[B, H, W, 1]``, non-zero = hole.
        z: float32 ``[B, N, H, W, 1]``.
        return_offsets: Also return the contextual attention's offsets (for
            visualisation; the exported signatures do not ask for them).
        blend: how the generated pixels join the known ones
            (:data:`piigan_tf.blending.BLENDS`).

    Returns:
        uint8 ``[B, N, H, W, 3]``: generated pixels in the hole, the input
        pixels (bit-identical) elsewhere. With ``return_offsets``, the pair
        ``(completions, offsets)``, offsets int32 ``[B, N, Hp / 8, Wp / 8, 2]``
        on the image padded to ``Hp x Wp`` (multiples of 8): one (dy, dx) per
        8 x 8 cell, in cells (see ``Generator``).
    """
    shape = tf.shape(images)
    b, h, w = shape[0], shape[1], shape[2]
    n = tf.shape(z)[1]
    hole = tf.not_equal(masks, 0)                                   # [B, H, W, 1]
    # Pad to a multiple of 8 (bottom/right) by repeating the last row and
    # column: works for any size (tf.pad's REFLECT needs size > pad) and gives
    # attention plausible context. The padding is known (mask 0) and cropped.
    hp, wp = (h + 7) // 8 * 8, (w + 7) // 8 * 8
    rows = tf.minimum(tf.range(hp), h - 1)
    cols = tf.minimum(tf.range(wp), w - 1)
    x = tf.cast(images, tf.float32) / 127.5 - 1.0
    x = tf.gather(tf.gather(x, rows, axis=1), cols, axis=2)
    m = tf.pad(tf.cast(hole, tf.float32), [[0, 0], [0, hp - h], [0, wp - w], [0, 0]])
    z = tf.pad(tf.cast(z, tf.float32), [[0, 0], [0, 0], [0, hp - h], [0, wp - w], [0, 0]])
    # Sample j of image i is row i * N + j of the batch.
    x = tf.repeat(x, n, axis=0)
    m = tf.repeat(m, n, axis=0)
    z = tf.reshape(z, tf.stack([b * n, hp, wp, 1]))
    # An odd batch above 1 gets one more row (a copy of the last): oneDNN's CPU
    # kernels round differently for odd batch sizes than for 1 and even ones
    # (up to 4e-6 here, enough to flip a rounded pixel now and then), and a
    # sample must not depend on how many others share its call.
    rows = b * n
    extra = tf.where(rows > 1, rows % 2, 0)
    padded = tf.concat([tf.range(rows), tf.fill([extra], rows - 1)], axis=0)
    x, m, z = (tf.gather(t, padded) for t in (x, m, z))
    if return_offsets:
        _, refined, offsets = generator((x * (1.0 - m), m, z), return_offsets=True)
    else:
        _, refined = generator((x * (1.0 - m), m, z))
    refined = (tf.cast(refined, tf.float32)[:rows, :h, :w, :] + 1.0) * 127.5
    if check_blend(blend) == "poisson":
        refined = poisson_blend(refined, tf.cast(tf.repeat(images, n, axis=0), tf.float32),
                                tf.repeat(hole, n, axis=0))
    generated = tf.cast(tf.clip_by_value(tf.round(refined), 0.0, 255.0), tf.uint8)
    generated = tf.reshape(generated, tf.stack([b, n, h, w, 3]))
    # Compose in uint8 so known pixels are the input bytes, not a float round trip.
    completions = tf.where(hole[:, None], generated, images[:, None])
    if not return_offsets:
        return completions
    offsets = tf.reshape(offsets[:rows], tf.concat([tf.stack([b, n]), tf.shape(offsets)[1:]], 0))
    return completions, offsets


def complete_request(generator, images: tf.Tensor, masks: tf.Tensor, num_samples, window,
                     margin, *, seed=None, z=None, first_image=0, first_sample=0,
                     whole: bool | None = None, blend: str = DEFAULT_BLEND) -> tf.Tensor:
    """The one completion rule: windows around the holes (:mod:`piigan_tf.windows`).

    Images no larger than ``window`` on both sides are completed whole by
    :func:`complete_with_noise`, as they always were (bit for bit); larger
    ones one image at a time, each group of holes in its window, with the
    noise rule's fields cut to the window.

    Args:
        generator: ``piigan_tf.networks.Generator``.
        images, masks: uint8 ``[B, H, W, 3]``, ``[B, H, W, 1]`` (checked).
        num_samples: N (int32 scalar; with ``z``, z's N).
        window, margin: int32 scalars (:func:`piigan_tf.windows.default_window`).
        seed, first_image, first_sample: the noise rule's seed and offsets, or
        z: explicit noise float32 ``[B, N, H, W, 1]``.
        whole: True or False when the caller knows whether the images fit in
            one window (:func:`piigan_tf.windows.fits_whole`): only that
            branch is built (a caller with known shapes traces half the
            graph); None: decided in the graph.
        blend: how generated pixels join the known ones
            (:data:`piigan_tf.blending.BLENDS`; in a window, the window's known pixels).

    Returns:
        uint8 ``[B, N, H, W, 3]``.
    """
    shape = tf.shape(images)
    b, h, w = shape[0], shape[1], shape[2]
    n = tf.cast(num_samples, tf.int32)

    def whole_image():
        noise = z if z is not None else sample_noise(seed, b, n, h, w, first_image, first_sample)
        return complete_with_noise(generator, images, masks, noise, blend=blend)

    def windowed():
        def complete_fn(part, part_mask, part_z):
            return complete_with_noise(generator, part, part_mask, part_z, blend=blend)

        def one(i):
            plan, labels = win.plan_windows(masks[i], window, margin)
            if z is not None:
                def noise_fn(box):
                    return z[i, :, box[0]:box[0] + box[2], box[1]:box[1] + box[3]]
            else:
                def noise_fn(box):
                    return win.window_noise(seed, i + tf.cast(first_image, tf.int32),
                                            first_sample, n, w, box)
            return win.complete_windows(complete_fn, images[i], masks[i], plan, labels, n,
                                        noise_fn)

        return tf.map_fn(one, tf.range(b), parallel_iterations=1,
                         fn_output_signature=tf.TensorSpec([None, None, None, 3], tf.uint8))

    if whole is not None:
        return whole_image() if whole else windowed()
    return tf.cond(win.fits_whole(h, w, window), whole_image, windowed)


def check_memory(masks: tf.Tensor, num_samples, window, margin, max_memory) -> tf.Operation:
    """An assertion that the request's estimated peak (:func:`piigan_tf.windows.request_bytes`)
    is at most ``max_memory`` bytes; it fails with the refusal's one line."""
    shape = tf.shape(masks)
    largest, wh, ww = win.largest_pass(masks, num_samples, window, margin)
    needed = win.request_bytes(shape[0], num_samples, shape[1], shape[2], largest)
    allowed = tf.cast(max_memory, tf.float64)
    message = win.memory_message(needed, allowed, shape[0], num_samples, shape[1], shape[2],
                                 wh, ww)
    return tf.debugging.Assert(needed <= allowed, [message], name="check_memory")


# ---------------------------------------------------------------- module
_IMAGES = tf.TensorSpec(None, tf.uint8, name="images")
_MASKS = tf.TensorSpec(None, tf.uint8, name="masks")
_NUM_SAMPLES = tf.TensorSpec(None, tf.int32, name="num_samples")
_SEED = tf.TensorSpec(None, tf.int32, name="seed")


class _Untracked:
    """Holds an object without making it a SavedModel dependency."""

    def __init__(self, value):
        self.value = value


class InpaintingModule(tf.Module):
    """The exported computation: the generator plus pre/post-processing.

    ``sample``, ``sample_bytes`` and ``complete_with_noise`` are compiled once
    for all input shapes (``tf.function`` with unknown-shape signatures).
    ``Inpainter.from_checkpoint`` runs these same functions, so live and
    exported models give identical numbers.

    Args:
        generator: a built ``piigan_tf.networks.Generator``.
        max_samples: largest ``num_samples`` a request may ask for (None: no
            cap, for in-process use where ``Inpainter.max_pixels`` bounds a call).
        blend: how generated pixels join the known ones
            (:data:`piigan_tf.blending.BLENDS`), fixed for the module.
    """

    def __init__(self, generator, max_samples: int | None = MAX_SAMPLES, *,
                 train_hw=None, window: int | None = None, margin: int | None = None,
                 max_memory: float | None = None, blend: str = DEFAULT_BLEND):
        super().__init__(name="piigan_inpainting")
        # Track the tf.Variables behind the generator's Keras variables, not the
        # Keras model: a Keras 3 variable exports as a *copy* of its tf.Variable,
        # so the session-based loaders (tensorflow_model_server, saved_model_cli)
        # would restore the copy while the functions read the original, never
        # initialised ("Could not find variable", keras-team/keras#20095).
        # Keras's ExportArchive tracks the captured tf.Variables the same way.
        self._holder = _Untracked(generator)
        self.generator_variables = [v.value for v in generator.weights]
        self.max_samples = None if max_samples is None else int(max_samples)
        self.window = int(window or win.default_window(train_hw))
        self.margin = int(margin or win.default_margin(train_hw))
        self.max_memory = None if max_memory is None else float(max_memory)
        self.blend = check_blend(blend)
        scalar = tf.TensorSpec([], tf.int32)
        # The compiled functions are kept out of the module's attributes: the
        # SavedModel holds them as its signatures only (tf.saved_model.save
        # would otherwise trace every tf.function attribute once more). The
        # last four are for in-process use (noise offsets, a window per call;
        # the whole-image and windowed forms apart, so that a call traces only
        # the one it needs) and are not exported.
        self._compiled = _Untracked({
            "sample": tf.function(self._sample, input_signature=[
                _IMAGES, _MASKS, _NUM_SAMPLES, _SEED]),
            "sample_bytes": tf.function(self._sample_bytes, input_signature=[
                tf.TensorSpec(None, tf.string, name="images_bytes"),
                tf.TensorSpec(None, tf.string, name="masks_bytes"), _NUM_SAMPLES, _SEED]),
            "complete_with_noise": tf.function(self._complete_with_noise, input_signature=[
                _IMAGES, _MASKS, tf.TensorSpec(None, tf.float32, name="z")]),
            **{f"sample_{kind}": tf.function(
                lambda *args, whole=whole: self._sample_at(*args, whole=whole), input_signature=[
                    _IMAGES, _MASKS, scalar, scalar, scalar, scalar, scalar, scalar])
               for kind, whole in (("whole", True), ("windowed", False))},
            **{f"noise_{kind}": tf.function(
                lambda *args, whole=whole: self._noise_at(*args, whole=whole), input_signature=[
                    _IMAGES, _MASKS, tf.TensorSpec(None, tf.float32), scalar, scalar])
               for kind, whole in (("whole", True), ("windowed", False))},
        })

    @property
    def generator(self):
        return self._holder.value

    def sample(self, images, masks, num_samples, seed) -> dict:
        """``{"completions": uint8 [B, N, H, W, 3]}``; see the module docstring."""
        return self._compiled.value["sample"](images, masks, num_samples, seed)

    def sample_bytes(self, images_bytes, masks_bytes, num_samples, seed) -> dict:
        """``{"completions_bytes": PNG strings [B, N]}`` from PNG/JPEG strings."""
        return self._compiled.value["sample_bytes"](images_bytes, masks_bytes, num_samples, seed)

    def complete_with_noise(self, images, masks, z) -> dict:
        """Completions for explicit noise z ``[B, N, H, W, 1]``: ``{"completions": ...}``."""
        return self._compiled.value["complete_with_noise"](images, masks, z)

    def signatures(self) -> dict:
        """The SavedModel signatures: ``serving_default``, ``sample_bytes``, ``complete_with_noise``."""
        return {name: self._compiled.value[key].get_concrete_function()
                for name, key in (("serving_default", "sample"), ("sample_bytes", "sample_bytes"),
                                  ("complete_with_noise", "complete_with_noise"))}

    def sample_at(self, images, masks, num_samples, seed, first_image, first_sample, window,
                  margin) -> tf.Tensor:
        """uint8 ``[B, N, H, W, 3]``: ``sample`` with the noise rule's offsets and a window
        (in process; no ``max_samples`` or memory check, the caller checks)."""
        kind = "whole" if self._fits(images, window) else "windowed"
        return self._compiled.value[f"sample_{kind}"](images, masks, num_samples, seed,
                                                      first_image, first_sample, window, margin)

    def noise_at(self, images, masks, z, window, margin) -> tf.Tensor:
        """uint8 ``[B, N, H, W, 3]``: ``complete_with_noise`` with a window (in process)."""
        kind = "whole" if self._fits(images, window) else "windowed"
        return self._compiled.value[f"noise_{kind}"](images, masks, z, window, margin)

    @staticmethod
    def _fits(images, window) -> bool:
        shape = images.shape
        return len(shape) == 4 and shape[1] <= int(window) and shape[2] <= int(window)

    def _checked(self, masks, n):
        """An assertion that the request fits ``max_memory`` (none without a limit)."""
        if self.max_memory is None:
            return []
        return [check_memory(masks, n, self.window, self.margin, self.max_memory)]

    def _completions(self, images, masks, num_samples, seed):
        images, masks = check_inputs(images, masks)
        n = check_num_samples(num_samples, self.max_samples)
        seed = scalar_input(seed, "seed")
        # seed < 0: a fresh seed per request (RandomUniformInt is a core op).
        seed = tf.where(seed < 0, tf.random.uniform([], 0, SEED_RANGE, dtype=tf.int32), seed)
        with tf.control_dependencies(self._checked(masks, n)):
            images = tf.identity(images)
        return complete_request(self.generator, images, masks, n, self.window, self.margin,
                                seed=seed, blend=self.blend)

    def _sample(self, images, masks, num_samples, seed):
        return {"completions": self._completions(images, masks, num_samples, seed)}

    def _sample_bytes(self, images_bytes, masks_bytes, num_samples, seed):
        images = decode_images(images_bytes, self._decode_limit(num_samples))
        masks = decode_masks(masks_bytes, tf.shape(images)[1:3])
        completions = self._completions(images, masks, num_samples, seed)
        return {"completions_bytes": encode_pngs(completions)}

    def _decode_limit(self, num_samples):
        """The largest image (pixels) a request may decode: what its buffers alone take
        within ``max_memory`` (None without a limit)."""
        if self.max_memory is None:
            return None
        n = tf.cast(tf.reduce_max(tf.reshape(num_samples, [-1])), tf.float64)
        return (self.max_memory - win.BASE_BYTES) / (win.IMAGE_BYTES
                                                     + win.SAMPLE_BYTES * tf.maximum(n, 1.0))

    def _complete_with_noise(self, images, masks, z):
        images, masks = check_inputs(images, masks)
        z = check_noise(z, images)
        with tf.control_dependencies(self._checked(masks, tf.shape(z)[1])):
            images = tf.identity(images)
        return {"completions": complete_request(self.generator, images, masks, tf.shape(z)[1],
                                                self.window, self.margin, z=z,
                                                blend=self.blend)}

    def _sample_at(self, images, masks, num_samples, seed, first_image, first_sample, window,
                   margin, whole=None):
        images, masks = check_inputs(images, masks)
        return complete_request(self.generator, images, masks, num_samples, window, margin,
                                seed=seed, first_image=first_image, first_sample=first_sample,
                                whole=whole, blend=self.blend)

    def _noise_at(self, images, masks, z, window, margin, whole=None):
        images, masks = check_inputs(images, masks)
        z = check_noise(z, images)
        return complete_request(self.generator, images, masks, tf.shape(z)[1], window, margin,
                                z=z, whole=whole, blend=self.blend)


def graph_op_types(saved_model_dir: str | os.PathLike) -> set[str]:
    """All op types in a SavedModel: its graphs and every function they call."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    ops: set[str] = set()
    for meta_graph in proto.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops
