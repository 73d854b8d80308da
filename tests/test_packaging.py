"""Packaging: pyproject.toml against requirements.txt, the console commands, the shipped model.

Nothing is installed here (no pip, no network): the tests read pyproject.toml
and requirements.txt and import the command modules, which load no TensorFlow,
so they take about a second.
"""

import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from piigan_tf import loading

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
#: The scripts at the repository root and the command each one is.
SCRIPTS = {"train.py": "piigan-train", "test.py": "piigan-sample",
           "evaluate.py": "piigan-evaluate", "export.py": "piigan-export",
           "demo.py": "piigan-demo"}
#: The commands without a script at the root (``python -m piigan_tf.cli.<name>``).
TOOLS = {"flist": "piigan-flist", "learning_curve": "piigan-learning-curve",
         "pretrained": "piigan-pretrained", "convert": "piigan-convert"}
COMMANDS = sorted({*SCRIPTS.values(), *TOOLS.values()})


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def normalised(requirement: str) -> str:
    """A requirement with its name normalised (PEP 503) and no spaces."""
    name, rest = re.match(r"([A-Za-z0-9._-]+)(.*)", requirement.replace(" ", "")).groups()
    return re.sub(r"[-_.]+", "-", name).lower() + rest


def entry_point(command: str):
    module, _, attr = PROJECT["scripts"][command].partition(":")
    return getattr(importlib.import_module(module), attr)


def test_requirements_txt_is_pyproject_dependencies_and_extras():
    """requirements.txt (the README's install command, CI) installs exactly what
    ``pip install '.[demo,test]'`` does."""
    in_pyproject = PROJECT["dependencies"] + [
        r for extra in PROJECT["optional-dependencies"].values() for r in extra]
    in_txt = requirement_lines(ROOT / "requirements.txt")
    assert sorted(map(normalised, in_txt)) == sorted(map(normalised, in_pyproject))
    assert set(PROJECT["optional-dependencies"]) == {"demo", "test"}


def test_every_program_is_a_console_command_in_cli():
    assert sorted(PROJECT["scripts"]) == COMMANDS
    for command in COMMANDS:
        assert PROJECT["scripts"][command].startswith("piigan_tf.cli."), command
    for name, command in TOOLS.items():
        assert PROJECT["scripts"][command] == f"piigan_tf.cli.{name}:main"
    # No other module of the package has a program of its own.
    for path in (ROOT / "piigan_tf").rglob("*.py"):
        if path.parent.name != "cli":
            text = path.read_text()
            assert "def main(" not in text and "__main__" not in text, path


def test_every_script_is_a_console_command_with_the_same_main():
    for script, command in SCRIPTS.items():
        spec = importlib.util.spec_from_file_location(f"piigan_{script[:-3]}_script", ROOT / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.main is entry_point(command), script


@pytest.mark.parametrize("command", COMMANDS)
def test_console_command_has_main_argv_and_help_exits_0(command, capsys):
    main = entry_point(command)
    assert callable(main)
    params = list(inspect.signature(main).parameters.values())
    assert [(p.name, p.default) for p in params] == [("argv", None)]
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: ")


def test_command_modules_set_the_environment_before_tensorflow_loads():
    """Importing a command module imports no TensorFlow (nor Gradio), so the
    settings made before ``main`` loads it hold: oneDNN at import, the log
    level in ``load_tensorflow``, the first call of every ``main``."""
    modules = sorted({PROJECT["scripts"][c].partition(":")[0] for c in COMMANDS})
    code = ("import os, sys\n"
            f"for m in {modules!r}: __import__(m)\n"
            "heavy = sorted(m for m in ('tensorflow', 'keras', 'gradio') if m in sys.modules)\n"
            "print(heavy, os.environ.get('TF_ENABLE_ONEDNN_OPTS'))\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.split() == ["[]", "1"]
    # The file lists and the learning curve need no TensorFlow (they start
    # instantly); every other program loads it first thing, quietly.
    tf_free = {"piigan_tf.cli.flist", "piigan_tf.cli.learning_curve"}
    code = ("import sys, piigan_tf.cli.flist, piigan_tf.cli.learning_curve, piigan_tf.data.flist, "
            "piigan_tf.learning_curve, piigan_tf.run_logs\n"
            "print('tensorflow' in sys.modules)\n")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.split() == ["False"]
    for name in modules:
        module = importlib.import_module(name)
        if name in tf_free:
            assert "tensorflow" not in inspect.getsource(module), name
            continue
        body = inspect.getsource(module.main).split("parse_args(argv)\n", 1)[1]
        assert body.lstrip().startswith("load_tensorflow(args.verbose)"), name


def test_the_wheel_holds_every_subpackage_and_the_shipped_model():
    includes = SETUPTOOLS["packages"]["find"]["include"]
    for init in (ROOT / "piigan_tf").rglob("__init__.py"):
        name = ".".join(init.parent.relative_to(ROOT).parts)
        assert any(re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), name)
                   for p in includes), name
    data_files = SETUPTOOLS["data-files"]
    # Every shipped model folder is installed beside the default one.
    assert data_files == {(loading.SHARE_DIR.parent / folder.name).as_posix():
                          [f"pretrained/{folder.name}/*"]
                          for folder in loading.shipped_model_dirs(ROOT / "pretrained")}
    assert loading.SHARE_DIR.as_posix() in data_files
    assert (ROOT / "pretrained" / "celeba64" / loading.WEIGHTS_FILE).is_file()


def test_shipped_model_dir_prefers_the_checkout_then_an_install_prefix(tmp_path):
    checkout = tmp_path / "checkout" / "pretrained" / "celeba64"
    prefix = tmp_path / "venv"
    installed = prefix / loading.SHARE_DIR
    assert loading.shipped_model_dir(checkout, [str(prefix), None]) == checkout  # neither
    installed.mkdir(parents=True)
    (installed / loading.WEIGHTS_FILE).write_bytes(b"")
    assert loading.shipped_model_dir(checkout, [None, str(prefix)]) == installed
    checkout.mkdir(parents=True)
    (checkout / loading.WEIGHTS_FILE).write_bytes(b"")
    assert loading.shipped_model_dir(checkout, [str(prefix)]) == checkout


def test_each_shipped_model_stays_within_10_mb():
    """Every model folder the wheel installs (generator, config, logs) stays within 10 MB,
    and so does every one in training that is to be installed."""
    folders = (loading.shipped_model_dirs(ROOT / "pretrained")
               + loading.shipped_model_dirs(ROOT / "in_training"))
    assert folders
    for folder in folders:
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        assert size <= 10 * 1024**2, f"{folder} holds {size / 1024**2:.1f} MB"

