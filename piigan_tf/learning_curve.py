"""Draws a run's ``eval.csv`` (evaluation during training) as ``learning_curve.png``.

Command line (``piigan_tf.cli.learning_curve``, ``piigan-learning-curve``)::

    python -m piigan_tf.cli.learning_curve logs/celeba/eval.csv     # -> logs/celeba/learning_curve.png
    python -m piigan_tf.cli.learning_curve logs/celeba/eval.csv -o curve.png

A model trained in segments (a run continued with ``train.py --init_from``,
whose step counter starts again at 0) is drawn on one axis: give each
segment's CSV and the step its step 0 continues from; ``--write_csv`` keeps
the joined rows (steps counted from the first segment), and the restarts are
marked with vertical lines::

    python -m piigan_tf.cli.learning_curve first/eval.csv second/eval.csv --offsets 0 3632 \
        --write_csv joined.csv -o curve.png

Panels against the training step: hole PSNR (mean over samples and best of
N), hole SSIM, hole L1, the hole's colour offset, diversity (mean pairwise hole L1 of the N samples)
and, where the CSV has them, the texture ratio (hole TV / the truth's) and
SWD of hole patches (its noise floor dotted), with OpenCV Telea,
Navier–Stokes and FSR on the same images and holes as horizontal lines.
Each panel is zoomed on the evaluations after the first (the untrained
model's value at step 0 is far off and is marked at the edge instead).
This module needs matplotlib, not TensorFlow.

Whether a run is still improving is a question of trend against noise (a
GAN's evaluations jump by about a dB between checkpoints): :func:`trends`
fits a straight line to each measure over the last evaluations and calls it
improving or worsening only where the slope is more than twice its standard
error, and "flat" otherwise. The command prints that table under the figure.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

#: (column, panel title, better direction); baselines are ``<method>_<column>``.
PANELS = (
    ("psnr_hole", "hole PSNR (dB)", "higher"),
    ("ssim_hole", "hole SSIM", "higher"),
    ("l1_hole", "hole L1", "lower"),
    ("colour_offset_hole", "hole colour offset (mean RGB to truth's)", "lower"),
    ("diversity_l1", "diversity (pairwise hole L1)", "higher"),
    ("texture_ratio", "texture ratio (hole TV / truth's)", "closer to 1"),
    ("swd", "SWD of hole patches (x1e3)", "lower"),
    ("seam", "seam ratio (border step / beside)", "closer to real holes'"),
)
BASELINES = (("telea", "OpenCV Telea", "tab:orange"), ("navier_stokes", "OpenCV Navier-Stokes", "tab:green"),
             ("fsr", "OpenCV FSR", "tab:red"))


#: Measures whose trend the command prints: PANELS, with best of N after the mean PSNR.
TREND_KEYS = (("psnr_hole", "hole PSNR (dB)", "higher"),
              ("best_psnr_hole", "best-of-N hole PSNR (dB)", "higher")) + PANELS[1:]


@dataclass(frozen=True)
class Trend:
    """A least-squares line through one measure's last evaluations.

    ``slope`` and ``stderr`` are per 1,000 steps, in the measure's units (for
    the texture ratio, of its distance from 1). ``verdict`` is "improving" or
    "worsening" where ``|slope| > 2 * stderr`` (the direction judged by the
    measure's better direction), else "flat (within noise)".
    """

    key: str
    label: str
    last: float
    slope: float
    stderr: float
    verdict: str


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Slope and its standard error of the ordinary least-squares line (n >= 3)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    residual = sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(xs, ys))
    return slope, math.sqrt(residual / (n - 2) / sxx)


def trends(rows: list[dict], last: int = 6) -> list[Trend]:
    """The trend of each measure in :data:`TREND_KEYS` over the last ``last`` evaluations.

    Measures that fewer than 3 of those rows have are left out (a line through
    two points has no error to judge it by).

    Raises:
        ValueError: ``last`` below 3.
    """
    if last < 3:
        raise ValueError(f"a trend needs at least 3 evaluations, got last={last}")
    window = sorted(rows, key=lambda r: r["step"])[-last:]
    found = []
    for key, label, better in TREND_KEYS:
        have = [r for r in window if r.get(key) is not None and math.isfinite(float(r[key]))]
        if len(have) < 3:
            continue
        xs = [r["step"] / 1000.0 for r in have]
        values = [float(r[key]) for r in have]
        ys = [abs(v - 1.0) for v in values] if better == "closer to 1" else values
        slope, stderr = _fit(xs, ys)
        sign = -1.0 if better in ("lower", "closer to 1") else 1.0
        if abs(slope) > 2 * stderr:
            verdict = "improving" if sign * slope > 0 else "worsening"
        else:
            verdict = "flat (within noise)"
        found.append(Trend(key, label, values[-1], slope, stderr, verdict))
    return found


def format_trends(found: list[Trend], first_step: int, last_step: int) -> str:
    """The table the command prints: one line a measure."""
    lines = [f"trend over steps {first_step}..{last_step} (least-squares slope per 1,000 steps "
             "± its standard error; improving/worsening where |slope| > 2 errors):"]
    for t in found:
        of = " (slope of |ratio - 1|)" if t.key == "texture_ratio" else ""
        lines.append(f"  {t.label:34s} last {t.last:9.4g}   slope {t.slope:+9.3g} ± {t.stderr:<8.2g}"
                     f"  {t.verdict}{of}")
    return "\n".join(lines)


def join_segments(segments: list[list[dict]], offsets: list[int]) -> list[dict]:
    """One list of rows from segments of a run: segment i's steps + ``offsets[i]``.

    Where segments overlap, the later segment's rows win (its step 0 is the
    model the earlier one ended with, evaluated again).

    Raises:
        ValueError: the counts differ or the offsets decrease.
    """
    if len(segments) != len(offsets):
        raise ValueError(f"{len(segments)} CSV files but {len(offsets)} offsets")
    if any(b < a for a, b in zip(offsets, offsets[1:])):
        raise ValueError(f"offsets must not decrease: {offsets}")
    joined: list[dict] = []
    for rows, offset in zip(segments, offsets):
        shifted = [{**r, "step": int(r["step"]) + int(offset)} for r in rows]
        first = min((r["step"] for r in shifted), default=None)
        if first is not None:
            joined = [r for r in joined if r["step"] < first]
        joined += shifted
    return sorted(joined, key=lambda r: r["step"])


def zoomed_limits(values: list[float], references: list[float] = (),
                  margin: float = 0.08) -> tuple[float, float] | None:
    """A panel's y range that leaves out the first evaluation (the untrained model).

    The range covers ``values[1:]`` and the ``references`` (baselines, floors)
    with ``margin`` of its height on each side, so that step 0's far-off value
    does not flatten the part of the curve worth reading. ``None`` where fewer
    than two later values are finite (nothing to zoom on).
    """
    kept = [float(v) for v in list(values[1:]) + list(references) if math.isfinite(float(v))]
    if len([v for v in values[1:] if math.isfinite(float(v))]) < 2:
        return None
    lo, hi = min(kept), max(kept)
    pad = margin * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 1e-3)
    return lo - pad, hi + pad


def _reference_lines(key: str, last: dict) -> list[tuple[float, str, str, str, float]]:
    """The horizontal lines of ``key``'s panel: (value, label, colour, line style, width).

    The baselines on the same images and holes (from the last row), the real
    holes' texture ratio of 1 and the SWD noise floor. Both the drawing and the
    zoom (:func:`zoomed_limits`' references) take them from here.
    """
    lines = [(float(last[f"{m}_{key}"]), name, colour, ":", 1.5)
             for m, name, colour in BASELINES if f"{m}_{key}" in last]
    if key == "texture_ratio":
        lines.append((1.0, "real holes", "k", "--", 1.0))
    if key == "swd" and "swd_noise_floor" in last:
        lines.append((float(last["swd_noise_floor"]), "noise floor (real vs real)", "k", "--", 1.0))
    if key == "seam" and "truth_seam" in last:
        lines.append((float(last["truth_seam"]), "real holes", "k", "--", 1.0))
    return lines


def _zoom(ax, key: str, have: list[dict], also: list[float], references: list[float]) -> None:
    """Sets ``ax``'s y range by :func:`zoomed_limits`; marks an off-scale first point.

    ``also``: a second series drawn on the panel (best of N), its first value
    left out like the main one's; ``references``: the panel's horizontal lines.
    """
    values = [float(r[key]) for r in have]
    limits = zoomed_limits(values + [float(v) for v in also[1:]], references)
    if limits is None:
        return
    lo, hi = limits
    ax.set_ylim(lo, hi)
    step, first = have[0]["step"], values[0]
    if math.isfinite(first) and not lo <= first <= hi:
        edge, marker, va = (hi, "^", "top") if first > hi else (lo, "v", "bottom")
        ax.plot([step], [edge], marker, ms=7, color="tab:blue", clip_on=False)
        ax.annotate(f"step {step}: {first:.3g}", (step, edge), xytext=(6, -3 if va == "top" else 3),
                    textcoords="offset points", fontsize=7, va=va, color="tab:blue")


def plot_learning_curve(rows: list[dict], path: str | os.PathLike, title: str = "",
                        restarts: tuple[int, ...] = (), full_range: bool = False) -> Path:
    """Writes the figure of ``rows`` (from ``read_eval_log``) to ``path``.

    ``restarts``: steps where a segment of the run began (drawn as vertical lines).
    Each panel's y axis is zoomed on the evaluations after the first (see
    :func:`zoomed_limits`); a first point outside that range is drawn as a
    triangle at the panel's edge with its value written beside it.
    ``full_range`` draws every point on its own scale instead.

    Raises:
        ValueError: no rows.
    """
    import matplotlib.pyplot as plt

    fig = learning_curve_figure(rows, title, restarts, full_range)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curve_figure(rows: list[dict], title: str = "", restarts: tuple[int, ...] = (),
                          full_range: bool = False):
    """The matplotlib figure :func:`plot_learning_curve` writes (its panels in ``fig.axes``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("no evaluation rows to plot")
    rows = sorted(rows, key=lambda r: r["step"])
    steps = [r["step"] for r in rows]
    panels = [p for p in PANELS if any(p[0] in r for r in rows)]
    cols = 2 if len(panels) <= 4 else 3 if len(panels) <= 6 else 4
    lines = -(-len(panels) // cols)
    fig, axes = plt.subplots(lines, cols, figsize=(5 * cols, 3.25 * lines), sharex=True,
                             squeeze=False)
    for ax, (key, label, better) in zip(axes.flat, panels):
        have = [r for r in rows if key in r]  # early segments may predate a column
        ax.plot([r["step"] for r in have], [r[key] for r in have], "o-", ms=3, color="tab:blue",
                label="PiiGAN, mean of samples" if key != "diversity_l1" else "PiiGAN")
        best = ([r["best_psnr_hole"] for r in rows]
                if key == "psnr_hole" and "best_psnr_hole" in rows[0] else [])
        if best:
            ax.plot(steps, best, "s--", ms=3, color="tab:purple", label="PiiGAN, best of the N samples")
        lines = _reference_lines(key, rows[-1])
        for value, name, colour, style, width in lines:
            ax.axhline(value, color=colour, ls=style, lw=width, label=name)
        for i, step in enumerate(restarts):
            ax.axvline(step, color="grey", ls="--", lw=1,
                       label="run continued (--init_from)" if i == 0 else None)
        if not full_range:
            _zoom(ax, key, have, best, [value for value, *_ in lines])
        ax.set_title(f"{label} ({better} is better)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for index, ax in enumerate(axes.flat):
        if index >= len(panels):
            ax.axis("off")
        elif index + cols >= len(panels):  # nothing drawn below it: it carries the step axis
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("training step (iterations)")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
