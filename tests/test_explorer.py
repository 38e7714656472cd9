"""`genae explore` in a real browser: Debian's Chromium, driven headless by Playwright (pointed at the
system browser; nothing downloaded). For a small trained run of each family the page loads without
console errors and every input changes the image it should; M2's probabilities sum to 1 and match
the Python model's q(y|x) on the same drawing; Sohn's completions keep the given pixels."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from fakes import write_npz

from genae.data import DataSource
from genae.explorer import build_site, start_server
from genae.models.aae import AAEConfig
from genae.models.semisupervised import M2Config
from genae.models.sohn import SohnConfig, SohnCVAEConfig
from genae.models.vae import VAEConfig
from genae.rundir import load_model
from genae.train.trainer import train_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI must run the browser tests: .ci/run installs Debian's chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")

SMALL = dict(epochs=2, batch_size=64)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    data = DataSource(data_dir=str(write_npz(root / "data" / "mnist.npz")), limit=1000)
    train = lambda name, config, out: train_model(name, config, root / "runs" / out, data=data, device="cpu",  # noqa
                                                   quiet=True)
    train("vae", VAEConfig(dim_z=2, n_hidden=64, **SMALL), "vae")
    train("cvae", VAEConfig(dim_z=2, n_hidden=64, **SMALL), "cvae")
    train("m2", M2Config(n_labels=100, labeled_batch=16, dim_z=4, n_hidden=64, **SMALL), "m2")
    train("aae", AAEConfig(prior="gmm", label_prior=True, n_labels=100, n_hidden=64, n_layers=1, **SMALL), "aae")
    train("sohn-baseline", SohnConfig(n_hidden=64, n_layers=1, **SMALL), "baseline")
    train("sohn-cvae", SohnCVAEConfig(dim_z=4, n_hidden=64, n_layers=1, baseline=str(root / "runs" / "baseline"),
                                      **SMALL), "sohn")
    folder = build_site([root / "runs"], root / "site", quiet=True)
    server = start_server(folder, 0)
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}/", "runs": root / "runs"}
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, site):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site["url"])
    page.wait_for_function("window.genae && window.genae.ready", timeout=60_000)
    page.errors = errors
    yield page
    assert not errors, errors
    page.close()


def select(page, run: str) -> None:
    run_id = page.evaluate(f"genae.runs.find(r => r.name.endsWith('/{run}')).id")
    page.select_option("#run-select", run_id)
    page.wait_for_function(f"genae.ready && genae.run === {run_id!r}", timeout=60_000)


def settle(page) -> None:
    page.wait_for_function("genae.busy === 0")
    page.wait_for_timeout(50)
    page.wait_for_function("genae.busy === 0")


def pixels(page, canvas: str) -> np.ndarray:
    data = page.evaluate(f"""() => {{ const c = document.getElementById('{canvas}');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }}""")
    return np.array(data, dtype=np.float32)


def differ(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def stroke(page, canvas: str, points: list[tuple[float, float]]) -> None:
    box = page.locator(f"#{canvas}").bounding_box()
    at = lambda u, v: (box["x"] + u * box["width"], box["y"] + v * box["height"])  # noqa: E731
    page.mouse.move(*at(*points[0]))
    page.mouse.down()
    for u, v in points[1:]:
        page.mouse.move(*at(u, v), steps=4)
    page.mouse.up()
    settle(page)


def test_every_run_loads_without_console_errors_and_offers_its_views(page, site):
    names = page.evaluate("genae.runs.map(r => r.name.split('/').pop())")
    assert sorted(names) == ["aae", "baseline", "cvae", "m2", "sohn", "vae"]
    expected = {"vae": {"latent", "draw", "interpolate", "runs"}, "cvae": {"latent", "labels", "draw", "interpolate", "runs"},
                "m2": {"latent", "labels", "draw", "interpolate", "runs"}, "aae": {"latent", "draw", "interpolate", "runs"},
                "sohn": {"complete", "runs"}, "baseline": {"complete", "runs"}}
    for name in names:
        select(page, name)
        settle(page)
        offered = set(page.evaluate("[...document.querySelectorAll('nav button')].filter(b => !b.disabled)"
                                    ".map(b => b.dataset.view)"))
        assert offered == expected[name], name


def test_clicking_the_latent_map_decodes_that_point(page):
    select(page, "vae")
    page.click("nav button[data-view=latent]")
    settle(page)
    box = page.locator("#latent-map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.3)
    settle(page)
    first, z1 = pixels(page, "latent-image"), page.evaluate("Array.from(genae.z)")
    page.mouse.click(box["x"] + box["width"] * 0.85, box["y"] + box["height"] * 0.75)
    settle(page)
    assert z1[0] < 0 < page.evaluate("genae.z[0]") and differ(first, pixels(page, "latent-image")) > 0.5


def test_a_slider_and_random_z_change_the_decoded_image(page):
    select(page, "m2")   # z of 4 dimensions: sliders
    page.click("nav button[data-view=latent]")
    settle(page)
    before = pixels(page, "latent-image")
    page.fill("#z0", "2.5")
    page.dispatch_event("#z0", "input")
    settle(page)
    assert page.evaluate("genae.z[0]") == pytest.approx(2.5)
    after = pixels(page, "latent-image")
    assert differ(before, after) > 0.1
    page.click("#random-z")
    settle(page)
    assert differ(after, pixels(page, "latent-image")) > 0.1


def test_picking_a_label_changes_the_digit_and_the_row_holds_ten_different_ones(page):
    select(page, "cvae")
    page.click("nav button[data-view=latent]")
    settle(page)
    page.click("#label-buttons button:nth-child(2)")
    settle(page)
    one = pixels(page, "latent-image")
    page.click("#label-buttons button:nth-child(8)")
    settle(page)
    assert page.evaluate("genae.label") == 7 and differ(one, pixels(page, "latent-image")) > 0.1
    page.click("nav button[data-view=labels]")
    settle(page)
    row = np.array(page.evaluate("Array.from(genae.lastImage)")).reshape(10, 784)
    assert min(np.abs(row[i] - row[j]).mean() for i in range(10) for j in range(i)) > 1e-4


def test_drawing_is_encoded_and_m2s_probabilities_match_the_python_model(page, site):
    select(page, "m2")
    page.click("nav button[data-view=draw]")
    settle(page)
    before = pixels(page, "draw-reconstruction")
    stroke(page, "draw-canvas", [(0.5, 0.15), (0.45, 0.5), (0.5, 0.85)])
    drawing = np.array(page.evaluate("Array.from(genae.drawing)"), dtype=np.float32)
    assert drawing.max() > 0.9 and (drawing > 0).sum() > 20
    assert differ(before, pixels(page, "draw-reconstruction")) > 0.1
    probs = np.array(page.evaluate("genae.lastProbs"))
    assert probs.sum() == pytest.approx(1, abs=1e-5)
    model = load_model(site["runs"] / "m2")
    with torch.no_grad():
        expected = model.classify_logits(torch.from_numpy(drawing).view(1, 1, 28, 28)).softmax(1)[0].numpy()
    assert np.abs(probs - expected).max() <= 1e-3


def test_completions_keep_the_given_pixels_and_resample(page, site):
    select(page, "sohn")
    page.click("nav button[data-view=complete]")
    settle(page)
    page.click("#complete-test")
    settle(page)
    given = np.array(page.evaluate("genae.manifest.given_mask"), dtype=bool)
    x = np.array(page.evaluate("Array.from(genae.completing)"), dtype=np.float32)
    first = np.array(page.evaluate("Array.from(genae.lastImage)"), dtype=np.float32).reshape(-1, 784)
    assert len(first) == 7 and given.sum() == 196
    assert np.abs(first[:, given] - x[given]).max() < 1e-6          # the given quadrant, exactly
    assert np.abs(first[0, ~given] - first[1, ~given]).max() > 1e-4  # different draws complete differently
    page.click("#complete-resample")
    settle(page)
    again = np.array(page.evaluate("Array.from(genae.lastImage)"), dtype=np.float32).reshape(-1, 784)
    assert np.abs(again[:, ~given] - first[:, ~given]).max() > 1e-4
    baseline = pixels(page, "complete-baseline")
    stroke(page, "complete-canvas", [(0.1, 0.6), (0.4, 0.9)])   # drawing into the given (bottom-left) quadrant
    drawn = np.array(page.evaluate("Array.from(genae.completing)"), dtype=np.float32)
    latest = np.array(page.evaluate("Array.from(genae.lastImage)"), dtype=np.float32).reshape(-1, 784)
    assert np.abs(drawn - x)[given].max() > 0.5 and np.abs(latest[:, given] - drawn[given]).max() < 1e-6
    assert differ(baseline, pixels(page, "complete-baseline")) > 0.01   # the baseline reads the new stroke too


def test_interpolation_runs_from_one_image_to_the_other(page):
    select(page, "vae")
    page.click("nav button[data-view=interpolate]")
    settle(page)
    row = np.array(page.evaluate("Array.from(genae.lastImage)")).reshape(10, 784)
    steps = np.abs(np.diff(row, axis=0)).mean(1)
    assert (steps > 0).all() and np.abs(row[0] - row[-1]).mean() > steps.mean()   # a path from one end to the other
    end = np.array(page.evaluate("Array.from(genae.interpB.x)"))
    for _ in range(5):   # a random test image: another one than before (1 in 300 picks the same)
        page.click("#interp-b")
        settle(page)
        if np.abs(np.array(page.evaluate("Array.from(genae.interpB.x)")) - end).max() > 0:
            break
    else:
        raise AssertionError("'new end' kept the same image")
    new_row = np.array(page.evaluate("Array.from(genae.lastImage)")).reshape(10, 784)
    assert np.abs(new_row[-1] - row[-1]).max() > 1e-4 and np.abs(new_row[0] - row[0]).max() < 1e-6


def test_the_runs_view_lists_every_run_with_its_curves(page):
    page.click("nav button[data-view=runs]")
    settle(page)
    assert page.locator("#runs-table tr").count() == 7   # a header and six runs
    assert pixels(page, "curves").std() > 1
    assert '"model"' in page.inner_text("#run-config")


def test_an_update_takes_at_most_30_ms(page):
    select(page, "cvae")
    page.click("nav button[data-view=latent]")
    box = page.locator("#latent-map").bounding_box()
    page.evaluate("genae.timings.length = 0")
    for k in range(15):
        page.mouse.click(box["x"] + box["width"] * (0.1 + 0.05 * k), box["y"] + box["height"] * 0.5)
        settle(page)
    timings = page.evaluate("genae.timings")
    assert len(timings) >= 15 and float(np.median(timings)) <= 30
