"""Data layer: file lists, decoding, bringing images to a model's size, masks, named datasets.

Public names are imported lazily (PEP 562) so that TensorFlow-free parts,
e.g. ``python -m piigan_tf.cli.flist``, start without importing TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "masks": ("MASK_TYPES", "make_mask", "make_masks", "box_mask", "load_mask_file",
              "center_masks", "box_masks", "random_box_masks", "free_form_masks", "image_mask",
              "center_box_mask"),
    "pipeline": (
        "scan_files",
        "decode_image",
        "decode_and_crop",
        "build_dataset",
        "load_image_file",
    ),
    "preprocess": ("CROPS", "bring_to_size", "center_crop_image", "fit_to_model", "grid_windows",
                   "model_crop", "random_crop_image", "resize_image"),
    "flist": ("read_flist", "write_flist", "list_images", "split_files", "make_flists"),
    "datasets": ("DATASETS", "DatasetInfo", "DatasetNotFoundError", "resolve_dataset"),
    "sample": ("ensure_sample_dataset", "example_face"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load on first use
    from piigan_tf.data.datasets import DATASETS, DatasetInfo, DatasetNotFoundError, resolve_dataset
    from piigan_tf.data.flist import list_images, make_flists, read_flist, split_files, write_flist
    from piigan_tf.data.masks import (MASK_TYPES, box_mask, box_masks, center_box_mask,
                                      center_masks, free_form_masks, image_mask, load_mask_file,
                                      make_mask, make_masks, random_box_masks)
    from piigan_tf.data.pipeline import (
        build_dataset,
        decode_and_crop,
        decode_image,
        load_image_file,
        scan_files,
    )
    from piigan_tf.data.preprocess import (CROPS, bring_to_size, center_crop_image, fit_to_model,
                                           grid_windows, model_crop, random_crop_image,
                                           resize_image)
    from piigan_tf.data.sample import ensure_sample_dataset, example_face


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
