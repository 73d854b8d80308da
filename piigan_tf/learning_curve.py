"""Draws a run's ``eval.csv`` (evaluation during training) as ``learning_curve.png``.

Command line::

    python -m piigan_tf.learning_curve logs/celeba/eval.csv             # -> logs/celeba/learning_curve.png
    python -m piigan_tf.learning_curve logs/celeba/eval.csv -o curve.png

Four panels against the training step: hole PSNR (mean over samples and
best of N), hole SSIM, hole L1 and diversity (mean pairwise hole L1 of the N
samples), with OpenCV Telea and Navier–Stokes on the same images and holes
as horizontal lines. This module needs matplotlib, not TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

#: (column, panel title, better direction); baselines are ``<method>_<column>``.
PANELS = (
    ("psnr_hole", "hole PSNR (dB)", "higher"),
    ("ssim_hole", "hole SSIM", "higher"),
    ("l1_hole", "hole L1", "lower"),
    ("diversity_l1", "diversity (pairwise hole L1)", "higher"),
)
BASELINES = (("telea", "OpenCV Telea", "tab:orange"), ("navier_stokes", "OpenCV Navier-Stokes", "tab:green"))


def plot_learning_curve(rows: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Writes the four-panel figure of ``rows`` (from ``read_eval_log``) to ``path``.

    Raises:
        ValueError: no rows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("no evaluation rows to plot")
    rows = sorted(rows, key=lambda r: r["step"])
    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    for ax, (key, label, better) in zip(axes.flat, PANELS):
        ax.plot(steps, [r[key] for r in rows], "o-", ms=3, color="tab:blue",
                label="PiiGAN, mean of samples" if key != "diversity_l1" else "PiiGAN")
        if key == "psnr_hole" and "best_psnr_hole" in rows[0]:
            ax.plot(steps, [r["best_psnr_hole"] for r in rows], "s--", ms=3, color="tab:purple",
                    label="PiiGAN, best of the N samples")
        for method, name, colour in BASELINES:
            column = f"{method}_{key}"
            if column in rows[-1]:
                ax.axhline(rows[-1][column], color=colour, ls=":", lw=1.5, label=name)
        ax.set_title(f"{label} ({better} is better)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for ax in axes[-1]:
        ax.set_xlabel("training step (iterations)")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m piigan_tf.learning_curve",
                                description="Plot a run's eval.csv as learning_curve.png.")
    p.add_argument("csv", help="eval.csv written during training (in the run's log folder)")
    p.add_argument("-o", "--output", default=None,
                   help="PNG to write (default: learning_curve.png next to the CSV)")
    p.add_argument("--title", default=None, help="figure title (default: the CSV's folder)")
    args = p.parse_args(argv)
    from piigan_tf.periodic_evaluation import read_eval_log

    source = Path(args.csv)
    if not source.is_file():
        print(f"error: {source}: no such file (evaluation during training writes "
              "<log dir>/eval.csv when EVAL_STEPS > 0)", file=sys.stderr)
        return 2
    rows = read_eval_log(source)
    if not rows:
        print(f"error: {source} holds no complete evaluation row", file=sys.stderr)
        return 2
    output = Path(args.output) if args.output else source.with_name("learning_curve.png")
    title = args.title if args.title is not None else f"{source.parent.name}: evaluation during training"
    plot_learning_curve(rows, output, title)
    print(f"{len(rows)} evaluations (steps {rows[0]['step']}..{rows[-1]['step']}) -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
