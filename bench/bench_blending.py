"""What ``--blend poisson`` costs over ``paste``, against image side and hole size.

The aerial model (``pretrained/mauflex128``, or ``--checkpoint_dir``)
completes scikit-image's public-domain ``grass`` texture (tiled to the size)
with a square hole at its centre, ``--num_samples`` samples (default 10), once
with each compositing rule; both in this process, alternating, the median of
``--repeats`` calls after one that builds the graph. The Poisson solve runs on
the box around the hole (in each window of a large image), so its share
should follow the hole, not the image.

    python bench/bench_blending.py [--num_samples 10] [--repeats 3]

    RESULT blend_<H>_hole_<h>_paste_s / _poisson_s / _ratio
"""

from __future__ import annotations

import argparse
import sys

from _common import ROOT, Timer, configure_env, machine_description, result

configure_env()

CASES = ((128, 64), (256, 64), (512, 64), (512, 128), (1024, 64))


def texture(side: int):
    import numpy as np
    from skimage import data

    grass = data.grass()
    reps = -(-side // grass.shape[0])
    tiled = np.tile(grass, (reps, reps))[:side, :side]
    return np.repeat(tiled[..., None], 3, axis=-1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint_dir", default=str(ROOT / "pretrained" / "mauflex128"))
    p.add_argument("--num_samples", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    from piigan_tf.cli.common import load_tensorflow

    load_tensorflow()
    import numpy as np

    from piigan_tf.inference import Inpainter

    models = {blend: Inpainter.from_checkpoint(args.checkpoint_dir, blend=blend)
              for blend in ("paste", "poisson")}
    print(machine_description())
    print(f"{args.checkpoint_dir}, {args.num_samples} samples, median of {args.repeats} calls")
    for side, hole in CASES:
        image = texture(side)
        mask = np.zeros((side, side, 1), np.uint8)
        top = (side - hole) // 2
        mask[top:top + hole, top:top + hole] = 1
        timers = {blend: Timer() for blend in models}
        for model in models.values():
            model.sample(image, mask, args.num_samples, seed=0)  # builds the graph
        for _ in range(args.repeats):
            for blend, model in models.items():
                timers[blend].run(model.sample, image, mask, args.num_samples, 0)
        paste, poisson = timers["paste"].median_wall, timers["poisson"].median_wall
        print(f"{side:5d}^2 hole {hole:3d}: paste {paste:6.2f} s  poisson {poisson:6.2f} s  "
              f"({poisson / paste:.2f}x)", flush=True)
        name = f"blend_{side}_hole_{hole}"
        result(f"{name}_paste_s", paste)
        result(f"{name}_poisson_s", poisson)
        result(f"{name}_ratio", poisson / paste)
    return 0


if __name__ == "__main__":
    sys.exit(main())
