"""Cost of a request against image side and hole size, with holes completed in windows.

Each case runs in a fresh process (so its peak resident memory is its own):
the shipped model (pretrained/celeba64, window 256) completes a photograph
(scikit-image's astronaut, public domain, scaled to the size) with a square
hole at its centre, ``--num_samples`` samples (default 4). Printed per case:
the first call (it builds the graph), the second (the steady cost), the
process's peak RSS, and the estimate ``Inpainter`` checks before running
(``piigan_tf.windows.estimate``), so the memory model can be held against
the measure. Two sweeps and one comparison:

* image side at a fixed 160 x 160 hole: 256 (one whole window), 512, 1024,
  2048, and a 4000 x 3000 frame (also with a 256 x 256 hole);
* hole side at a fixed 1024 x 1024 image: 32 ... 384;
* a 512 x 512 image completed whole (``--window 512``: the computation before
  windows) against the windowed default, as a ratio.

    python bench/bench_windows.py [--num_samples 4] [--quick]

    RESULT side_<H>x<W>_hole_<h>_s / _gb       (second call, peak RSS)
    RESULT hole_<h>_s / _gb                    (1024 x 1024 image)
    RESULT whole_over_windowed_512_time / _memory
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _common import ROOT, configure_env, machine_description

configure_env()


def one(height: int, width: int, hole: int, num_samples: int, window: int | None) -> dict:
    """Runs one case in this process; returns its figures."""
    import cv2
    import numpy as np
    from skimage import data

    from piigan_tf.inference import Inpainter

    inpainter = Inpainter.from_checkpoint(ROOT / "pretrained" / "celeba64")
    inpainter.max_pixels = 2**40  # the bench measures; the memory check still runs
    if window:
        inpainter.window = window
    image = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_LINEAR)
    mask = np.zeros((height, width, 1), np.uint8)
    top, left = (height - hole) // 2, (width - hole) // 2
    mask[top:top + hole, left:left + hole] = 1
    estimate, ph, pw = inpainter.pass_size(mask[None], num_samples)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        out = inpainter.sample(image, mask, num_samples, seed=0)
        times.append(time.perf_counter() - start)
    assert out.shape == (1, num_samples, height, width, 3)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"first_s": times[0], "second_s": times[1], "peak_gb": peak / 1e9,
            "estimate_gb": estimate / 1e9, "pass": f"{ph}x{pw}"}


def run_case(height, width, hole, num_samples, window=None) -> dict:
    cmd = [sys.executable, __file__, "--one", str(height), str(width), str(hole),
           "--num_samples", str(num_samples)] + (["--window", str(window)] if window else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    print(f"{height:5d}x{width:<5d} hole {hole:3d}  pass {figures['pass']:>9s}  first "
          f"{figures['first_s']:6.1f} s  second {figures['second_s']:6.1f} s  peak "
          f"{figures['peak_gb']:5.2f} GB  (estimate {figures['estimate_gb']:5.2f} GB)",
          flush=True)
    return figures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--num_samples", type=int, default=4)
    p.add_argument("--quick", action="store_true", help="fewer cases (no 2048, no 4000x3000)")
    p.add_argument("--one", type=int, nargs=3, default=None, help=argparse.SUPPRESS)
    p.add_argument("--window", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        from piigan_tf.cli.common import load_tensorflow

        load_tensorflow()
        print(json.dumps(one(*args.one, args.num_samples, args.window)))
        return 0

    print(machine_description())
    n = args.num_samples
    print(f"-- image side, 160 x 160 hole, {n} samples")
    sides = [(256, 256), (512, 512), (1024, 1024)] + ([] if args.quick else
                                                     [(2048, 2048), (3000, 4000)])
    for h, w in sides:
        f = run_case(h, w, 160, n)
        print(f"RESULT side_{h}x{w}_hole_160_s {f['second_s']:.2f}")
        print(f"RESULT side_{h}x{w}_hole_160_gb {f['peak_gb']:.2f}")
    if not args.quick:
        f = run_case(3000, 4000, 256, n)
        print(f"RESULT side_3000x4000_hole_256_s {f['second_s']:.2f}")
        print(f"RESULT side_3000x4000_hole_256_gb {f['peak_gb']:.2f}")
    print(f"-- hole side, 1024 x 1024 image, {n} samples")
    for hole in (32, 64, 128, 160, 256, 384):
        f = run_case(1024, 1024, hole, n)
        print(f"RESULT hole_{hole}_s {f['second_s']:.2f}")
        print(f"RESULT hole_{hole}_gb {f['peak_gb']:.2f}")
    print(f"-- 512 x 512, 160 x 160 hole, {n} samples: whole image (window 512) vs windowed")
    whole = run_case(512, 512, 160, n, window=512)
    windowed = run_case(512, 512, 160, n)
    print(f"RESULT whole_over_windowed_512_time {whole['second_s'] / windowed['second_s']:.2f}")
    print(f"RESULT whole_over_windowed_512_memory {whole['peak_gb'] / windowed['peak_gb']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
