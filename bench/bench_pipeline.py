"""Benchmark 4: input pipeline throughput vs what training consumes.

Runs the training input stream exactly as ``Trainer.train_dataset`` builds
it (decode, random crop, masks, batching into D_STEPS + 1 batches, the noise
z/alpha/eps) and measures images per second after a warm-up. Training
consumes (D_STEPS + 1) * BATCH_SIZE images per iteration (78 at the reference
configuration); its rate comes from ``--train_s_per_iter`` (e.g. the figure
of ``bench_train.py``) or, without it, from timing two training iterations
here. It also times building the embedded sample set from scratch, offline
(the quickstart's first step; target: under 15 s).

Run: ``python bench/bench_pipeline.py [--dataset data/celeba/train.flist]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import _common

DEFAULT_DATASETS = ("data/celeba_real/train.flist", "data/celeba/train.flist", "sample")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default=None,
                   help="dataset option as train.py takes it (default: CelebA if present, "
                        "else the embedded sample set)")
    p.add_argument("--preset", default=None)
    p.add_argument("--elements", type=int, default=20,
                   help="training elements (iterations' worth of batches) to time")
    p.add_argument("--train_s_per_iter", type=float, default=None)
    p.add_argument("--onednn", type=int, default=1, choices=(0, 1))
    args = p.parse_args(argv)
    _common.configure_env(onednn=bool(args.onednn))
    import tensorflow as tf

    from piigan_tf.config import load_config
    from piigan_tf.builders import build_piigan, training_dataset
    from piigan_tf.data import read_flist, resolve_dataset, scan_files

    with tempfile.TemporaryDirectory() as scratch:  # the quickstart's first step, from scratch
        t0 = time.perf_counter()
        resolve_dataset("sample", data_dir=scratch)
        sample_build_s = time.perf_counter() - t0
    print(f"embedded sample set built in {sample_build_s:.1f} s")

    config = load_config(preset=args.preset)
    dataset = args.dataset
    if dataset is None:
        for candidate in DEFAULT_DATASETS:
            try:
                resolve_dataset(candidate, config.DATA_DIR)
                dataset = candidate
                break
            except Exception:  # noqa: BLE001 - try the next one
                continue
    config = config.replace(DATASET=dataset)
    train_flist, _ = resolve_dataset(config.DATASET, config.DATA_DIR)
    files, _ = scan_files(read_flist(train_flist))
    c = config
    print(f"machine: {_common.machine_description()}")
    print(f"dataset: {dataset} ({len(files)} files), {c.img_hw[0]}x{c.img_hw[1]} crops, "
          f"batch {c.BATCH_SIZE} x {c.D_STEPS + 1} per element")

    def stream():  # what training streams
        return training_dataset(c, files)

    per_element = (c.D_STEPS + 1) * c.BATCH_SIZE
    rates = []
    for _ in range(3):
        it = iter(stream())
        next(it)  # start-up: threads, first files
        t0 = time.perf_counter()
        for _ in range(args.elements):
            element = next(it)
        element["images"].numpy()
        rates.append(args.elements * per_element / (time.perf_counter() - t0))
        del it
    rates.sort()
    pipeline = rates[len(rates) // 2]
    print("pipeline: " + ", ".join(f"{r:.0f}" for r in rates) + " images/s (3 runs)")

    s_per_iter = args.train_s_per_iter
    if s_per_iter is None:
        sys.path.insert(0, str(_common.ROOT / "bench"))
        from bench_train import synthetic_batch

        model = build_piigan(config)
        data = synthetic_batch(config, c.D_STEPS + 1)
        step = tf.function(model.train_step)
        _common.block(step(data))
        t = _common.Timer()
        for _ in range(2):
            _common.block(t.run(step, data))
        s_per_iter = t.median_wall
        print(f"training iteration (measured here): {s_per_iter:.2f} s")
    consumed = per_element / s_per_iter
    print(f"training consumes {per_element} images per {s_per_iter:.2f} s iteration = "
          f"{consumed:.1f} images/s; the pipeline delivers {pipeline / consumed:.0f}x that "
          f"(so it needs ~{100 * consumed / pipeline:.1f}% of the machine while training)")
    print(f"machine after: {_common.machine_description()}")
    _common.result("pipeline_images_per_s", pipeline)
    _common.result("train_images_per_s", consumed)
    _common.result("pipeline_ratio", pipeline / consumed)
    _common.result("sample_dataset_build_s", sample_build_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
