"""REST request and response sizes: JSON lists of numbers vs base64 PNG/JPEG bytes.

TF Serving's REST API takes the ``serving_default`` signature's uint8 arrays
as nested JSON lists, and the ``sample_bytes`` signature's image files as
``{"b64": ...}`` strings (outputs whose names end in ``_bytes`` come back the
same way). This builds both requests for one 256x256 photograph
(scikit-image's astronaut, public domain, scaled down) with a centre hole of
half its side (the reference's proportion)
and 4 samples, runs both signatures in process to get the real responses,
checks they hold the same completions, and prints the body sizes:

    python bench/bench_request_sizes.py [--size 256] [--num_samples 4] [--checkpoint_dir DIR]

Request bodies are serialised as the README's clients do (``json.dumps``
defaults); responses compactly (no spaces), as the server writes them. Model:
--checkpoint_dir, else the shipped pretrained/celeba64 (else the newest
checkpoint); what is in the hole changes the PNG sizes a little.

    RESULT request_json_bytes / request_b64_png_bytes / request_b64_jpeg_bytes
    RESULT response_json_bytes / response_b64_png_bytes
    RESULT request_ratio / response_ratio   (JSON lists / base64 PNG)
"""

from __future__ import annotations

import argparse
import base64
import json
import sys

from _common import configure_env, machine_description

configure_env()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=256, help="image side (default 256)")
    p.add_argument("--num_samples", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint_dir", default=None)
    args = p.parse_args(argv)

    import cv2
    import numpy as np
    import tensorflow as tf

    from skimage import data

    from piigan_tf import loading
    from piigan_tf.data import center_box_mask
    from piigan_tf.inference import Inpainter

    print(machine_description())
    image = cv2.resize(data.astronaut(), (args.size, args.size), interpolation=cv2.INTER_AREA)
    mask = center_box_mask(image.shape[:2], (args.size // 2, args.size // 2))  # 255 = hole
    png = cv2.imencode(".png", image[:, :, ::-1])[1].tobytes()
    jpeg = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    mask_png = cv2.imencode(".png", mask)[1].tobytes()
    b64 = lambda data: {"b64": base64.b64encode(data).decode()}  # noqa: E731

    model = args.checkpoint_dir
    if model is None and loading.is_model_folder(loading.PRETRAINED_DIR):
        model = loading.PRETRAINED_DIR
    inpainter = Inpainter.from_checkpoint(model)
    print(f"model: {inpainter.source}")
    module = inpainter.module
    completions = module.sample(tf.constant(image[None]), tf.constant(mask[None]),
                                tf.constant(args.num_samples), tf.constant(args.seed)
                                )["completions"].numpy()
    pngs = module.sample_bytes(tf.constant([png]), tf.constant([mask_png]),
                               tf.constant(args.num_samples), tf.constant(args.seed)
                               )["completions_bytes"].numpy()
    decoded = np.stack([[tf.io.decode_png(x).numpy() for x in row] for row in pngs])
    assert np.array_equal(decoded, completions), "the two signatures disagree"

    scalars = {"num_samples": args.num_samples, "seed": args.seed}
    requests = {
        "json": {"signature_name": "serving_default",
                 "inputs": {"images": [image.tolist()], "masks": [mask.tolist()], **scalars}},
        "b64_png": {"signature_name": "sample_bytes",
                    "inputs": {"images_bytes": [b64(png)], "masks_bytes": [b64(mask_png)],
                               **scalars}},
        "b64_jpeg": {"signature_name": "sample_bytes",
                     "inputs": {"images_bytes": [b64(jpeg)], "masks_bytes": [b64(mask_png)],
                                **scalars}},
    }
    responses = {"json": {"outputs": completions.tolist()},
                 "b64_png": {"outputs": [[b64(x) for x in row] for row in pngs]}}
    request_sizes = {k: len(json.dumps(v)) for k, v in requests.items()}
    response_sizes = {k: len(json.dumps(v, separators=(",", ":"))) for k, v in responses.items()}

    print(f"{args.size}x{args.size} image: PNG file {len(png):,} B, JPEG (q95) {len(jpeg):,} B, "
          f"mask PNG {len(mask_png):,} B; {args.num_samples} samples: PNGs "
          f"{sum(len(x) for x in pngs.ravel()):,} B in all")
    for kind, size in request_sizes.items():
        print(f"request  {kind:9s} {size:>11,} B")
    for kind, size in response_sizes.items():
        print(f"response {kind:9s} {size:>11,} B")
    print(f"RESULT request_json_bytes {request_sizes['json']}")
    print(f"RESULT request_b64_png_bytes {request_sizes['b64_png']}")
    print(f"RESULT request_b64_jpeg_bytes {request_sizes['b64_jpeg']}")
    print(f"RESULT response_json_bytes {response_sizes['json']}")
    print(f"RESULT response_b64_png_bytes {response_sizes['b64_png']}")
    print(f"RESULT request_ratio {request_sizes['json'] / request_sizes['b64_png']:.1f}")
    print(f"RESULT response_ratio {response_sizes['json'] / response_sizes['b64_png']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
