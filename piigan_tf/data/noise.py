"""Training noise as data: z, alpha and eps drawn per element of the training stream.

The model can draw its noise from its own seed generator, but then the noise
a sample gets depends on how the batch is split over devices, and resuming
needs the generator's state. Drawn in the input pipeline from
``(seed, element index)``, the noise is part of the data: a step split over
replicas sees exactly the noise of the single-device step on the same global
batch, and resuming at step n (``start=n``) reproduces it.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

# Keeps the noise stream apart from the crop/mask stream of the same SEED.
_NOISE_STREAM = 0x6E6F697365  # "noise"


def training_noise(index, group: int, batch: int, img_hw: Sequence[int],
                   box_hw: Sequence[int], seed: int = 0) -> dict:
    """The noise of element ``index`` of the training stream.

    Args:
        index: int64 scalar, the element (= training step) index.
        group: K, batches per element (D_STEPS + 1).
        batch: B, the global batch size.
        img_hw: (H, W) of the images.
        box_hw: (h, w) of the hole box.
        seed: the run's SEED.

    Returns:
        ``{"z": float32 [K, B, H, W, 1] ~ N(0, 1), "alpha": float32 [K, B, 2] ~ U(0, 1)
        (local and global penalty),
        "eps": float32 [B, h*w] ~ N(0, 1)}`` (see ``PiiGAN.train_step``).
    """
    key = tf.random.fold_in(tf.constant([seed, _NOISE_STREAM], tf.int64), index)
    kz, ka, ke = tf.unstack(tf.random.split(key, 3))
    h, w = (int(v) for v in img_hw)
    bh, bw = (int(v) for v in box_hw)
    return {
        "z": tf.random.stateless_normal([group, batch, h, w, 1], kz),
        "alpha": tf.random.stateless_uniform([group, batch, 2], ka),
        "eps": tf.random.stateless_normal([batch, bh * bw], ke),
    }


def add_training_noise(dataset: tf.data.Dataset, box_hw: Sequence[int], seed: int = 0,
                       start: int = 0) -> tf.data.Dataset:
    """Adds ``z``, ``alpha`` and ``eps`` to each grouped element of ``dataset``.

    Args:
        dataset: elements ``{"images": [K, B, H, W, 3], ...}`` with static K, B,
            H, W (``build_dataset(group=K)``).
        box_hw: (h, w) of the hole box.
        seed: the run's SEED.
        start: index of the first element (the step a resumed run starts at).
    """
    k, b, h, w, _ = dataset.element_spec["images"].shape

    def add(index, element):
        return {**element, **training_noise(index, k, b, (h, w), box_hw, seed)}

    dataset = dataset.enumerate(start=start).map(add, num_parallel_calls=tf.data.AUTOTUNE,
                                                  deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)
