"""What training runs, built one way from a config: the model with its optimizers, and the data.

``train.py`` (through ``Trainer``), ``piigan_tf.convert``, every script under
``bench/`` and the tests build through these functions, so that a benchmark
measures exactly what training runs::

    files, val_files = dataset_files(config)                  # the dataset's readable files
    model = build_piigan(config, precision="bfloat16")        # compiled, both optimizers
    data = training_dataset(config, files, start_batch=step)  # D_STEPS + 1 batches + noise
    static = validation_batch(config, val_files)              # fixed images, centre box
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from piigan_tf.config import Config
from piigan_tf.data import build_dataset, read_flist, resolve_dataset, scan_files
from piigan_tf.data.noise import add_training_noise
from piigan_tf.distribute import resolve_mixed_precision
from piigan_tf.model import PiiGAN, default_optimizer

log = logging.getLogger("piigan_tf")


def dataset_files(config: Config) -> tuple[list[str], list[str]]:
    """``(train_files, val_files)``: the readable files of the configured dataset.

    DATASET is resolved as ``train.py --dataset`` takes it (a name under
    DATA_DIR, a folder or a ``.flist``). Validation files are read only with
    VAL on; an unusable validation list only costs the static view and the
    evaluation, with a warning.

    Raises:
        ValueError: no training file can be read.
    """
    train_flist, val_flist = resolve_dataset(config.DATASET, config.DATA_DIR)
    train_files, bad = scan_files(read_flist(train_flist))
    val_files = []
    if config.VAL and val_flist and Path(val_flist).exists():
        try:
            val_files, _ = scan_files(read_flist(val_flist))
        except ValueError as e:
            log.warning("validation images unusable, no static view: %s", e)
    log.info("dataset %s: %d training files (%d skipped), %d validation files",
             config.DATASET, len(train_files), bad, len(val_files))
    return train_files, val_files


def build_optimizers(config: Config, precision: str | None = None) -> tuple:
    """``(g_optimizer, d_optimizer)``: the reference's Adam, loss-scaled for float16.

    Args:
        config: LEARNING_RATE, BETA_1 and BETA_2 are read from it.
        precision: the resolved compute dtype (``"float16"`` wraps each in
            ``keras.optimizers.LossScaleOptimizer``: float16 gradients
            underflow unscaled).
    """
    optimizers = [default_optimizer(name, config.LEARNING_RATE, config.BETA_1, config.BETA_2)
                  for name in ("g_optimizer", "d_optimizer")]
    if precision == "float16":
        optimizers = [keras.optimizers.LossScaleOptimizer(o, name=o.name) for o in optimizers]
    return tuple(optimizers)


def build_piigan(config: Config, precision: str | None = None,
                 strategy: tf.distribute.Strategy | None = None, jit_compile: bool = False,
                 fast_paths: bool = True, native_dilation: bool | None = None) -> PiiGAN:
    """The model at the config's size, built and compiled with both optimizers.

    Args:
        config: the resolved ``Config``.
        precision: ``None``/``"float32"``, ``"auto"``, ``"bfloat16"`` or
            ``"float16"`` (as ``train.py --mixed_precision``; checked by a
            probe of the running TensorFlow). Variables stay float32.
        strategy: the ``tf.distribute`` strategy whose scope holds the
            variables (default: the current one).
        jit_compile: compile ``model.fit``'s train step with XLA (off by
            default, also on GPUs, where Keras would otherwise turn it on).
        fast_paths, native_dilation: see ``PiiGAN``.

    Returns:
        A compiled ``PiiGAN``; ``model.precision`` is the resolved compute dtype.

    Raises:
        ValueError: GRADIENT_CLIP with float16 loss scaling, or an unknown precision.
        MixedPrecisionUnavailable: this TensorFlow cannot train in that dtype here.
    """
    compute = resolve_mixed_precision(precision)
    if compute == "float16" and config.GRADIENT_CLIP:
        raise ValueError("GRADIENT_CLIP does not combine with float16 loss scaling; use "
                         "--mixed_precision bfloat16 or turn GRADIENT_CLIP off")
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = PiiGAN.from_config_object(config, precision=compute, fast_paths=fast_paths,
                                          native_dilation=native_dilation)
        g_optimizer, d_optimizer = build_optimizers(config, compute)
        model.compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer,
                      jit_compile=bool(jit_compile))
    return model


def training_dataset(config: Config, files: Sequence[str], start_batch: int = 0,
                     batch_size: int | None = None,
                     noise_seed: int | None = None) -> tf.data.Dataset:
    """The training stream from element ``start_batch`` on, noise included.

    Each element holds the D_STEPS + 1 batches of one iteration (``[K, B, ...]``)
    and its noise ``z``, ``alpha``, ``eps`` drawn from ``(SEED, index)``, so the
    data position of a run is its step: resuming at step n rebuilds the stream
    with ``start_batch=n`` (exact, nothing before it is read).

    Args:
        config: the resolved ``Config``.
        files: training image paths.
        start_batch: index of the first element (the step a run resumes at).
        batch_size: the global batch (default BATCH_SIZE; a distributed run
            passes BATCH_SIZE x replicas).
        noise_seed: seed of the noise alone (default SEED): the same images
            and holes with other noise (benchmarks compare runs so).
    """
    c = config
    ds = build_dataset(
        files, c.IMG_SHAPES, batch_size or c.BATCH_SIZE, box_shape=c.box_hw,
        max_delta=(c.MAX_DELTA_HEIGHT, c.MAX_DELTA_WIDTH),
        margins=(c.VERTICAL_MARGIN, c.HORIZONTAL_MARGIN), mask_type=c.MASK_TYPE,
        random_crop=c.RANDOM_CROP, group=c.D_STEPS + 1, shuffle=True, repeat=True,
        seed=c.SEED, start_batch=start_batch)
    return add_training_noise(ds, c.box_hw, seed=c.SEED if noise_seed is None else noise_seed,
                              start=start_batch)


def validation_batch(config: Config, files: Sequence[str], size: int | None = None) -> dict | None:
    """Fixed validation images with the reference's centre box (the "static view").

    Args:
        config: the resolved ``Config``.
        files: validation image paths; the first ``size`` are used.
        size: how many (default STATIC_VIEW_SIZE).

    Returns:
        One batch ``{"images", "masks", "boxes"}``, or None without images.
    """
    size = config.STATIC_VIEW_SIZE if size is None else size
    files = list(files)[:size]
    if not files:
        return None
    # The images as sampling brings them to the model (data.preprocess.fit_to_model):
    # resized whole, or the centre window of a crop model.
    ds = build_dataset(files, config.IMG_SHAPES, len(files), box_shape=config.box_hw,
                       max_delta=(0, 0), mask_type="box",
                       random_crop="center" if config.RANDOM_CROP else False,
                       shuffle=False, repeat=False, seed=config.SEED, drop_remainder=False)
    for batch in ds.take(1):
        return batch
    return None
