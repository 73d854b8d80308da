"""The windowed fill scores as the whole image's on real photographs (the shipped model).

Four CelebA validation faces, each brought to 64x64 as the shipped model was
trained, are tiled 2 x 2 into a 128x128 image with a 32x32 hole at the centre
of the first face. Completed whole (window 128) the model sees all four
faces; windowed with window 64 and margin 16 it sees the first face alone,
with the default margin 32 (window 96) the face and strips of its neighbours.
The windowed fills score at least as well (mean hole PSNR no more than 0.5 dB
below the whole image's; here they score higher: the model was trained on
single faces, and the neighbours are context it never saw). Needs the shared data
(``../shared/data/celeba/val``) and the shipped model; skipped without them.
Nothing is written.
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from piigan_tf import loading  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VAL = ROOT.parent / "shared" / "data" / "celeba" / "val"


@pytest.mark.slow
@pytest.mark.skipif(not VAL.is_dir(), reason=f"no CelebA validation faces at {VAL}")
@pytest.mark.skipif(not loading.is_model_folder(loading.PRETRAINED_DIR),
                    reason="the shipped model pretrained/celeba64 is missing")
def test_windowed_fill_scores_as_the_whole_image():
    from piigan_tf.data import load_image_file
    from piigan_tf.data.preprocess import fit_to_model
    from piigan_tf.inference import Inpainter

    inpainter = Inpainter.from_checkpoint(loading.PRETRAINED_DIR)
    files = sorted(VAL.glob("*.jpg"))[:64]
    faces = [fit_to_model(load_image_file(f), inpainter.config) for f in files]
    mosaics = np.stack([np.concatenate([np.concatenate(faces[i:i + 2], 1),
                                        np.concatenate(faces[i + 2:i + 4], 1)], 0)
                        for i in range(0, len(faces), 4)])
    masks = np.zeros(mosaics.shape[:3] + (1,), np.uint8)
    masks[:, 16:48, 16:48] = 1
    whole = inpainter.sample(mosaics, masks, 4, seed=0, window=128)
    wide = inpainter.sample(mosaics, masks, 4, seed=0, window=64)  # margin 32: 96x96
    inpainter.margin = 16
    windowed = inpainter.sample(mosaics, masks, 4, seed=0, window=64)

    def hole_psnr(samples):
        diff = samples[:, :, 16:48, 16:48].astype(np.float64) - mosaics[:, None, 16:48, 16:48]
        mse = (diff ** 2).mean(axis=(2, 3, 4))
        return float(np.mean(10 * np.log10(255.0 ** 2 / mse)))

    assert not np.array_equal(whole, windowed)  # different computations
    assert not np.array_equal(whole, wide)
    scores = {name: hole_psnr(x) for name, x in (("whole", whole), ("window 96", wide),
                                                  ("window 64", windowed))}
    print("hole PSNR:", ", ".join(f"{k} {v:.2f} dB" for k, v in scores.items()))
    assert scores["window 64"] >= scores["whole"] - 0.5
    assert scores["window 96"] >= scores["whole"] - 0.5
