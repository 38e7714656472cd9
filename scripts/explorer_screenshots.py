"""Screenshots of every view of `genae explore` (for docs/explorer.md and the README) and the page's
own latency measure (performance.now() from an input to the updated image), in headless Chromium.

    .venv/bin/python scripts/explorer_screenshots.py runs/demo [more runs…] --out docs/explorer

Each shot is of the first run offering that view (for draw, the first with a classifier). Latency: 30 inputs per view, the page's median.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from PIL import Image

from genae.explorer import build_site, start_server
from genae.files import replacing

VIEWS = ("latent", "labels", "draw", "complete", "interpolate", "runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/explorer"))
    parser.add_argument("--width", type=int, default=900, help="shots are shrunk to at most this many pixels wide")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or sys.exit("explorer_screenshots: Debian's chromium is not installed")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        server = start_server(build_site(args.runs, Path(tmp)), 0)
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 820})
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        page.wait_for_function("window.genae && genae.ready", timeout=120_000)
        runs = page.evaluate("genae.runs.map(r => r.id)")
        latency = {}
        for view in VIEWS:
            candidates = []
            for run in runs:
                page.select_option("#run-select", run)
                page.wait_for_function(f"genae.ready && genae.run === {run!r}")
                if page.is_enabled(f"nav button[data-view={view}]"):
                    candidates.append((view == "draw" and not page.evaluate("genae.manifest.capabilities.classifies"), run))
            run = min(candidates)[1]   # the first offering the view (for draw: the first that classifies)
            page.select_option("#run-select", run)
            page.wait_for_function(f"genae.ready && genae.run === {run!r}")
            page.click(f"nav button[data-view={view}]")
            page.evaluate("genae.timings.length = 0")
            for k in range(30):
                act(page, view, k)
                page.wait_for_function("genae.busy === 0")
            if view != "runs":
                latency[f"{view} ({run})"] = statistics.median(page.evaluate("genae.timings"))
            shot = Image.open(io.BytesIO(page.screenshot(full_page=False)))
            if shot.width > args.width:
                shot = shot.resize((args.width, round(shot.height * args.width / shot.width)), Image.LANCZOS)
            with replacing(args.out / f"{view}.png") as path:
                shot.convert("RGB").quantize(colors=128).save(path, optimize=True)
        browser.close()
        server.shutdown()
    print(json.dumps({"median_ms_from_input_to_image": latency}, indent=2))


def act(page, view: str, k: int) -> None:
    """One input of the view: a click on the map, a label, a stroke, a resample, a new end."""
    if view == "latent":
        box = page.locator("#latent-map").bounding_box()
        if page.is_visible("#latent-map"):
            page.mouse.click(box["x"] + box["width"] * (0.2 + 0.02 * k), box["y"] + box["height"] * (0.7 - 0.015 * k))
        else:
            page.click("#random-z")
    elif view == "labels":
        page.click(f"#label-buttons button:nth-child({k % 10 + 1})")
    elif view == "draw":
        if k == 0:
            page.click("#draw-test")
        box = page.locator("#draw-canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * (0.2 + 0.02 * k))
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * (0.25 + 0.02 * k), steps=3)
        page.mouse.up()
    elif view == "complete":
        page.click("#complete-test" if k == 0 else "#complete-resample")
    elif view == "interpolate":
        page.click("#interp-a" if k % 2 else "#interp-b")


if __name__ == "__main__":
    main()
