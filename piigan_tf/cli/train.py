"""Train PiiGAN.

Examples:
    python train.py --preset quick                 # embedded sample set, a few minutes on CPU
    python train.py --dataset mauflex              # data/mauflex/{train,val}.flist
    python train.py --dataset /path/to/images      # any folder of images
    python train.py --dataset celeba --set TRAIN_SPE=1000 --set MASK_TYPE=free_form
    python train.py --summary                      # parameter counts, then exit

Training resumes automatically from the latest checkpoint in
checkpoints/<dataset>/ (use --fresh to start over). Ctrl-C or SIGTERM saves a
checkpoint and exits (codes 130/143); the README's Reliability section says what
survives kills, full disks and bad files.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from piigan_tf.cli.common import load_tensorflow, new_parser

# oneDNN's CPU kernels (TF's default only on CPUs with AVX-512): the training
# step runs ~1.3x faster with them on an AVX2 CPU (docs/performance.md). They
# must be chosen before TensorFlow is imported; TF_ENABLE_ONEDNN_OPTS=0 opts out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument("--config", default=None,
                   help="YAML config (default: setting.yml at the repository root)")
    p.add_argument("--preset", default=None,
                   help="configurations of the full architecture: quick (README "
                        "quickstart, ~3 min on 2 CPU cores), celeba64 (the shipped face model), "
                        "mauflex128 (the reference setting on MauFlex), tiny (unit tests)")
    p.add_argument("--dataset", default=None,
                   help="celeba | celebahq | plantvillage | mauflex | sample | a folder of "
                        "images | a .flist file")
    p.add_argument("--batch_size", type=int, default=None, help="BATCH_SIZE (reference: 13)")
    p.add_argument("--max_iters", type=int, default=None,
                   help="stop after this many generator steps (MAX_ITERS)")
    p.add_argument("--checkpoint_dir", default=None,
                   help="checkpoint folder (default: checkpoints/<dataset>)")
    p.add_argument("--log_dir", default=None, help="TensorBoard folder (default: logs/<dataset>)")
    p.add_argument("--seed", type=int, default=None, help="SEED for data order, masks and noise")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set TRAIN_SPE=500 (repeatable)")
    p.add_argument("--init_from", default=None, metavar="MODEL_DIR",
                   help="start a fresh run's generator from this model (a shipped folder such "
                        "as pretrained/celeba64, or a checkpoint folder): fine-tuning; the "
                        "extractor, critics and optimizers start new. Ignored on resume")
    p.add_argument("--fresh", action="store_true",
                   help="start over: remove this run's checkpoints (ckpt-*, the 'checkpoint' "
                        "index) from the checkpoint folder when training starts; other files "
                        "there stay")
    p.add_argument("--summary", action="store_true",
                   help="print each network's parameter count and exit")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic TF ops (bit-identical reruns on CPU; slower)")
    p.add_argument("--jit_compile", action="store_true", help="compile the train step with XLA")
    p.add_argument("--mixed_precision", nargs="?", const="auto", default=None,
                   choices=("auto", "bfloat16", "float16"),
                   help="compute in 16-bit floats, variables in float32: bfloat16 (the "
                        "default on CPU) or float16 with loss scaling (the default on GPU); "
                        "see docs/performance.md for when it pays off")
    p.add_argument("--strategy", default="default", choices=("default", "mirrored", "multi_worker"),
                   help="tf.distribute strategy: default (one device), mirrored (all GPUs of "
                        "this machine), multi_worker (several machines, cluster in TF_CONFIG); "
                        "BATCH_SIZE is per device; NUM_GPUS > 1 means mirrored over that many "
                        "GPUs (README: Scaling out)")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p


def resolve(args) -> "Config":  # noqa: F821 - imported lazily
    from piigan_tf.config import load_config, parse_overrides

    overrides = parse_overrides(args.overrides)
    for key, value in (("DATASET", args.dataset), ("BATCH_SIZE", args.batch_size),
                       ("MAX_ITERS", args.max_iters), ("SEED", args.seed)):
        if value is not None:
            overrides[key] = value
    return load_config(args.config, overrides, preset=args.preset)


def configure_logging(verbose: bool = False) -> None:
    """This program's messages (the ``piigan_tf`` logger) from INFO up; other
    libraries' (TensorFlow's absl notes on every checkpoint save) only from
    WARNING up, unless ``verbose``."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("piigan_tf").setLevel(logging.INFO)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    load_tensorflow(args.verbose)
    configure_logging(args.verbose)
    from piigan_tf.config import ConfigError
    from piigan_tf.data import DatasetNotFoundError
    from piigan_tf.distribute import MultiWorkerError

    try:
        config = resolve(args)
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from piigan_tf.training import (CheckpointReadError, CheckpointWriteError,
                                    ConfigMismatchError, DataPipelineError, Trainer,
                                    TrainingDiverged, parameter_summary, seed_everything)

    if args.summary:
        print(parameter_summary(config))
        return 0
    seed_everything(config.SEED, deterministic=args.deterministic)
    try:
        from piigan_tf.distribute import make_strategy

        trainer = Trainer(config, checkpoint_dir=args.checkpoint_dir, log_dir=args.log_dir,
                          resume=not args.fresh, jit_compile=args.jit_compile,
                          strategy=make_strategy(args.strategy, config.NUM_GPUS),
                          mixed_precision=args.mixed_precision, init_from=args.init_from)
    except DatasetNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"training on {config.DATASET}: checkpoints in {trainer.checkpoint_dir}, "
          f"TensorBoard logs in {trainer.log_dir}")
    try:
        trainer.fit(progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: checkpoint saved in {trainer.checkpoint_dir} at step "
              f"{trainer.step}; run the same command to resume", file=sys.stderr)
        return 130
    except (TrainingDiverged, ConfigMismatchError, CheckpointWriteError, CheckpointReadError,
            DataPipelineError, MultiWorkerError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if trainer.stopped_by:  # SIGTERM/SIGINT: checkpoint written, exit as the signal would
        print(f"stopped by {trainer.stopped_by}: checkpoint saved in {trainer.checkpoint_dir} "
              f"at step {trainer.step}; run the same command to resume", file=sys.stderr)
        return 128 + int(getattr(signal, trainer.stopped_by))
    print(f"done: step {trainer.step}, checkpoint in {trainer.checkpoint_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
