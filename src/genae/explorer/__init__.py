"""`genae explore`: a page to see and touch trained models, run in the browser by onnxruntime-web.

The page (web/index.html, app.js, style.css) is static. For each run it reads what `build_site`
writes beside it: the run's ONNX networks and manifest (genae.export), meta.json (its config,
training curves, eval.json, and for a 2-D z the encoded test set) and test.json (test images to
start from). The page offers the views the model's capabilities allow: a latent map, labels, draw,
complete, interpolate, runs.

onnxruntime-web comes from npm at the version web/package-lock.json pins (`bash scripts/setup.sh`
installs it); its script and WebAssembly files are copied into every site built.

    site = build_site([Path("runs/demo")], Path("explore-site"))   # then serve(site, port=8765)
"""

from __future__ import annotations

import base64
import functools
import http.server
import re
import shutil
import sys
import threading
import webbrowser
from pathlib import Path

import torch

from genae.errors import UserError
from genae.export import export_run
from genae.files import read_json, replacing, write_json, write_text
from genae.models.base import encoded_means
from genae.rundir import CONFIG_FILE, EVAL_FILE, MODEL_FILE, load_model, read_metrics, read_record

WEB = Path(__file__).parent / "web"
PAGE = ("index.html", "app.js", "style.css")
RUNTIME = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
TEST_IMAGES = 300
LATENT_POINTS = 2000


def runtime_dir() -> Path:
    dist = WEB / "node_modules" / "onnxruntime-web" / "dist"
    missing = [name for name in RUNTIME if not (dist / name).is_file()]
    if missing:
        raise UserError(f"{dist}: onnxruntime-web is not installed ({', '.join(missing)} missing); run "
                        f"`bash scripts/setup.sh`, or `npm ci --prefix {WEB}`")
    return dist


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories: each path given is one, or a folder searched for them (trained ones only)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / CONFIG_FILE).is_file():
            candidates = [path]
        elif path.is_dir():
            candidates = sorted(p.parent for p in path.rglob(CONFIG_FILE) if not any(
                part.startswith(".") for part in p.relative_to(path).parts))
        else:
            raise UserError(f"{path}: neither a run directory nor a folder of runs")
        found += [c for c in candidates if (c / MODEL_FILE).is_file() and c not in found]
    if not found:
        raise UserError(f"{', '.join(map(str, paths))}: no trained run (a directory with {CONFIG_FILE} and "
                        f"{MODEL_FILE}) found")
    return found


def _slug(run: Path, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(run.parts[-2:])).strip("-.") or "run"
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}-{k}", k + 1
    taken.add(slug)
    return slug


@torch.no_grad()
def run_files(run: Path, folder: Path, *, test_images: int = TEST_IMAGES, latent_points: int = LATENT_POINTS) -> dict:
    """Export `run` into `folder` and write its meta.json and test.json; return its line of runs.json."""
    name, config, data = read_record(run)
    test = data.load().test
    x, y = test.x[:test_images], test.y[:test_images]
    manifest = export_run(run, folder, check_images=x[:16], check_labels=y[:16])
    pixels = (x.flatten(1) * 255).round().to(torch.uint8).numpy().tobytes()
    write_json(folder / "test.json", {"images": base64.b64encode(pixels).decode(), "labels": y.tolist()})
    metrics = read_metrics(run)
    result = read_json(run / EVAL_FILE) if (run / EVAL_FILE).is_file() else {}
    latent = None
    if manifest["capabilities"]["encodes"] and manifest["dim_z"] == 2:
        model = load_model(run, "cpu")
        z = encoded_means(model, test.x[:latent_points], test.y[:latent_points])
        latent = {"z": [[round(a, 3), round(b, 3)] for a, b in z.tolist()], "labels": test.y[:latent_points].tolist()}
    summary = f"{name}, {len(metrics)} epochs" + (f", dim_z {manifest['dim_z']}" if manifest["dim_z"] else "")
    write_json(folder / "meta.json", {"name": str(run), "model": name, "summary": summary, "config": manifest["config"],
                                      "metrics": metrics, "eval": result, "latent": latent})
    return {"name": str(run), "model": name, "epochs": len(metrics), "eval": result}


def build_site(paths: list[Path], out: Path, *, quiet: bool = False) -> Path:
    """The page and every run's files in `out`, ready for any static web server."""
    runs = find_runs(paths)
    dist = runtime_dir()
    out = Path(out)
    (out / "ort").mkdir(parents=True, exist_ok=True)
    for name in PAGE:
        write_text(out / name, (WEB / name).read_text())
    for name in RUNTIME:
        with replacing(out / "ort" / name) as tmp:
            shutil.copyfile(dist / name, tmp)
    index, taken = [], set()
    for run in runs:
        slug = _slug(run, taken)
        if not quiet:
            print(f"explore: exporting {run}", file=sys.stderr)
        index.append({"id": slug, **run_files(run, out / "runs" / slug)})
    write_json(out / "runs.json", index)
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json"}

    def log_message(self, *args) -> None:   # no line per request
        pass


def start_server(folder: Path, port: int = 0) -> http.server.ThreadingHTTPServer:
    """Serve `folder` on 127.0.0.1:port (0: any free port) from a background thread."""
    handler = functools.partial(_Quiet, directory=str(folder))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as err:
        raise UserError(f"--port {port}: cannot listen there ({err.strerror}); choose another port, or 0") from err
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve(folder: Path, port: int, *, browser: bool = True) -> None:
    """Serve the site until Ctrl-C, opening it in the browser unless told not to."""
    server = start_server(folder, port)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"explore: {url} (Ctrl-C stops)", flush=True)
    if browser:
        webbrowser.open(url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
