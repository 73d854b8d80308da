"""Contextual attention (Yu et al. 2018, DeepFill v1), vectorised over the batch.

The reference loops over the batch in Python, shares one mask across it and
colours the flow with a ``py_func``. Here every step is a batched tensor op,
each sample has its own mask, and the flow is returned as integer offsets
(colour them outside the graph with ``piigan_tf.utils.flow_to_image``), so the
layer exports to TF Serving and runs under XLA.

Shapes below: f = b = [B, H, W, C] (32x32x128 in PiiGAN at 128x128),
``rate`` = 2, downscaled size h = H / rate, w = W / rate, L = h * w
background patches.
"""

from __future__ import annotations

import tensorflow as tf

from piigan_tf.layers.ops import resize_nearest


def _patches(x: tf.Tensor, ksize: int, stride: int) -> tf.Tensor:
    """[B, H, W, C] -> [B, H'*W', ksize*ksize*C], SAME padding, (kh, kw, c) order."""
    p = tf.image.extract_patches(x, [1, ksize, ksize, 1], [1, stride, stride, 1],
                                 [1, 1, 1, 1], padding="SAME")
    s = tf.shape(p)
    return tf.reshape(p, [s[0], s[1] * s[2], s[3]])


def _fuse(scores: tf.Tensor, h: int, w: int, fuse_k: int) -> tf.Tensor:
    """Smooths [B, h*w, h*w] scores along the diagonal, in both patch orders.

    A conv with an identity kernel over the (foreground, background) score
    image adds up scores of neighbouring foreground positions matched with
    the equally shifted background patches, which favours copying coherent
    regions. The second pass does the same with rows and columns swapped.
    """
    b = tf.shape(scores)[0]
    kernel = tf.reshape(tf.eye(fuse_k, dtype=scores.dtype), [fuse_k, fuse_k, 1, 1])
    y = tf.nn.conv2d(scores[..., None], kernel, 1, "SAME")
    y = tf.reshape(y, [b, h, w, h, w])
    y = tf.transpose(y, [0, 2, 1, 4, 3])
    y = tf.reshape(y, [b, w * h, w * h, 1])
    y = tf.nn.conv2d(y, kernel, 1, "SAME")
    y = tf.reshape(y, [b, w, h, w, h])
    y = tf.transpose(y, [0, 2, 1, 4, 3])
    return tf.reshape(y, [b, h * w, h * w])


def _overlap_add(contrib: tf.Tensor, h: int, w: int, c: int, rate: int) -> tf.Tensor:
    """Transposed conv (kernel 2*rate, stride rate, SAME) from per-position patches.

    ``contrib`` [B, h*w, (2r)*(2r)*c] holds, for each input position, the
    2r x 2r x c patch it pastes. Equivalent to ``conv2d_transpose`` with a
    per-sample filter: split the kernel into 2x2 blocks of r x r, place each
    block with depth_to_space, shift it to its offset and add.
    """
    k = 2 * rate
    pad = (k - rate) // 2  # SAME: total padding k - rate, top/left gets half
    b = tf.shape(contrib)[0]
    contrib = tf.reshape(contrib, [b, h, w, k, k, c])
    out = None
    for a in range(2):
        for d in range(2):
            block = contrib[:, :, :, a * rate:(a + 1) * rate, d * rate:(d + 1) * rate, :]
            block = tf.reshape(block, [b, h, w, rate * rate * c])
            img = tf.nn.depth_to_space(block, rate)  # pixel (r*p+u) = kernel row a*r+u
            dy, dx = a * rate - pad, d * rate - pad  # output row = r*p + kernel row - pad
            img = tf.pad(img, [[0, 0], [max(dy, 0), max(-dy, 0)], [max(dx, 0), max(-dx, 0)], [0, 0]])
            img = img[:, max(-dy, 0):max(-dy, 0) + h * rate, max(-dx, 0):max(-dx, 0) + w * rate, :]
            out = img if out is None else out + img
    return out


def contextual_attention(f: tf.Tensor, b: tf.Tensor, mask: tf.Tensor | None = None,
                         ksize: int = 3, stride: int = 1, rate: int = 2, fuse_k: int = 3,
                         softmax_scale: float = 10.0, fuse: bool = True):
    """Fills foreground features with a soft copy of known background patches.

    Args:
        f: foreground features [B, H, W, C]; H and W divisible by ``rate``.
        b: background features [B, H, W, C] (PiiGAN passes f = b).
        mask: [B, H, W, 1] with 1 = hole, at the feature resolution (or None).
            Background patches touching the hole are never copied.
        ksize: matching patch size (on the downscaled maps).
        stride: matching stride (only 1 is supported, as used by PiiGAN).
        rate: downscaling factor for matching; pasted patches are 2*rate wide.
        fuse_k: size of the diagonal fusion kernel.
        softmax_scale: temperature of the softmax over background patches.
        fuse: apply the score fusion.

    Returns:
        (y, offsets): y [B, H, W, C] pasted features; offsets int32
        [B, H/rate, W/rate, 2], the (dy, dx) of the best-matching background
        patch relative to each position (for flow visualisation only).
    """
    if stride != 1:
        raise ValueError(f"contextual_attention supports stride=1 only, got {stride}")
    shape = tf.shape(b)
    bsz, height, width = shape[0], shape[1], shape[2]
    c = b.shape[-1]
    h, w = height // rate, width // rate
    static_h = b.shape[1] // rate if b.shape[1] is not None else h
    static_w = b.shape[2] // rate if b.shape[2] is not None else w

    # 1. raw 2r x 2r background patches for pasting, stride r.
    raw_w = _patches(b, 2 * rate, rate * stride)                       # [B, L, 4r^2 C]
    # 2. downscale f, b and mask (nearest, align_corners as the reference).
    f_small = resize_nearest(f, [h, w])
    b_small = resize_nearest(b, [h, w])
    if mask is None:
        mask = tf.zeros([bsz, height, width, 1], dtype=b.dtype)
    mask_small = resize_nearest(tf.cast(mask, b.dtype), [h, w])
    # 3. matching patches, L2-normalised; valid where the window has no hole.
    patches = _patches(b_small, ksize, stride)                          # [B, L, k^2 C]
    norm = tf.sqrt(tf.reduce_sum(tf.square(patches), axis=-1, keepdims=True))
    patches = patches / tf.maximum(norm, tf.cast(1e-4, patches.dtype))
    valid = tf.cast(tf.equal(tf.reduce_mean(_patches(mask_small, ksize, stride), axis=-1), 0.0),
                    b.dtype)[:, None, :]                                # [B, 1, L]
    # 4. scores: correlation of each foreground window with each patch.
    fg = _patches(f_small, ksize, 1)                                    # [B, P, k^2 C]
    scores = tf.matmul(fg, patches, transpose_b=True)                   # [B, P, L]
    # 5. fuse.
    if fuse:
        scores = _fuse(scores, static_h, static_w, fuse_k)
    # 6. masked softmax over background patches.
    scores = scores * valid
    attn = tf.nn.softmax(scores * softmax_scale, axis=-1) * valid
    # 8. offsets of the best patch (visualisation).
    best = tf.argmax(attn, axis=-1, output_type=tf.int32)
    best = tf.reshape(best, [bsz, h, w])
    grid_y = tf.range(h)[None, :, None]
    grid_x = tf.range(w)[None, None, :]
    offsets = tf.stack([best // w - grid_y, best % w - grid_x], axis=-1)
    # 7. paste raw patches weighted by attention (transposed conv), / 4.
    contrib = tf.matmul(attn, raw_w)                                    # [B, P, 4r^2 C]
    y = _overlap_add(contrib, static_h, static_w, c, rate) / 4.0
    return y, offsets


def contextual_attention_loop(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3,
                              softmax_scale=10.0, fuse=True):
    """Per-sample implementation with the reference's structure.

    One ``conv2d`` for matching and one ``conv2d_transpose`` for pasting per
    sample, in a Python loop. Kept as the oracle for tests and as the baseline
    of ``bench/bench_attention.py``; the model uses ``contextual_attention``.
    """
    bsz, height, width, c = b.shape
    h, w = height // rate, width // rate
    if mask is None:
        mask = tf.zeros([bsz, height, width, 1], b.dtype)
    k2 = 2 * rate
    eye = tf.reshape(tf.eye(fuse_k, dtype=b.dtype), [fuse_k, fuse_k, 1, 1])
    ys, offs = [], []
    for i in range(bsz):
        fi, bi, mi = f[i:i + 1], b[i:i + 1], mask[i:i + 1]
        raw = tf.image.extract_patches(bi, [1, k2, k2, 1], [1, rate, rate, 1], [1, 1, 1, 1], "SAME")
        raw = tf.transpose(tf.reshape(raw, [-1, k2, k2, c]), [1, 2, 3, 0])  # [k2,k2,C,L]
        fs = resize_nearest(fi, [h, w])
        bs = resize_nearest(bi, [h, w])
        ms = resize_nearest(mi, [h, w])
        wi = tf.image.extract_patches(bs, [1, ksize, ksize, 1], [1, 1, 1, 1], [1, 1, 1, 1], "SAME")
        wi = tf.transpose(tf.reshape(wi, [-1, ksize, ksize, c]), [1, 2, 3, 0])  # [k,k,C,L]
        wi = wi / tf.maximum(tf.sqrt(tf.reduce_sum(tf.square(wi), axis=[0, 1, 2])), 1e-4)
        mm = tf.image.extract_patches(ms, [1, ksize, ksize, 1], [1, 1, 1, 1], [1, 1, 1, 1], "SAME")
        mm = tf.cast(tf.equal(tf.reduce_mean(tf.reshape(mm, [-1, ksize * ksize]), axis=1), 0.0), b.dtype)
        yi = tf.nn.conv2d(fs, wi, 1, "SAME")                     # [1, h, w, L]
        if fuse:
            yi = tf.reshape(yi, [1, h * w, h * w, 1])
            yi = tf.nn.conv2d(yi, eye, 1, "SAME")
            yi = tf.transpose(tf.reshape(yi, [1, h, w, h, w]), [0, 2, 1, 4, 3])
            yi = tf.nn.conv2d(tf.reshape(yi, [1, h * w, h * w, 1]), eye, 1, "SAME")
            yi = tf.transpose(tf.reshape(yi, [1, w, h, w, h]), [0, 2, 1, 4, 3])
        yi = tf.reshape(yi, [1, h, w, h * w]) * mm
        yi = tf.nn.softmax(yi * softmax_scale, axis=3) * mm
        best = tf.argmax(yi, axis=3, output_type=tf.int32)
        offs.append(tf.stack([best // w - tf.range(h)[None, :, None],
                              best % w - tf.range(w)[None, None, :]], axis=-1))
        ys.append(tf.nn.conv2d_transpose(yi, raw, [1, height, width, c], rate, "SAME") / 4.0)
    return tf.concat(ys, 0), tf.concat(offs, 0)
