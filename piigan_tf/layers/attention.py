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


def _shift_sum(x: tf.Tensor, offsets, pad, sizes) -> tf.Tensor:
    """Sum of shifted windows of x, zero outside: ``sum_o x_padded[o : o + size]``.

    ``pad`` is the (before, after) zero padding of every non-batch axis; each
    offset in ``offsets`` is a window start (one per non-batch axis) in the
    padded tensor and ``sizes`` the window size. ``tf.pad``/``tf.slice``
    rather than strided slices: their gradients are each other, while the
    StridedSliceGrad of a 5-D tensor is several times slower.
    """
    rank = x.shape.rank
    xp = tf.pad(x, [[0, 0]] + [list(pad)] * (rank - 1))
    out = None
    for o in offsets:
        part = tf.slice(xp, [0, *o], [-1, *sizes])
        out = part if out is None else out + part
    return out


def _box_sum(x: tf.Tensor, k: int) -> tf.Tensor:
    """k x k SAME box sum over H and W of a one-channel [B, H, W, 1] map (zero padded)."""
    return tf.nn.conv2d(x, tf.ones([k, k, 1, 1], x.dtype), 1, "SAME")


def _pair_diagonal_sum(x: tf.Tensor, k: int, pad) -> tf.Tensor:
    """Sum of x over k x k shifts applied to both halves of its index at once.

    x is [B, a, b, c, d]: a score per pair of positions (a, b) and (c, d)
    (foreground and background patch). With every non-batch axis zero-padded
    by ``pad`` =
    (before, after), returns ``sum_{t,u < k} xpad[a + t, b + u, c + t, d + u]``
    of size [B, a', b', c', d'], x' = x + before + after - k + 1.

    Along one pair of axes this is a convolution of the (a, c) plane with a
    k x k identity kernel, so each pair is one depthwise conv (the other
    pair as channels): two kernels where the same sum written as shifted
    slices takes 2k slices and adds, each a pass over the whole tensor.
    """
    s = tf.shape(x)
    n, a, b, c, d = s[0], s[1], s[2], s[3], s[4]
    lo, hi = pad
    grow = lo + hi - k + 1
    eye = tf.reshape(tf.eye(k, dtype=x.dtype), [k, k, 1, 1])

    def diagonal(y, channels):  # y [N, P, Q, channels] -> sum_t ypad[p + t, q + t]
        y = tf.pad(y, [[0, 0], [lo, hi], [lo, hi], [0, 0]])
        return tf.nn.depthwise_conv2d(y, tf.tile(eye, [1, 1, channels, 1]), [1, 1, 1, 1], "VALID")

    y = tf.reshape(tf.transpose(x, [0, 1, 3, 2, 4]), [n, a, c, b * d])        # (a, c) plane
    a2, c2 = a + grow, c + grow
    y = tf.reshape(diagonal(y, b * d), [n, a2, c2, b, d])
    y = tf.reshape(tf.transpose(y, [0, 3, 4, 1, 2]), [n, b, d, a2 * c2])      # (b, d) plane
    b2, d2 = b + grow, d + grow
    y = tf.reshape(diagonal(y, a2 * c2), [n, b2, d2, a2, c2])
    return tf.transpose(y, [0, 3, 1, 4, 2])


def _fuse(scores: tf.Tensor, h, w, fuse_k: int) -> tf.Tensor:
    """Smooths [B, h*w, h*w] scores along the diagonal, in both patch orders.

    The reference convolves the (foreground, background) score image with a
    ``fuse_k`` identity kernel -- adding up scores of neighbouring foreground
    positions matched with the equally shifted background patches, which
    favours copying coherent regions -- then does the same with rows and
    columns flattened in (x, y) order. Both passes are diagonal shift-sums
    and are computed as such (the conv's values, without a conv over a
    one-channel image). They are symmetric in the two axes, so they apply to
    the transposed score matrix alike.
    """
    b = tf.shape(scores)[0]
    lo = (fuse_k - 1) // 2
    offsets = [(t, t) for t in range(fuse_k)]
    n = h * w
    y = _shift_sum(scores, offsets, (lo, fuse_k - 1 - lo), (n, n))
    y = tf.reshape(y, [b, h, w, h, w])
    y = tf.reshape(tf.transpose(y, [0, 2, 1, 4, 3]), [b, n, n])
    y = _shift_sum(y, offsets, (lo, fuse_k - 1 - lo), (n, n))
    y = tf.reshape(y, [b, w, h, w, h])
    return tf.reshape(tf.transpose(y, [0, 2, 1, 4, 3]), [b, n, n])


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
    same = f is b  # PiiGAN's case: one set of features serves both roles
    shape = tf.shape(b)
    bsz, height, width = shape[0], shape[1], shape[2]
    c = b.shape[-1]
    static = b.shape[1] is not None and b.shape[2] is not None
    h = b.shape[1] // rate if static else height // rate
    w = b.shape[2] // rate if static else width // rate
    n = h * w  # background patches L = foreground positions P
    k = ksize

    # 1. raw 2r x 2r background patches (stride r, SAME) for pasting. Patch l
    #    covers blocks l + (0/1, 0/1) of the r-blocked padded map, so one
    #    space_to_depth holds all of them without copying them out.
    lo, hi = rate // 2, rate - rate // 2
    blocks = tf.nn.space_to_depth(tf.pad(b, [[0, 0], [lo, hi], [lo, hi], [0, 0]]), rate)
    # 2. downscale f, b and mask (nearest, align_corners as the reference).
    b_small = resize_nearest(b, [h, w])
    f_small = b_small if same else resize_nearest(f, [h, w])
    if mask is None:
        mask = tf.zeros([bsz, height, width, 1], dtype=b.dtype)
    mask_small = resize_nearest(tf.cast(mask, b.dtype), [h, w])
    # 3. k x k matching patches: their norms (floored at 1e-4) and validity
    #    (no hole pixel in the window).
    norm = tf.sqrt(_box_sum(tf.reduce_sum(tf.square(b_small), -1, keepdims=True), k))
    norm = tf.reshape(tf.maximum(norm, tf.cast(1e-4, b.dtype)), [bsz, 1, n])     # [B, 1, L]
    valid = tf.cast(tf.equal(_box_sum(mask_small, k), 0.0), b.dtype)
    valid = tf.reshape(valid, [bsz, 1, n])                                         # [B, 1, L]
    # 4. scores[p, l] = <window p, patch l / |patch l|>: a k x k diagonal sum
    #    of the pixel Gram matrix (k^2 fewer FLOPs than correlating the
    #    k*k*C-long patch vectors). Layout [B, P, L]: the softmax over
    #    patches runs along the last axis (another axis costs two transposes).
    gram = tf.matmul(tf.reshape(f_small, [bsz, n, c]), tf.reshape(b_small, [bsz, n, c]),
                     transpose_b=True)
    scores = _pair_diagonal_sum(tf.reshape(gram, [bsz, h, w, h, w]), k,
                                ((k - 1) // 2, k - 1 - (k - 1) // 2))
    scores = tf.reshape(scores, [bsz, n, n]) / norm
    # 5. fuse.
    if fuse:
        scores = _fuse(scores, h, w, fuse_k)
    # 6. masked softmax over background patches; the paste's division by 4
    #    (step 7) is folded into the second masking.
    attn = tf.nn.softmax(scores * (valid * softmax_scale), axis=-1) * (valid / 4.0)
    # 8. offsets of the best patch (visualisation).
    best = tf.reshape(tf.argmax(attn, axis=-1, output_type=tf.int32), [bsz, h, w])
    grid_y = tf.range(h)[None, :, None]
    grid_x = tf.range(w)[None, None, :]
    offsets = tf.stack([best // w - grid_y, best % w - grid_x], axis=-1)
    # 7. paste (transposed conv of attn with the raw patches, stride r), / 4.
    #    Output block I receives block l + a of patch l pasted at p = I - a,
    #    a in {0, 1}^2: out[I] = sum_m (sum_a attn[I - a, m - a]) blocks[m],
    #    one matmul over the (h+1) x (w+1) block grid.
    m = (h + 1) * (w + 1)
    weights = _pair_diagonal_sum(tf.reshape(attn, [bsz, h, w, h, w]), 2, (1, 1))
    weights = tf.reshape(weights, [bsz, m, m])                                     # [B, I, m]
    out = tf.matmul(weights, tf.reshape(blocks, [bsz, m, rate * rate * c]))
    out = tf.nn.depth_to_space(tf.reshape(out, [bsz, h + 1, w + 1, rate * rate * c]), rate)
    # A Slice, whose gradient is a Pad: a strided slice's StridedSliceGrad
    # took ~10x longer here.
    y = tf.slice(out, [0, lo, lo, 0], [-1, height, width, -1])
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
