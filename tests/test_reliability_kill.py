"""Kill, interrupt and restart ``train.py``; the result must equal an uninterrupted run.

One reference process trains 10 steps without interruption. A second run of
the same command is meanwhile killed and restarted in sequence:

1. ``kill -9`` while checkpoint 4 is being written (its ``ckpt-4_temp``
   folder exists): the restart must resume from checkpoint 2;
2. ``kill -9`` at a random moment between checkpoints 4 and 6;
3. SIGTERM: a checkpoint is written for the step it stops at, exit code 143;
4. run to the end.

Its final checkpoint (weights, both optimizers' slots and step counters, the
noise generator state) and its per-step losses must be bit-identical to the
reference's; the first fresh segment's losses against the reference's are the
determinism check (two processes, ``--seed 3 --deterministic``, CPU).

Process starts dominate the time (~20 s each to trace the train step), so
the whole scenario is one module fixture shared by the tests below.
"""

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
MAX_ITERS = 10
TRAIN_SPE = 2
WAIT = 300  # seconds: generous limit for any one wait, so a hang fails instead of blocking CI


def write_images(folder: Path, count: int = 20, size: int = 40) -> Path:
    """Smooth random PNGs (compress like photos)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        coarse = rng.integers(0, 256, (6, 6, 3)).astype(np.uint8)
        cv2.imwrite(str(folder / f"{i:02d}.png"),
                    cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC))
    return folder


def train_command(images: Path, data_dir: Path, run: Path) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), "--preset", "tiny",
            "--dataset", str(images), "--set", f"DATA_DIR={data_dir}",
            "--set", "D_STEPS=1", "--set", f"TRAIN_SPE={TRAIN_SPE}", "--set", "VAL_PSTEPS=1",
            "--set", "STATIC_VIEW_SIZE=0", "--set", "VIZ_MAX_OUT=1",
            "--max_iters", str(MAX_ITERS), "--seed", "3", "--deterministic",
            "--checkpoint_dir", str(run / "ckpt"), "--log_dir", str(run / "logs"),
            "--no_progress"]


class Run:
    """One ``train.py`` process, its output in ``run/<name>.log``."""

    def __init__(self, command, run: Path, name: str):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
                   PYTHONUNBUFFERED="1")
        self.log_path = run / f"{name}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def wait(self, timeout=WAIT) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self, sig) -> int:
        self.proc.send_signal(sig)
        return self.wait()

    @property
    def output(self) -> str:
        return self.log_path.read_text()


def latest_step(ckpt_dir: Path) -> int:
    """The step of the checkpoint the ``checkpoint`` index file names (0 if none)."""
    try:
        text = (ckpt_dir / "checkpoint").read_text()
    except FileNotFoundError:
        return 0
    m = re.search(r'^model_checkpoint_path: "(?:.*/)?ckpt-(\d+)"', text, re.M)
    return int(m.group(1)) if m else 0


def wait_until(condition, run: Run, what: str, poll: float = 0.002):
    deadline = time.monotonic() + WAIT
    while not condition():
        if run.proc.poll() is not None:
            pytest.fail(f"train.py exited ({run.proc.returncode}) before {what}:\n"
                        + run.output[-3000:])
        if time.monotonic() > deadline:
            run.kill(signal.SIGKILL)
            pytest.fail(f"timed out waiting for {what}:\n" + run.output[-3000:])
        time.sleep(poll)


def read_checkpoint(path) -> dict:
    reader = tf.train.load_checkpoint(str(path))
    # save_counter counts this process's saves, not training state.
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name not in ("_CHECKPOINTABLE_OBJECT_GRAPH",
                            "save_counter/.ATTRIBUTES/VARIABLE_VALUE")}


def step_of(values: dict) -> int:
    return int(values["g_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"])


def check_restorable(ckpt_dir: Path, expected_step: int) -> None:
    """The latest checkpoint loads, holds the step it is named after, and is finite."""
    latest = tf.train.latest_checkpoint(str(ckpt_dir))
    assert latest and latest.endswith(f"ckpt-{expected_step}"), latest
    values = read_checkpoint(latest)
    assert step_of(values) == expected_step
    assert all(np.isfinite(v).all() for v in values.values()
               if isinstance(v, np.ndarray) and v.dtype.kind == "f")


def read_losses(run: Path) -> list[dict]:
    from piigan_tf.run_logs import read_loss_log

    return read_loss_log(run / "logs" / "losses.jsonl")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    from piigan_tf.data import resolve_dataset

    root = tmp_path_factory.mktemp("kill")
    images = write_images(root / "images")
    data_dir = root / "data"
    resolve_dataset(images, data_dir)  # file lists made once, before two processes share them
    ref_dir, run_dir = root / "reference", root / "interrupted"
    ref_dir.mkdir()
    run_dir.mkdir()
    ckpt = run_dir / "ckpt"
    result = {"events": []}
    t0 = time.monotonic()
    # The reference runs alongside the interrupted run (separate folders).
    reference = Run(train_command(images, data_dir, ref_dir), ref_dir, "reference")

    # 1. kill -9 while checkpoint 4 is being written.
    first = Run(train_command(images, data_dir, run_dir), run_dir, "run1")

    def writing_ckpt4():
        try:
            names = os.listdir(ckpt)
        except FileNotFoundError:
            return False
        return any(n.startswith("ckpt-4_temp") or (n.startswith("ckpt-4.") and "tempstate" in n)
                   for n in names)

    wait_until(writing_ckpt4, first, "checkpoint 4 is being written", poll=0.001)
    first.kill(signal.SIGKILL)
    result["debris"] = sorted(n for n in os.listdir(ckpt) if "temp" in n)
    result["after_kill_1"] = latest_step(ckpt)
    check_restorable(ckpt, result["after_kill_1"])
    result["first_losses"] = read_losses(run_dir)  # before a restart rewrites the file
    result["events"].append(f"{time.monotonic() - t0:.0f} s: kill -9 while writing ckpt-4 -> "
                            f"latest ckpt-{latest_step(ckpt)}")

    # 2. restart, then kill -9 at a random moment after checkpoint 4, at the
    # latest when checkpoint 6 appears: step 3 needs an interval to spare
    # before the last step (a fast machine ran 4 steps in 1.5 s).
    second = Run(train_command(images, data_dir, run_dir), run_dir, "run2")
    wait_until(lambda: latest_step(ckpt) >= 4, second, "checkpoint 4")
    delay = random.Random().uniform(0.0, 1.5)
    deadline = time.monotonic() + delay
    wait_until(lambda: time.monotonic() >= deadline or latest_step(ckpt) >= 6, second,
               "the kill moment")
    second.kill(signal.SIGKILL)
    result["run2_output"] = second.output
    result["after_kill_2"] = latest_step(ckpt)
    check_restorable(ckpt, result["after_kill_2"])
    result["events"].append(f"{time.monotonic() - t0:.0f} s: kill -9 {delay:.2f} s after "
                            f"ckpt-4 -> latest ckpt-{result['after_kill_2']}")

    # 3. restart, then SIGTERM just after an on-interval checkpoint, so the
    # step it stops at is (almost always) off the interval: only the
    # signal handler's save can have written it.
    third = Run(train_command(images, data_dir, run_dir), run_dir, "run3")
    target = result["after_kill_2"] + TRAIN_SPE
    wait_until(lambda: latest_step(ckpt) >= target, third, f"checkpoint {target}")
    time.sleep(0.3)
    result["sigterm_rc"] = third.kill(signal.SIGTERM)
    result["run3_output"] = third.output
    result["after_sigterm"] = latest_step(ckpt)
    check_restorable(ckpt, result["after_sigterm"])
    result["events"].append(f"{time.monotonic() - t0:.0f} s: SIGTERM -> exit "
                            f"{result['sigterm_rc']}, latest ckpt-{result['after_sigterm']}")

    # 4. run to the end.
    last = Run(train_command(images, data_dir, run_dir), run_dir, "run4")
    result["final_rc"] = last.wait()
    result["run4_output"] = last.output
    result["reference_rc"] = reference.wait()
    result["reference_output"] = reference.output
    result["reference"], result["interrupted"] = ref_dir, run_dir
    result["seconds"] = time.monotonic() - t0
    print("\n".join(result["events"]), f"\nscenario: {result['seconds']:.0f} s")
    return result


def test_kill_while_writing_a_checkpoint_resumes_from_the_previous_one(scenario):
    # The kill really hit a save in progress, and left its debris behind ...
    assert scenario["debris"], "the kill did not land while ckpt-4 was being written"
    # ... which is never picked up: the index still names checkpoint 2.
    assert scenario["after_kill_1"] == 2
    # The restart resumed there and cleaned the debris away.
    out = scenario["run2_output"]
    assert re.search(r"resumed from \S*ckpt-2 at step 2", out), out[-2000:]
    assert "left by an interrupted checkpoint save" in out


def test_random_kill_loses_at_most_one_checkpoint_interval(scenario):
    assert scenario["after_kill_2"] >= 4
    assert scenario["after_kill_2"] % TRAIN_SPE == 0


def test_sigterm_saves_the_step_it_stops_at_and_exits_143(scenario):
    out = scenario["run3_output"]
    assert scenario["sigterm_rc"] == 128 + signal.SIGTERM, out[-2000:]
    m = re.search(r"stopped by SIGTERM: checkpoint saved in \S+ at step (\d+)", out)
    assert m, out[-2000:]
    stopped = int(m.group(1))
    assert scenario["after_sigterm"] == stopped
    assert "Traceback" not in out
    # Only the program's own messages: no library INFO lines (absl logs one per checkpoint save).
    assert not re.search(r"^INFO (?!piigan_tf)", out, re.M), out[-2000:]
    # Resumed exactly there.
    assert re.search(rf"resumed from \S*ckpt-{stopped} at step {stopped}",
                     scenario["run4_output"])


def test_interrupted_run_ends_bit_identical_to_uninterrupted_run(scenario):
    assert scenario["reference_rc"] == 0, scenario["reference_output"][-3000:]
    assert scenario["final_rc"] == 0, scenario["run4_output"][-3000:]
    ref = read_checkpoint(scenario["reference"] / "ckpt" / f"ckpt-{MAX_ITERS}")
    got = read_checkpoint(scenario["interrupted"] / "ckpt" / f"ckpt-{MAX_ITERS}")
    assert step_of(got) == MAX_ITERS
    assert ref.keys() == got.keys()
    # Weights, Adam slots and iteration counters of both optimizers, noise seed state.
    assert any("noise" in k for k in ref) and any("g_optimizer" in k for k in ref)
    differing = [k for k in ref if not np.array_equal(ref[k], got[k])]
    assert not differing, f"{len(differing)} of {len(ref)} tensors differ, e.g. {differing[:5]}"
    # Every step's losses too: same data at the same step after each restart.
    ref_losses, got_losses = read_losses(scenario["reference"]), read_losses(
        scenario["interrupted"])
    assert [r["step"] for r in got_losses] == list(range(1, MAX_ITERS + 1))
    assert got_losses == ref_losses


def test_two_runs_with_the_same_seed_give_bit_identical_losses(scenario):
    """Determinism: the reference and the first (fresh) segment of the other run."""
    first = scenario["first_losses"]
    assert len(first) >= 3
    ref = read_losses(scenario["reference"])[:len(first)]
    assert first == ref  # exact float equality of every loss term
