"""Plot a run's eval.csv (evaluation during training) as learning_curve.png.

Examples:
    python -m piigan_tf.cli.learning_curve logs/celeba/eval.csv     # -> logs/celeba/learning_curve.png
    python -m piigan_tf.cli.learning_curve logs/celeba/eval.csv -o curve.png

A model trained in segments (continued with train.py --init_from, whose step
counter starts again at 0) is drawn on one axis: give each segment's CSV and
the step its step 0 continues from; --write_csv keeps the joined rows:
    python -m piigan_tf.cli.learning_curve first/eval.csv second/eval.csv --offsets 0 3632 \\
        --write_csv joined.csv -o curve.png

It also prints each measure's trend over the last evaluations (--trend_last):
the least-squares slope per 1,000 steps with its standard error, and whether
the measure is improving, worsening or flat within the evaluations' noise;
a way to decide whether more training is worth it.

Each panel's y axis is zoomed on the evaluations after the first, so the
untrained model's far-off step-0 value does not flatten the curve; that point
is drawn at the panel's edge with its value (--full_range draws it to scale).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from piigan_tf.cli.common import new_parser


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    p.add_argument("csv", nargs="+",
                   help="eval.csv written during training (in the run's log folder); several "
                        "for a run trained in segments, in order")
    p.add_argument("--offsets", type=int, nargs="+", default=None,
                   help="for several CSVs: the step each one's step 0 continues from "
                        "(e.g. 0 3632); later segments are marked as restarts")
    p.add_argument("-o", "--output", default=None,
                   help="PNG to write (default: learning_curve.png next to the first CSV)")
    p.add_argument("--write_csv", default=None, metavar="PATH",
                   help="also write the joined rows (steps from the first segment) as a CSV")
    p.add_argument("--restarts", type=int, nargs="*", default=None,
                   help="steps to mark as restarts (default: the offsets after the first)")
    p.add_argument("--trend_last", type=int, default=6, metavar="N",
                   help="print each measure's trend over the last N evaluations "
                        "(at least 3; 0 prints none; default 6)")
    p.add_argument("--title", default=None, help="figure title (default: the CSV's folder)")
    p.add_argument("--full_range", action="store_true",
                   help="scale each panel to every point, the untrained step 0 included "
                        "(default: zoom on the later evaluations and mark step 0 at the edge)")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.trend_last and args.trend_last < 3:
        parser.error(f"--trend_last needs at least 3 evaluations (or 0 for none), got {args.trend_last}")
    from piigan_tf.learning_curve import format_trends, join_segments, plot_learning_curve, trends
    from piigan_tf.run_logs import read_eval_log, write_eval_log

    sources = [Path(c) for c in args.csv]
    offsets = args.offsets if args.offsets is not None else [0] * len(sources)
    if len(sources) > 1 and args.offsets is None:
        parser.error("several CSV files need --offsets (the step each one continues from)")
    segments = []
    for source in sources:
        if not source.is_file():
            print(f"error: {source}: no such file (evaluation during training writes "
                  "<log dir>/eval.csv when EVAL_STEPS > 0)", file=sys.stderr)
            return 2
        segments.append(read_eval_log(source))
        if not segments[-1]:
            print(f"error: {source} holds no complete evaluation row", file=sys.stderr)
            return 2
    try:
        rows = join_segments(segments, offsets)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    restarts = tuple(args.restarts if args.restarts is not None else offsets[1:])
    output = Path(args.output) if args.output else sources[0].with_name("learning_curve.png")
    title = args.title if args.title is not None else \
        f"{sources[0].parent.name}: evaluation during training"
    if args.write_csv:
        write_eval_log(rows, args.write_csv)
    plot_learning_curve(rows, output, title, restarts, full_range=args.full_range)
    print(f"{len(rows)} evaluations (steps {rows[0]['step']}..{rows[-1]['step']}) -> {output}"
          + (f", {args.write_csv}" if args.write_csv else ""))
    if args.trend_last:
        window = rows[-args.trend_last:]
        found = trends(rows, args.trend_last)
        if found:
            print(format_trends(found, window[0]["step"], window[-1]["step"]))
        else:
            print(f"no trend: {len(window)} evaluation(s), a trend needs 3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
