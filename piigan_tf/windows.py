"""Fill each hole from a window around it: cost grows with the hole, not the image.

The contextual attention compares every position of its feature map with
every other, so one pass over a whole ``H x W`` image costs time and memory
in ``(H * W)**2``. A hole only needs context from its surroundings: each
group of nearby holes is completed in a *window* around its bounding box
(the box, a margin of context on every side, at least ``window`` pixels a
side, clamped to the image) and the generated pixels of that group are
pasted back. An image no larger than ``window`` on both sides is one window,
the whole image: exactly the unwindowed computation.

Everything here is TensorFlow ops (no Python loops over data, no
``py_func``), so the exported SavedModel plans and runs the windows inside
its graph and a request to the server costs what it costs in process.

**Grouping.** The mask is read in cells of :data:`CELL` x :data:`CELL`
pixels; a cell holding a hole pixel is a hole cell. Hole cells closer than
about ``margin`` pixels (their cells dilated by ``ceil(margin / (2 * CELL))``
touch, 8-connected) form one group, found by propagating the largest cell id
through each connected region. A group's box is the union of its hole cells
(so at most ``CELL - 1`` pixels larger than the hole pixels' box).

**Window of a group.** Height ``max(window, box height + 2 * margin)``,
rounded up to a multiple of 8, centred on the box and shifted to lie inside
the image; the whole height if that is not smaller than the image's (the same
for the width). The window's mask holds every hole pixel inside it (other
groups' too: they are holes to the generator), but only the group's own
pixels are pasted back, so each hole pixel is generated once, by the window of
its group, and the result does not depend on the order of the windows.

**Noise.** The noise rule of :mod:`piigan_tf.serving` is unchanged: sample
``j`` of image ``i`` has one ``[H, W, 1]`` field over the whole image, and a
window reads its part of that field (:func:`window_noise` draws only the rows
up to the window's bottom: a stateless Philox stream's prefix is the stream
of the shorter shape). So the same seed gives the same samples whatever the
batching and the split into calls; with the whole image as one window it is
the unwindowed computation, bit for bit.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

#: The mask is grouped in cells of this many pixels a side.
CELL = 8
#: Used when a model's training size is unknown.
FALLBACK_TRAIN_SIZE = 64


def default_window(train_hw: Sequence[int] | None = None) -> int:
    """The default window side for a model trained on ``train_hw`` images.

    Twice the training side, at least 256: a 64 x 64 face model gets 256 (4x
    its training size), a 128 x 128 model 256, a 256 x 256 model 512. Every
    image up to this size on both sides is completed whole, as before.
    """
    side = max(int(v) for v in (train_hw or (FALLBACK_TRAIN_SIZE,)))
    return max(256, 2 * side)


def default_margin(train_hw: Sequence[int] | None = None) -> int:
    """Context kept on every side of a hole: half the training side (32 for 64 x 64),
    the context a training hole had around it."""
    side = max(int(v) for v in (train_hw or (FALLBACK_TRAIN_SIZE,)))
    return max(8, side // 2)


def _round8(x):
    return (x + 7) // 8 * 8


def _propagate_labels(active: tf.Tensor) -> tf.Tensor:
    """Connected regions (8-connected) of a ``[h, w]`` bool map: int32 labels, 0 outside."""
    shape = tf.shape(active)
    act = tf.cast(active, tf.int32)[None, :, :, None]
    ids = tf.reshape(tf.range(1, shape[0] * shape[1] + 1), [1, shape[0], shape[1], 1]) * act

    def step(labels):
        return tf.nn.max_pool2d(labels, 3, 1, "SAME") * act

    def cond(labels, changed):
        return changed

    def body(labels, changed):
        new = step(labels)
        return new, tf.reduce_any(tf.not_equal(new, labels))

    labels, _ = tf.while_loop(cond, body, (ids, tf.constant(True)),
                              maximum_iterations=shape[0] * shape[1] + 1)
    return labels[0, :, :, 0]


def plan_windows(mask: tf.Tensor, window, margin) -> tuple[tf.Tensor, tf.Tensor]:
    """The windows that complete one image's holes.

    Args:
        mask: ``[H, W, 1]`` or ``[H, W]``, non-zero = hole (any dtype).
        window: int32 scalar, the least window side (:func:`default_window`).
        margin: int32 scalar, context on every side of a group's box.

    Returns:
        ``(windows, cell_labels)``: int32 ``[K, 5]`` rows ``(top, left,
        height, width, label)``, one per group of holes (K = 0 for a mask
        without a hole; one ``(0, 0, H, W, label)`` row when the image fits in
        one window), and the int32 ``[ceil(H / CELL), ceil(W / CELL)]`` group
        label of each cell (0: no hole near). Pixel ``(y, x)`` of the hole
        belongs to the window whose label is ``cell_labels[y // CELL, x // CELL]``.
    """
    mask = tf.reshape(mask, tf.shape(mask)[:2])
    hole = tf.cast(tf.not_equal(mask, tf.zeros([], mask.dtype)), tf.float32)
    h, w = tf.shape(hole)[0], tf.shape(hole)[1]
    window = tf.cast(window, tf.int32)
    margin = tf.cast(margin, tf.int32)
    cells = tf.nn.max_pool2d(hole[None, :, :, None], CELL, CELL, "SAME")[0, :, :, 0] > 0
    reach = (margin + 2 * CELL - 1) // (2 * CELL)  # dilation radius, in cells
    active = tf.cast(cells, tf.float32)[None, :, :, None]
    active = tf.while_loop(lambda r, a: r < reach,
                           lambda r, a: (r + 1, tf.nn.max_pool2d(a, 3, 1, "SAME")),
                           (tf.constant(0), active))[1][0, :, :, 0] > 0
    labels = _propagate_labels(active)
    where = tf.cast(tf.where(cells), tf.int32)                       # hole cells [P, 2]
    cell_label = tf.gather_nd(labels, where)
    groups, index = tf.unique(cell_label)
    k = tf.size(groups)
    top = tf.math.unsorted_segment_min(where[:, 0], index, k) * CELL
    left = tf.math.unsorted_segment_min(where[:, 1], index, k) * CELL
    bottom = tf.minimum((tf.math.unsorted_segment_max(where[:, 0], index, k) + 1) * CELL, h)
    right = tf.minimum((tf.math.unsorted_segment_max(where[:, 1], index, k) + 1) * CELL, w)

    def place(lo, hi, size):
        side = tf.maximum(window, _round8(hi - lo + 2 * margin))
        side = tf.where(side >= size, size, side)
        start = tf.clip_by_value(lo - (side - (hi - lo)) // 2, 0, size - side)
        return start, side

    wy, wh = place(top, bottom, h)
    wx, ww = place(left, right, w)
    windows = tf.stack([wy, wx, wh, ww, groups], axis=1)
    return tf.reshape(windows, [-1, 5]), labels


def fits_whole(height, width, window) -> tf.Tensor:
    """Whether an image is completed whole (no side larger than ``window``)."""
    return tf.logical_and(height <= window, width <= window)


def window_noise(seed, image_index, first_sample, num_samples, image_width, box) -> tf.Tensor:
    """The part of the noise rule's fields that a window reads: float32 ``[N, h, w, 1]``.

    Sample ``j``'s field is ``stateless_normal([H, W, 1], fold_in([seed,
    image_index], first_sample + j))`` (:func:`piigan_tf.serving.sample_noise`);
    only its first ``top + h`` rows are drawn (a Philox stream's prefix is the
    stream of the shorter shape), then ``box = (top, left, h, w)`` is cut out.
    """
    seed = tf.cast(seed, tf.int32)
    top, left, bh, bw = box[0], box[1], box[2], box[3]
    width = tf.cast(image_width, tf.int32)
    key0 = tf.stack([seed, tf.cast(image_index, tf.int32)])

    def one(j):
        key = tf.random.fold_in(key0, j, alg="philox")
        rows = tf.random.stateless_normal(tf.reshape((top + bh) * width, [1]), seed=key,
                                          alg="philox")
        rows = tf.reshape(rows[top * width:], tf.stack([bh, width, 1]))
        return rows[:, left:left + bw]

    samples = tf.range(num_samples, dtype=tf.int32) + tf.cast(first_sample, tf.int32)
    return tf.map_fn(one, samples, parallel_iterations=2,
                     fn_output_signature=tf.TensorSpec([None, None, 1], tf.float32))


def complete_windows(complete_fn, image: tf.Tensor, mask: tf.Tensor, windows: tf.Tensor,
                     labels: tf.Tensor, num_samples, noise_fn) -> tf.Tensor:
    """Completes one image window by window.

    Args:
        complete_fn: ``(images [1, h, w, 3] uint8, masks [1, h, w, 1], z [1, N,
            h, w, 1]) -> uint8 [1, N, h, w, 3]`` (the unwindowed completion).
        image: uint8 ``[H, W, 3]``; mask ``[H, W, 1]``, non-zero = hole.
        windows, labels: from :func:`plan_windows`.
        num_samples: N.
        noise_fn: ``(box int32 [4]) -> float32 [N, h, w, 1]``, the window's noise.

    Returns:
        uint8 ``[N, H, W, 3]``: the image with every group's hole pixels
        generated in its window.
    """
    n = tf.cast(num_samples, tf.int32)
    out = tf.repeat(image[None], n, axis=0)
    hole = tf.not_equal(mask, tf.zeros([], mask.dtype))

    def body(k, out):
        top, left, bh, bw, label = (windows[k, c] for c in range(5))
        box = tf.stack([top, left, bh, bw])
        part = complete_fn(image[None, top:top + bh, left:left + bw],
                           mask[None, top:top + bh, left:left + bw],
                           noise_fn(box)[None])[0]
        rows = tf.range(top, top + bh) // CELL
        cols = tf.range(left, left + bw) // CELL
        own = tf.equal(tf.gather(tf.gather(labels, rows, axis=0), cols, axis=1), label)
        own = tf.logical_and(own[:, :, None], hole[top:top + bh, left:left + bw])
        current = out[:, top:top + bh, left:left + bw]
        pasted = tf.where(own[None], part, current)
        out = tf.raw_ops.TensorStridedSliceUpdate(
            input=out, begin=tf.stack([0, top, left, 0]), end=tf.stack([n, top + bh, left + bw, 3]),
            strides=tf.ones([4], tf.int32), value=pasted)
        return k + 1, out

    _, out = tf.while_loop(lambda k, out: k < tf.shape(windows)[0], body,
                           (tf.constant(0), out), parallel_iterations=1)
    return out


# -------------------------------------------------------------- memory
#: Peak-memory model of a request, calibrated on a 2-core AMD EPYC (AVX2) with
#: the shipped 64 x 64 model (``bench/bench_windows.py`` prints the measured
#: peaks beside it). Bytes.
BASE_BYTES = 0.8e9    # TensorFlow, the generator's weights, the compiled functions
PIXEL_BYTES = 600.0   # activations per pixel of a pass, per batch row
PAIR_BYTES = 20.0     # attention scores per (position, position) pair, per batch row
IMAGE_BYTES = 10.0    # per pixel of a request's images (uint8 in, masks, copies)
SAMPLE_BYTES = 10.0   # per pixel of each sample (completions, their copy out, noise rows)


def pass_bytes(rows, height, width) -> tf.Tensor:
    """Working memory of one generator pass over ``rows`` images of ``height x width``
    (float64 scalar; an odd batch above 1 runs one more row)."""
    rows, height, width = (tf.cast(v, tf.float64) for v in (rows, height, width))
    rows = rows + tf.where(rows > 1, tf.math.floormod(rows, 2), tf.zeros([], tf.float64))
    hp, wp = tf.math.ceil(height / 8) * 8, tf.math.ceil(width / 8) * 8
    positions = (hp / 8) * (wp / 8)  # the attention grid: an eighth of each side
    return rows * (PIXEL_BYTES * hp * wp + PAIR_BYTES * positions * positions)


def request_bytes(batch, num_samples, height, width, largest_pass) -> tf.Tensor:
    """Peak of a request (float64 scalar): the base, the images, their
    completions (and the noise of a whole-image pass), the largest pass."""
    batch, num_samples, height, width = (tf.cast(v, tf.float64)
                                         for v in (batch, num_samples, height, width))
    pixels = height * width
    return (BASE_BYTES + batch * pixels * (IMAGE_BYTES + SAMPLE_BYTES * num_samples)
            + tf.cast(largest_pass, tf.float64))


def largest_pass(masks: tf.Tensor, num_samples, window, margin) -> tf.Tensor:
    """``(bytes, height, width)`` of the largest generator pass that
    :func:`complete_windows` (or the whole-image pass) makes for ``masks``
    ``[B, H, W, 1]``: float64 and two int32 scalars."""
    shape = tf.shape(masks)
    b, h, w = shape[0], shape[1], shape[2]
    n = tf.cast(num_samples, tf.int32)

    def whole():
        return pass_bytes(b * n, h, w), h, w

    def windowed():
        def one(mask):
            windows, _ = plan_windows(mask, window, margin)
            area = windows[:, 2] * windows[:, 3]
            k = tf.argmax(tf.concat([[0], area], 0), output_type=tf.int32)
            size = tf.concat([[[0, 0]], windows[:, 2:4]], 0)[k]
            return pass_bytes(n, size[0], size[1]), size[0], size[1]

        sizes = tf.map_fn(one, masks, parallel_iterations=1, fn_output_signature=(
            tf.TensorSpec([], tf.float64), tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.int32)))
        k = tf.argmax(sizes[0], output_type=tf.int32)
        return sizes[0][k], sizes[1][k], sizes[2][k]

    return tf.cond(fits_whole(h, w, window), whole, windowed)


def memory_message(needed, allowed, batch, num_samples, height, width, win_h, win_w):
    """The one-line refusal (a string tensor): what is needed and what to lower."""
    gb = lambda x: tf.strings.as_string(tf.cast(x, tf.float64) / 1e9, precision=1)  # noqa: E731
    s = lambda x: tf.strings.as_string(tf.cast(x, tf.int64))  # noqa: E731
    return tf.strings.join([
        "this request needs about ", gb(needed), " GB of memory (", s(batch), " image(s) of ",
        s(height), "x", s(width), ", ", s(num_samples), " samples, largest pass ", s(win_h), "x",
        s(win_w), ") but ", gb(allowed), " GB is allowed; lower the number of samples "
        "(num_samples, --num_samples) or the window (window, --window), or raise the limit "
        "(max_memory, --max_memory)"])


@tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.uint8)]
             + [tf.TensorSpec([], tf.int32)] * 3)
def _compiled_estimate(masks, num_samples, window, margin):
    shape = tf.shape(masks)
    largest, wh, ww = largest_pass(masks, num_samples, window, margin)
    return request_bytes(shape[0], num_samples, shape[1], shape[2], largest), wh, ww


def estimate(masks, num_samples: int, window: int, margin: int) -> tuple[float, int, int]:
    """``(peak bytes, largest pass height, width)`` of completing ``num_samples``
    samples of images with ``masks`` (uint8 ``[B, H, W, 1]``, non-zero = hole)."""
    needed, wh, ww = _compiled_estimate(tf.constant(masks, tf.uint8),
                                        *(tf.constant(int(v), tf.int32)
                                          for v in (num_samples, window, margin)))
    return float(needed), int(wh), int(ww)


def available_memory() -> float | None:
    """Bytes this machine can give a request now (``MemAvailable``), None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None
