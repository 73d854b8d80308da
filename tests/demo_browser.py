"""Drives the demo page (demo.py) in headless Chromium: the browser test's tooling.

Used by tests/test_demo.py, and on its own to take the README's screenshot:

    python tests/demo_browser.py --checkpoint_dir checkpoints/sample --screenshot docs/demo.png

which starts the demo on 127.0.0.1, picks the bundled astronaut example
(scikit-image, public domain), paints a stroke over the face, asks for 6
samples and saves the page.

Chromium: $PIIGAN_CHROMIUM, else `chromium` / `chromium-browser` on PATH (the
Debian package; Playwright's own browser download is not needed).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def chromium_path() -> str | None:
    """The system Chromium, or None."""
    for candidate in (os.environ.get("PIIGAN_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and (shutil.which(candidate) or Path(candidate).is_file()):
            return shutil.which(candidate) or candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def demo_server(args: list[str], log_path: Path, timeout: float = 240.0):
    """Runs ``python demo.py ARGS --port P`` on 127.0.0.1; yields its URL.

    Waits until the page answers (at most ``timeout`` seconds); the server is
    stopped (SIGTERM, then SIGKILL) when the block ends.
    """
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "demo.py"), *args, "--host",
                                 "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"demo.py exited with {proc.returncode}:\n"
                                       f"{Path(log_path).read_text()[-3000:]}")
                try:
                    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                            url, timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"demo.py did not answer on {url} within {timeout:.0f} s:\n"
                                       f"{Path(log_path).read_text()[-3000:]}")
                time.sleep(1.0)
            yield url
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)


@contextlib.contextmanager
def browser_page(url: str, width: int = 1280, height: int = 1000):
    """A headless Chromium page opened at ``url`` (Playwright, system Chromium)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                    args=["--no-sandbox", "--no-proxy-server"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.wait_for_selector("#editor canvas")
            yield page
        finally:
            browser.close()


def upload(page, path) -> None:
    """Loads an image file into the editor through its own file input."""
    page.set_input_files("#editor input[type=file]", str(path))
    page.wait_for_selector("#editor button[aria-label='Brush']")
    page.wait_for_timeout(1000)  # the canvas fits the image


def paint_stroke(page, points) -> None:
    """Paints one brush stroke through ``points``, fractions (x, y) of the editor canvas."""
    brush = page.locator("#editor button[aria-label='Brush']")
    if brush.count():
        brush.first.click()
    box = page.locator("#editor canvas").first.bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=4)
    page.mouse.up()
    page.wait_for_timeout(500)


def set_samples(page, n: int, seed: int | None = None) -> None:
    page.fill("#num-samples input[type=number]", str(n))
    page.keyboard.press("Tab")
    if seed is not None:
        page.fill("#seed input", str(seed))
        page.keyboard.press("Tab")


def inpaint(page, n: int, timeout_ms: int = 180_000) -> list[str]:
    """Presses Inpaint and waits for ``n`` new gallery images; returns their URLs."""
    before = set(page.eval_on_selector_all("#gallery img", "els => els.map(e => e.src)"))
    page.click("#inpaint")
    page.wait_for_function(
        """([n, before]) => {
            const srcs = [...document.querySelectorAll('#gallery img')].map(e => e.src);
            return srcs.length === n && srcs.every(s => !before.includes(s));
        }""", arg=[n, sorted(before)], timeout=timeout_ms)
    return page.eval_on_selector_all("#gallery img", "els => els.map(e => e.src)")


def fetch_png(page, url: str):
    """A served image as uint8 RGB."""
    import cv2
    import numpy as np

    body = page.request.get(url).body()
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, f"not an image: {url}"
    return image[:, :, ::-1]


def screenshot_readme(checkpoint_dir: str | None, out: Path, log_path: Path) -> None:
    """The README's screenshot: the astronaut example, a painted stroke, 6 samples."""
    args = ["--checkpoint_dir", checkpoint_dir] if checkpoint_dir else []
    with demo_server(args, log_path) as url, browser_page(url, 1280, 1000) as page:
        page.locator("img[src*='astronaut_face']").first.click()  # the bundled example
        page.wait_for_selector("#editor button[aria-label='Brush']")
        page.wait_for_timeout(2000)
        paint_stroke(page, [(0.44, 0.47), (0.50, 0.49), (0.56, 0.47)])
        set_samples(page, 6, seed=7)
        inpaint(page, 6)
        page.wait_for_timeout(1500)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint_dir", default=None)
    p.add_argument("--screenshot", default="docs/demo.png")
    p.add_argument("--log", default="/tmp/piigan_demo_screenshot.log")
    args = p.parse_args(argv)
    if chromium_path() is None:
        print("error: no chromium on PATH (apt-get install chromium) and no $PIIGAN_CHROMIUM",
              file=sys.stderr)
        return 2
    screenshot_readme(args.checkpoint_dir, Path(args.screenshot), Path(args.log))
    print(f"wrote {args.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
