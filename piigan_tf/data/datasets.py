"""Named datasets and how a ``DATASET`` setting becomes a pair of file lists.

A dataset is two file lists, ``data/<name>/train.flist`` and ``val.flist``
(the reference's setting.yml names each dataset by such a pair). The real
datasets cannot be downloaded automatically (licences, sign-in pages), so a
missing one raises :class:`DatasetNotFoundError` saying where to get it and the
command that makes its lists. ``sample`` is built offline on first use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os

from piigan_tf.data.flist import DEFAULT_NUM_VAL, make_flists, read_flist, split_files, write_flist
from piigan_tf.data.sample import ensure_sample_dataset

logger = logging.getLogger("piigan_tf")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Where a named dataset comes from.

    Attributes:
        name: Registry key (lower case), also the folder under ``data/``.
        title: Human-readable name.
        url: Download page.
        instructions: What to download and which folder to list.
    """

    name: str
    title: str
    url: str
    instructions: str


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "celeba",
            "CelebA (aligned & cropped faces, Liu et al., ICCV 2015)",
            "http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",
            "download 'Align&Cropped Images' (img_align_celeba.zip, 202,599 JPEGs of 178x218) "
            "and unzip it; non-commercial research use only",
        ),
        DatasetInfo(
            "celebahq",
            "CelebA-HQ (30,000 faces at 1024x1024)",
            "https://github.com/switchablenorms/CelebAMask-HQ",
            "download CelebAMask-HQ and use its CelebA-HQ-img folder; non-commercial research use only",
        ),
        DatasetInfo(
            "plantvillage",
            "PlantVillage (leaf photographs, Hughes & Salathé 2015)",
            "https://github.com/spMohanty/PlantVillage-Dataset",
            "clone the repository and use its raw/color folder (one sub-folder per class; "
            "the listing is recursive)",
        ),
        DatasetInfo(
            "mauflex",
            "MauFlex (UAV images of Mauritia flexuosa palms, Morales et al., Forests 9(12):736, 2018)",
            "http://didt.inictel-uni.edu.pe/dataset/MauFlex_Dataset.rar",
            "download and extract MauFlex_Dataset.rar (research use with citation of "
            "Morales et al. 2018, doi:10.3390/f9120736); tiles of a few large frames are best "
            "split by frame (--val_match with a part of one frame's file names)",
        ),
        DatasetInfo(
            "sample",
            "Sample (256 views of scikit-image's bundled photographs)",
            "(bundled with scikit-image, no download)",
            "built automatically by piigan_tf.data.sample.ensure_sample_dataset()",
        ),
    )
}


class DatasetNotFoundError(FileNotFoundError):
    """A named dataset's file lists are missing; the message says how to make them."""


def _flist_command(name: str, data_dir: str) -> str:
    out = "" if os.path.normpath(data_dir) == "data" else f" --out {data_dir}"
    return f"python -m piigan_tf.cli.flist --folder /path/to/{name} --name {name}{out}"


def _named_dataset(info: DatasetInfo, data_dir: str) -> tuple[str, str]:
    folder = os.path.join(data_dir, info.name)
    train, val = os.path.join(folder, "train.flist"), os.path.join(folder, "val.flist")
    missing = [p for p in (train, val) if not os.path.isfile(p)]
    if missing:
        raise DatasetNotFoundError(
            f"dataset {info.name!r} not found at {missing[0]} — download {info.title} from "
            f"{info.url} ({info.instructions}), then run `{_flist_command(info.name, data_dir)}`"
        )
    return train, val


def _derived_dir(data_dir: str, kind: str, label: str, source: str) -> str:
    """``data_dir/<kind>/<label>-<hash of source>``: one folder per source path.

    Named after the source's absolute path, so lists made for a folder or a
    list never land in a named dataset's folder (``--dataset /x/mauflex``
    must not overwrite ``data/mauflex``) and two sources with the same name
    (two folders called ``train``) do not share, and keep remaking, one cache.
    """
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:8]
    return os.path.join(data_dir, kind, f"{label or 'root'}-{digest}")


def _folder_dataset(folder: str, data_dir: str) -> tuple[str, str]:
    """File lists for an image folder, cached in ``data_dir/folders/<name>-<hash>/``."""
    folder = os.path.abspath(folder)
    out_dir = _derived_dir(data_dir, "folders", os.path.basename(os.path.normpath(folder)), folder)
    train, val = os.path.join(out_dir, "train.flist"), os.path.join(out_dir, "val.flist")
    source_file = os.path.join(out_dir, "source.txt")
    # The cache is reused only for the folder it was made from.
    try:
        with open(source_file, encoding="utf-8") as handle:
            cached_source = handle.read().strip()
    except OSError:
        cached_source = None
    if cached_source == folder and os.path.isfile(train) and os.path.isfile(val):
        return train, val
    num_train, num_val = make_flists(folder, out_dir)
    with open(source_file, "w", encoding="utf-8") as handle:
        handle.write(folder + "\n")
    logger.info("made file lists for %s: %d train, %d val in %s", folder, num_train, num_val, out_dir)
    return train, val


def _sibling_val_flist(train_flist: str) -> str | None:
    folder, base = os.path.split(os.path.abspath(train_flist))
    candidates = []
    if "train" in base:
        candidates += [base.replace("train", "val"), base.replace("train", "validation")]
    candidates += ["val.flist", "validation.flist"]
    for name in candidates:
        path = os.path.join(folder, name)
        if name != base and os.path.isfile(path):
            return path
    return None


def _flist_dataset(flist: str, data_dir: str) -> tuple[str, str]:
    """Uses a file list for training, with a sibling validation list or a held-out split."""
    val = _sibling_val_flist(flist)
    if val is not None:
        return flist, val
    # No validation list: hold files out with the same rule as make_flists,
    # written to a derived folder so the given list is never overwritten.
    source = os.path.abspath(flist)
    parent = os.path.basename(os.path.dirname(source))
    stem = os.path.splitext(os.path.basename(source))[0]
    out_dir = _derived_dir(data_dir, "lists", f"{parent}-{stem}" if parent else stem, source)
    files = [os.path.abspath(p) for p in read_flist(flist)]
    train_files, val_files = split_files(files, DEFAULT_NUM_VAL, seed=0)
    train, val = os.path.join(out_dir, "train.flist"), os.path.join(out_dir, "val.flist")
    write_flist(train, train_files)
    write_flist(val, val_files)
    logger.info(
        "no validation list next to %s: held out %d of its files (lists in %s)",
        flist,
        len(val_files),
        out_dir,
    )
    return train, val


def resolve_dataset(
    name_or_path: str | os.PathLike, data_dir: str | os.PathLike = "data"
) -> tuple[str, str]:
    """Turns a dataset setting into ``(train_flist, val_flist)`` paths.

    Accepted forms, tried in this order:

    * a registered name (case-insensitive: ``celeba``, ``celebahq``,
      ``plantvillage``, ``mauflex``) → ``data_dir/<name>/train.flist`` and
      ``val.flist``, which must exist;
    * ``sample`` → built offline on first use (:func:`ensure_sample_dataset`);
    * an image folder → lists made for it under
      ``data_dir/folders/<folder name>-<hash of its path>/`` (cached, one
      cache per folder path);
    * a ``.flist``/``.txt`` file list → used for training, with a sibling
      ``val.flist`` (or the name with ``train`` → ``val``/``validation``) for
      validation if there is one, else 1,000 files (10 % for small lists) are
      held out into ``data_dir/lists/<parent>-<stem>-<hash of its path>/``.

    Args:
        name_or_path: Dataset name, folder or file list.
        data_dir: The project's data directory.

    Returns:
        ``(train_flist, val_flist)``.

    Raises:
        DatasetNotFoundError: If a named dataset's lists are missing (the
            message gives the download page and the command to run) or the
            argument is neither a name nor an existing folder or list.
    """
    data_dir = os.fspath(data_dir)
    value = os.fspath(name_or_path)
    key = value.lower()
    if key == "sample":
        return ensure_sample_dataset(data_dir)
    if key in DATASETS:
        return _named_dataset(DATASETS[key], data_dir)
    if os.path.isdir(value):
        return _folder_dataset(value, data_dir)
    if os.path.isfile(value) and value.lower().endswith((".flist", ".txt")):
        return _flist_dataset(value, data_dir)
    raise DatasetNotFoundError(
        f"unknown dataset {value!r}: not one of {sorted(DATASETS)}, "
        "an existing image folder, or a .flist file list"
    )
