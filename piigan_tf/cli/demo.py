"""Interactive demo: paint a hole in an image, see many completions in a web page.

Examples:
    python demo.py                                   # latest checkpoint, http://127.0.0.1:7860
    python demo.py --checkpoint_dir checkpoints/celeba64 --port 8000
    python demo.py --saved_model export/piigan

Default model: the most recently written checkpoint under checkpoints/, else
the pretrained model in pretrained/celeba64/ if it is there; with neither the
page says how to train one. The page serves on 127.0.0.1 only unless --host
says otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from piigan_tf.cli.common import add_blend, add_model_source, load_tensorflow, new_parser

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__)
    add_model_source(
        p, checkpoint_help="training checkpoint folder (default: the most recent under "
                           "checkpoints/, else pretrained/celeba64/)",
        saved_model_help="SavedModel from export.py: a version folder or its base folder")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--output_dir", default=None,
                   help="where the PNGs of each request go (default: a temporary folder)")
    add_blend(p, "completions of every model offered")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    load_tensorflow(args.verbose)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from piigan_tf import demo

    try:
        inpainter, note = demo.load_model(args.checkpoint_dir, args.saved_model,
                                          blend=args.blend)
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if inpainter is None:
        print(f"note: no trained model found; the page says how to train one "
              f"(`{demo.TRAIN_HINT}`)", file=sys.stderr)
    # SIGTERM ends the server like Ctrl-C does, so the temporary PNG folder is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    outputs = demo.Outputs(args.output_dir)
    app = demo.build_app(inpainter, note, outputs, blend=args.blend)
    print(f"PiiGAN demo ({note.strip('*')}) on http://{args.host}:{args.port}", flush=True)
    demo.launch(app, host=args.host, port=args.port, allowed_paths=[str(outputs.root)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
