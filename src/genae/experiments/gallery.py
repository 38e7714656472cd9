"""The README's gallery: a few figures of a reproduction, shrunk to small PNGs.

    genae reproduce --quick --gallery docs/gallery     # (re)make docs/gallery/*.png from runs/quick
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from genae.experiments.html_report import results_path
from genae.experiments.reproduce import read_state
from genae.files import replacing

# recipe → a piece of the figure's file name (the first figure that contains it), in gallery order
GALLERY = {
    "manifold": "manifold_cvae_label2",
    "analogy-image": "",
    "denoising": "rate0.3",
    "beta": "",
    "aae": "codes-mixture-all-labels",
    "quadrants": "quadrants_1",
}
WIDTH = 400


def write_gallery(out: Path, dest: Path, width: int = WIDTH) -> Path:
    """Copy each GALLERY figure found under `out` into `dest` as <recipe>.png, at most `width` px wide."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    state = read_state(out)
    for recipe, piece in GALLERY.items():
        path = results_path(state, recipe)
        if not path.is_file():
            continue
        figures = [f for f in json.loads(path.read_text())["figures"] if piece in Path(f).name]
        if not figures:
            continue
        with Image.open(path.parent / figures[0]) as image:
            image = image.convert("RGB")
            if image.width > width:
                image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
            with replacing(dest / f"{recipe}.png") as tmp:
                image.quantize(colors=256).save(tmp, optimize=True)   # a palette: small files
    return dest
