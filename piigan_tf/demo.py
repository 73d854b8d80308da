"""The interactive demo: paint a hole, see many completions, in a local web page.

``python demo.py`` builds the page with :func:`build_app` and serves it with
Gradio. Everything the page does goes through :class:`piigan_tf.inference.Inpainter`
(there is no second inference path); this module only turns what the page
sends into the API's inputs and its outputs into PNGs:

* the image editor's value (background + brush layers) becomes a uint8 RGB
  image and a mask (any painted pixel is a hole), or a mask drawn by the
  project's generators (:func:`hole_mask`);
* :func:`complete` calls ``Inpainter.sample`` once for all samples, with the
  seed rule of ``test.py`` (a given seed, else a random one that is reported);
* bad input (no image, no hole, an unreadable file, a request over
  ``Inpainter.max_pixels``) raises :class:`DemoError`, whose message the
  page shows; the server goes on serving.

Model choice (:func:`load_model`): ``--checkpoint_dir`` / ``--saved_model``
if given, else the most recent checkpoint under ``checkpoints/``, else the
shipped pretrained model in ``pretrained/celeba64/`` if it is there, else no
model: the page then says how to train one. The page's model menu
(:class:`ModelShelf`) switches between that model and every shipped model
folder (``pretrained/*``), each loaded on first use; the examples follow
the model chosen (:func:`write_examples`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("piigan_tf")

#: Most completions one request may ask for (the page's slider range).
MAX_DEMO_SAMPLES = 16
#: How the hole is made: painted with the brush, or drawn by piigan_tf.data.masks.
HOLE_SOURCES = ("painted", "centre box", "random box", "free-form")
#: The seed range of Inpainter.sample and test.py --seed.
SEED_RANGE = 2**31 - 1
TRAIN_HINT = "python train.py --preset quick"
#: Request folders of PNGs kept for download; older ones are deleted.
KEEP_REQUESTS = 32
#: Small images (a 64×64 model's) are shown enlarged, pixels kept sharp.
CSS = "#masked img, #gallery img { image-rendering: pixelated; }\n" \
      "#masked img { width: 100%; height: 100%; object-fit: contain; }"


class DemoError(Exception):
    """A problem with what the user sent; shown in the page, not as a traceback."""


# ------------------------------------------------------------------ model
def load_model(checkpoint_dir: str | os.PathLike | None = None,
               saved_model: str | os.PathLike | None = None,
               root: str | os.PathLike = "checkpoints", blend: str | None = None):
    """Finds the model the demo serves.

    Args:
        checkpoint_dir: a training checkpoint folder (``train.py``'s output) or
            a shipped model folder.
        saved_model: a SavedModel from ``export.py`` (version or base folder).
        root: where to look when neither is given: its most recent checkpoint,
            else the shipped pretrained model
            (:func:`piigan_tf.loading.default_model_dir`).
        blend: how completions join the known pixels
            (:data:`piigan_tf.blending.BLENDS`); None: the model's own.

    Returns:
        ``(inpainter, note)``: the :class:`~piigan_tf.inference.Inpainter` (None
        when there is no model) and a line for the page saying which model it is,
        or how to get one.

    Raises:
        CheckpointNotFoundError, FileNotFoundError, RuntimeError: an explicitly
        named ``checkpoint_dir`` / ``saved_model`` (or the found one) cannot be loaded.
        ValueError: ``blend`` is not one of the rules, or not a SavedModel's own.
    """
    from piigan_tf import loading
    from piigan_tf.inference import Inpainter

    if saved_model is not None:
        inpainter = Inpainter.from_saved_model(saved_model, blend=blend)
    else:
        found = checkpoint_dir if checkpoint_dir is not None else loading.default_model_dir(root)
        if found is None:
            shipped = loading.PRETRAINED_DIR
            with contextlib.suppress(ValueError):
                shipped = Path(shipped).resolve().relative_to(Path.cwd())
            return None, (f"**No trained model found** (no checkpoint under `{root}/`, no "
                          f"pretrained model in `{shipped}/`). Train one with "
                          f"`{TRAIN_HINT}` (a few minutes on a CPU), then restart the demo, "
                          "or start it with `--checkpoint_dir DIR` / `--saved_model DIR`.")
        inpainter = Inpainter.from_checkpoint(found, blend=blend)
    return inpainter, model_note(inpainter)


# ------------------------------------------------------------------ inputs
def _rgb(array: Any, what: str) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` from an editor array (grey, RGB or RGBA; alpha dropped)."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4) or min(array.shape[:2]) == 0:
        raise DemoError(f"the {what} is not an image (got an array of shape {array.shape})")
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.shape[2] in (1, 2):
        return np.repeat(array[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def editor_inputs(value: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """The image and the painted hole from a ``gr.ImageEditor`` value.

    Args:
        value: ``{"background": [H, W, 3|4], "layers": [[H, W, 4], ...],
            "composite": ...}`` numpy arrays, as the editor sends them.

    Returns:
        ``(image uint8 [H, W, 3], painted bool [H, W])``: painted is True
        wherever any layer has a non-transparent pixel.

    Raises:
        DemoError: no image.
    """
    background = value.get("background") if isinstance(value, dict) else None
    if background is None:
        raise DemoError("Upload an image (or pick one of the examples) first.")
    image = _rgb(background, "upload")
    painted = np.zeros(image.shape[:2], bool)
    for layer in value.get("layers") or []:
        layer = np.asarray(layer)
        if layer.shape[:2] != painted.shape:
            raise DemoError(f"a brush layer is {layer.shape[1]}×{layer.shape[0]} but the image is "
                            f"{painted.shape[1]}×{painted.shape[0]}; clear the editor and "
                            "upload the image again")
        alpha = layer[:, :, 3] if layer.ndim == 3 and layer.shape[2] == 4 else \
            layer.reshape(layer.shape[:2] + (-1,)).max(axis=2)
        painted |= alpha > 0
    return image, painted


def read_image_file(path: str | os.PathLike) -> np.ndarray:
    """An uploaded file as uint8 RGB, decoded as everywhere in the project.

    Raises:
        DemoError: the file is not an image (the message names it).
    """
    from piigan_tf.data import load_image_file

    name = Path(path).name
    try:
        image = load_image_file(path)
    except (ValueError, OSError) as e:
        log.info("cannot read %s: %s", path, e)
        raise DemoError(f"{name} is not an image that can be read; upload a PNG, JPEG, BMP, "
                        "GIF, WebP or TIFF file.") from None
    if image.ndim != 3 or min(image.shape[:2]) == 0:
        raise DemoError(f"{name} holds no pixels")
    return image


def training_hw(config) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(image_hw, box_hw)`` the model was trained with (reference defaults if unknown)."""
    if config is None:
        return (128, 128), (64, 64)
    return tuple(config.img_hw), tuple(config.box_hw)


def hole_mask(source: str, image_hw, painted: np.ndarray | None, config, seed: int) -> np.ndarray:
    """The hole as uint8 ``[H, W, 1]``, 255 = hole.

    ``painted`` uses the brush strokes. The generated holes are those of
    ``test.py --mask_type`` with the box scaled to the image in the training
    proportion (``HEIGHT / IMG_SHAPES[0]``, the same box as ``test.py`` on an
    image of the training size): ``centre box`` is the reference's centre hole,
    ``random box`` and ``free-form`` are drawn with the seed, as ``test.py``
    draws them for the first image (``image_mask(kind, [seed, 0], ...)``).
    """
    h, w = (int(v) for v in image_hw)
    if source == "painted":
        mask = np.zeros([h, w], bool) if painted is None else painted
        return (mask.astype(np.uint8) * 255)[:, :, None]
    if source not in HOLE_SOURCES:
        raise DemoError(f"unknown hole {source!r}; choose from {', '.join(HOLE_SOURCES)}")
    from piigan_tf.data import image_mask

    train_hw, train_box = training_hw(config)
    bh = min(h, max(1, round(h * train_box[0] / train_hw[0])))
    bw = min(w, max(1, round(w * train_box[1] / train_hw[1])))
    delta = (config.MAX_DELTA_HEIGHT, config.MAX_DELTA_WIDTH) if config else (8, 8)
    kind = {"centre box": "center", "random box": "random_box"}.get(source, "free_form")
    try:
        return image_mask(kind, [seed, 0], (h, w), (bh, bw), delta)
    except ValueError as e:
        raise DemoError(f"cannot draw a {source} hole in a {w}×{h} image: {e}") from None


def resolve_seed(seed: Any) -> int:
    """``test.py``'s rule: a given seed is used as is, none means a fresh random one."""
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        return secrets.randbelow(SEED_RANGE)
    try:
        value = float(seed)
    except (TypeError, ValueError):
        raise DemoError(f"the seed must be a whole number, got {seed!r}") from None
    if value != int(value) or not 0 <= value < SEED_RANGE:
        raise DemoError(f"the seed must be a whole number in [0, {SEED_RANGE}), got {seed!r}")
    return int(value)


# ------------------------------------------------------------------ sampling
class Outputs:
    """A folder of per-request PNG folders; keeps the newest ``keep`` of them."""

    def __init__(self, root: str | os.PathLike | None = None, keep: int = KEEP_REQUESTS):
        if root is None:  # a temporary folder, removed when the process ends
            import atexit

            root = tempfile.mkdtemp(prefix="piigan_demo_")
            atexit.register(shutil.rmtree, root, ignore_errors=True)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep = keep

    def new_request(self) -> Path:
        folder = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=self.root))
        old = sorted((p for p in self.root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        for stale in old[:-self.keep]:
            shutil.rmtree(stale, ignore_errors=True)
        return folder


def _write_png(path: Path, image: np.ndarray) -> str:
    """:func:`piigan_tf.utils.write_png`, its failure shown in the page."""
    from piigan_tf.utils import write_png

    try:
        return str(write_png(path, np.ascontiguousarray(image)))
    except OSError as e:
        raise DemoError(str(e)) from None


def complete(inpainter, image: np.ndarray, painted: np.ndarray | None, hole: str,
             num_samples: Any, seed: Any, outputs: Outputs, progress=None) -> dict:
    """Draws the completions of one image, as the page's button does.

    Args:
        inpainter: the :class:`~piigan_tf.inference.Inpainter` (None: no model).
        image: uint8 RGB ``[H, W, 3]``, any size.
        painted: bool ``[H, W]`` brush strokes (used when ``hole == "painted"``).
        hole: one of :data:`HOLE_SOURCES`.
        num_samples: 1 to :data:`MAX_DEMO_SAMPLES`.
        seed: int, or None/"" for a random one.
        outputs: where the PNGs go.
        progress: optional ``callable(fraction, desc=...)`` (``gr.Progress``).

    Returns:
        ``{"masked": path, "samples": [paths], "seed": int, "message": str}``;
        the masked input has the hole white, as in ``test.py``'s grid.

    Raises:
        DemoError: no model, no hole, bad numbers, or a request the API refuses
            (its message, e.g. over ``Inpainter.max_pixels``).
    """
    progress = progress or (lambda *a, **k: None)
    if inpainter is None:
        raise DemoError(f"No trained model is loaded. Train one with `{TRAIN_HINT}` and "
                        "restart the demo.")
    try:
        n = int(num_samples)
    except (TypeError, ValueError):
        raise DemoError(f"the number of samples must be a whole number, got {num_samples!r}") \
            from None
    if not 1 <= n <= MAX_DEMO_SAMPLES or n != num_samples:
        raise DemoError(f"the number of samples must be 1 to {MAX_DEMO_SAMPLES}, got {num_samples!r}")
    seed = resolve_seed(seed)
    h, w = image.shape[:2]
    mask = hole_mask(hole, (h, w), painted, inpainter.config, seed)
    holes = int(np.count_nonzero(mask))
    if holes == 0:
        raise DemoError("The hole is empty: paint over the part of the image to fill in "
                        "(brush tool), or pick a generated hole (centre box, random box, "
                        "free-form).")
    notes = []
    if holes == h * w:
        notes.append("The hole covers the whole image: nothing is known, so each sample is "
                     "drawn from the model alone.")
    progress(0.1, desc=f"sampling {n} completion{'s' * (n > 1)} of a {w}×{h} image "
                       "(one batched pass)")
    import tensorflow as tf

    started = time.perf_counter()
    try:
        samples = inpainter.sample(image, mask, num_samples=n, seed=seed)[0]
    except ValueError as e:  # the API's own message, e.g. over Inpainter.max_pixels
        hint = " (In the demo: scale the image down.)" \
            if "max_pixels" in str(e) or "GB of memory" in str(e) else ""
        raise DemoError(f"{e}{hint}") from None
    except (MemoryError, tf.errors.ResourceExhaustedError):
        raise DemoError("Out of memory: scale the image down or ask for fewer samples.") \
            from None
    seconds = time.perf_counter() - started
    progress(0.9, desc="writing PNGs")
    folder = outputs.new_request()
    masked = np.where(mask > 0, np.uint8(255), image)
    paths = [_write_png(folder / f"sample{j + 1:02d}_seed{seed}.png", s)
             for j, s in enumerate(samples)]
    masked_path = _write_png(folder / f"masked_seed{seed}.png", masked)
    message = (f"{n} completion{'s' * (n > 1)} of the {w}×{h} image in {seconds:.1f} s "
               f"(hole: {holes:,} pixels, {hole}). **Seed {seed}** reproduces them with this "
               "image and hole.")
    return {"masked": masked_path, "samples": paths, "seed": seed,
            "message": " ".join([message] + notes)}


# ------------------------------------------------------------------ models
class ModelShelf:
    """The models the page can switch between, by label, each loaded on first use.

    Args:
        first: ``(label, inpainter)`` of the model the demo started with
            (inpainter None when there is none).
        folders: label → shipped model folder, offered next to it.
        blend: how the models loaded here join completions to the known
            pixels (:data:`piigan_tf.blending.BLENDS`); None: each model's own.
    """

    def __init__(self, first: tuple[str, Any], folders: dict[str, Path] | None = None,
                 blend: str | None = None):
        label, inpainter = first
        self.blend = blend
        self._loaded = {label: inpainter} if inpainter is not None else {}
        self._folders: dict[str, Path | None] = {label: None} if inpainter is not None else {}
        for name, folder in (folders or {}).items():
            self._folders.setdefault(name, Path(folder))
        self.default = label if inpainter is not None else next(iter(self._folders), None)

    @classmethod
    def with_shipped(cls, inpainter, root: str | os.PathLike | None = None,
                     blend: str | None = None) -> "ModelShelf":
        """The demo's model plus every shipped model folder (``pretrained/*``), the
        latter loaded with ``blend`` (None: each model's own)."""
        from piigan_tf import loading

        folders = {}
        for folder in loading.shipped_model_dirs(root):
            folders[_display_path(folder)] = folder
        source = Path(str(inpainter.source)) if inpainter is not None else None
        if source is not None and source.name == loading.WEIGHTS_FILE:
            source = source.parent  # a shipped folder's source is its weights file
        label = _display_path(source) if source is not None else ""
        if inpainter is not None and label in folders:
            folders.pop(label)  # started from a shipped folder: offered once
        return cls((label, inpainter), folders, blend=blend)

    @property
    def labels(self) -> list[str]:
        return list(self._folders)

    def get(self, label: str | None):
        """The Inpainter of ``label`` (loaded now if not yet). Raises DemoError."""
        if label is None or label not in self._folders:
            raise DemoError(f"No model {label!r} here; choose one of: {', '.join(self.labels)}.")
        if label not in self._loaded:
            from piigan_tf.inference import Inpainter

            try:
                self._loaded[label] = Inpainter.from_checkpoint(self._folders[label],
                                                                blend=self.blend)
            except (FileNotFoundError, RuntimeError, ValueError) as e:
                raise DemoError(f"Cannot load {label}: {e}") from None
        return self._loaded[label]


def _display_path(path) -> str:
    path = Path(str(path))
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)


def model_note(inpainter) -> str:
    """The page's line about a model: where it is from and its training size."""
    config = getattr(inpainter, "config", None)
    trained = f", trained at {config.img_hw[0]}×{config.img_hw[1]}" if config else ""
    blend = getattr(inpainter, "blend", "paste")
    blended = "; fills blended into the known pixels (poisson)" if blend == "poisson" else ""
    return f"Model: `{_display_path(inpainter.source)}`{trained}{blended}."


# ------------------------------------------------------------------ examples
def write_examples(folder: str | os.PathLike, config) -> list[str]:
    """The page's examples for a model, as PNGs of scikit-image's public-domain photographs.

    The model's own examples at its training size
    (:func:`piigan_tf.inference.example_images`), then the same kind at its
    own size: a face model gets the astronaut's face framed like CelebA; an
    aerial model (MauFlex) the grass and gravel textures, whole; any other
    model sample-set images and two whole photographs (a cat, a coffee cup).
    Returns paths.
    """
    from skimage import data

    from piigan_tf.data import example_face
    from piigan_tf.data.sample import example_textures
    from piigan_tf.inference import AERIAL_DATASETS, FACE_DATASETS, example_images

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dataset = Path(config.DATASET).name.lower() if config is not None else ""
    images = example_images(config, num_images=2)
    if dataset in FACE_DATASETS:
        whole = [("astronaut_face_whole", example_face())]
    elif dataset in AERIAL_DATASETS:
        whole = [(f"{name}_whole", texture) for name, texture in example_textures()]
    else:
        whole = [("chelsea", data.chelsea()), ("coffee", data.coffee())]
    return [_write_png(folder / f"{name}.png", np.ascontiguousarray(image[:, :, :3]))
            for name, image in images + whole]


# ------------------------------------------------------------------ page
def _readable_upload_errors(editor):
    """Makes ``editor`` answer an undecodable upload with a message, not a traceback.

    The page's own file picker only takes images, but an API call (or a
    dropped file) can send anything; the stock editor fails in PIL with an
    error the page shows as a bare "Error". (Wrapped on the instance: a
    subclass of a Gradio component would make Gradio write a ``.pyi`` stub
    next to this module.)
    """
    import gradio as gr
    import PIL.Image

    stock = editor.preprocess

    def preprocess(payload):
        try:
            return stock(payload)
        except PIL.Image.DecompressionBombError as e:
            raise gr.Error(f"The image is too large to open: {e}", print_exception=False) \
                from None
        except (PIL.UnidentifiedImageError, OSError, ValueError) as e:
            log.info("editor upload not decodable: %s", e)
            raise gr.Error("The upload is not an image that can be read; use a PNG, JPEG, "
                           "BMP, GIF, WebP or TIFF file.", print_exception=False) from None

    editor.preprocess = preprocess
    return editor


def build_app(inpainter, note: str, outputs: Outputs | None = None,
              examples_dir: str | os.PathLike | None = None, shelf: ModelShelf | None = None,
              blend: str | None = None):
    """The Gradio page around ``inpainter`` (None: a page that says how to train).

    The button's endpoint is ``/inpaint``: inputs ``(editor value, hole,
    num_samples, seed)``, outputs ``(masked input, gallery of completions,
    seed, message)``; it completes with the model chosen in the page's menu
    (``inpainter`` for API calls). ``/open_file`` loads any uploaded file
    into the editor (with a message for files that are not images).
    ``shelf``: the models of the menu (default: ``inpainter`` and every
    shipped model folder, :meth:`ModelShelf.with_shipped`, loaded with
    ``blend``: None for each model's own).
    """
    import gradio as gr

    outputs = outputs or Outputs()
    examples_dir = Path(examples_dir) if examples_dir else outputs.root / "examples"
    shelf = shelf if shelf is not None else ModelShelf.with_shipped(inpainter, blend=blend)

    def examples_of(label):
        model = shelf.get(label) if label is not None else inpainter
        slug = "".join(c if c.isalnum() else "_" for c in (label or "none")).strip("_")
        return write_examples(examples_dir / slug, getattr(model, "config", None))

    def inpaint(editor, hole, num_samples, seed, label, progress=gr.Progress()):
        try:
            model = shelf.get(label) if label is not None else inpainter
            image, painted = editor_inputs(editor)
            result = complete(model, image, painted, hole, num_samples, seed, outputs,
                              progress=progress)
        except DemoError as e:
            raise gr.Error(str(e), print_exception=False) from None
        captions = [(p, f"sample {j + 1} (seed {result['seed']})")
                    for j, p in enumerate(result["samples"])]
        return result["masked"], captions, result["seed"], result["message"]

    def open_file(path):
        if path is None:
            return gr.skip(), ""
        try:
            image = read_image_file(path)
        except DemoError as e:
            raise gr.Error(str(e), print_exception=False) from None
        h, w = image.shape[:2]
        return ({"background": image, "layers": [], "composite": image},
                f"Opened {Path(path).name} ({w}×{h}). Paint the hole, then press Inpaint.")

    def new_seed():
        return secrets.randbelow(SEED_RANGE)

    def switch(label):
        try:
            model = shelf.get(label)
        except DemoError as e:
            raise gr.Error(str(e), print_exception=False) from None
        return (label, _header(model, model_note(model)),
                gr.Dataset(samples=[[p] for p in examples_of(label)]),
                f"Switched to `{label}`; its examples are below the image.")

    def _header(model, text):
        train_hw, _ = training_hw(getattr(model, "config", None))
        return ("## PiiGAN — pluralistic inpainting\nPaint over part of the image with the "
                "brush (or pick a generated hole), choose how many completions, press "
                f"**Inpaint**. Any size works; the model was trained at "
                f"{train_hw[0]}×{train_hw[1]}, so images near that size fit it best.\n\n" + text)

    with gr.Blocks(title="PiiGAN inpainting demo") as app:
        header = gr.Markdown(_header(inpainter, note), elem_id="model-note")
        current = gr.State(shelf.default if inpainter is not None else None)
        choice = gr.Dropdown(shelf.labels, value=shelf.default, label="model",
                             elem_id="model-choice", visible=len(shelf.labels) > 1,
                             interactive=True)
        with gr.Row():
            with gr.Column(scale=3):
                editor = gr.ImageEditor(
                    label="image — paint the hole", type="numpy", image_mode="RGBA",
                    sources=("upload", "clipboard"), transforms=(), format="png",
                    brush=gr.Brush(default_size=8, colors=["#ff00ff"], default_color="#ff00ff",
                                   color_mode="fixed"),
                    layers=False, elem_id="editor", height=420)
                _readable_upload_errors(editor)
                upload = gr.File(label="or open a file", file_count="single", type="filepath",
                                 elem_id="file-upload", height=90)
                examples = gr.Examples(
                    examples=[[p] for p in examples_of(shelf.default if inpainter is not None
                                                       else None)],
                    inputs=[editor], label="examples (scikit-image, public domain)",
                    elem_id="examples")
            with gr.Column(scale=2):
                hole = gr.Radio(list(HOLE_SOURCES), value="painted", label="hole",
                                elem_id="hole")
                num_samples = gr.Slider(1, MAX_DEMO_SAMPLES, value=6, step=1,
                                        label="number of samples", elem_id="num-samples")
                with gr.Row():
                    seed = gr.Number(value=new_seed, precision=0, minimum=0,
                                     maximum=SEED_RANGE - 1, label="seed", elem_id="seed")
                    new_seed_btn = gr.Button("new seed", elem_id="new-seed", scale=0)
                run_btn = gr.Button("Inpaint", variant="primary", elem_id="inpaint",
                                    interactive=inpainter is not None)
                status = gr.Markdown("" if inpainter is not None else note, elem_id="status")
        with gr.Row():
            masked = gr.Image(label="masked input (hole white)", type="filepath", format="png",
                              interactive=False, elem_id="masked", height=300)
            gallery = gr.Gallery(label="completions (click one, then download)", format="png",
                                 columns=4, height=300, elem_id="gallery", interactive=False,
                                 buttons=["download", "download_all", "fullscreen"])
        run_btn.click(inpaint, [editor, hole, num_samples, seed, current],
                      [masked, gallery, seed, status],
                      api_name="inpaint", concurrency_limit=1, show_progress="full")
        choice.change(switch, [choice], [current, header, examples.dataset, status],
                      api_name="switch_model")
        upload.upload(open_file, [upload], [editor, status], api_name="open_file")
        new_seed_btn.click(new_seed, None, [seed], api_name="new_seed", queue=False)
    return app


def launch(app, host: str = "127.0.0.1", port: int = 7860, allowed_paths=None, **kwargs):
    """Serves ``app`` (blocks until interrupted)."""
    app.queue(default_concurrency_limit=4, max_size=32)
    kwargs.setdefault("css", CSS)
    app.launch(server_name=host, server_port=port, show_error=True, inbrowser=False,
               allowed_paths=allowed_paths, **kwargs)
