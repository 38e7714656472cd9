"""The GPU check names only rows that exist and that their models accept.

`scripts/cuda_check.sh` runs on a lent GPU, with minutes of device time: a speed row it names that
`benchmarks/train_speed.py` lacks, or a row whose options its model's config refuses, would fail
there and nowhere else. Here every row is built (no training) and every model the script names is
looked up among the rows."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from genae.models.registry import build

ROOT = Path(__file__).resolve().parents[1]


def _train_speed():
    spec = importlib.util.spec_from_file_location("train_speed", ROOT / "benchmarks" / "train_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_speed = _train_speed()


@pytest.mark.parametrize("row", list(train_speed.ROWS))
def test_every_speed_row_builds_its_model(row):
    name, options, images = train_speed.ROWS[row]
    config = train_speed.config_for(name, epochs=4, batch_size=128, patience=0, **options)
    model = build(name, config)
    assert sum(p.numel() for p in model.parameters()) > 0
    for key, value in options.items():   # the row's options reached the model, none dropped
        assert getattr(model.config, key) == value, (row, key)
    assert images in (50_000, 60_000)


def test_every_model_the_gpu_check_times_is_a_speed_row():
    script = (ROOT / "scripts" / "cuda_check.sh").read_text()
    default = re.search(r"speed_models=\$\{SPEED_MODELS:-([^}]*)\}", script)
    assert default, "cuda_check.sh no longer sets its speed models the way this test reads them"
    named = default.group(1).split() + re.findall(r"--models ([\w-]+)", script)
    assert "m2-cosine" in named
    missing = [model for model in named if model not in train_speed.ROWS]
    assert not missing, f"cuda_check.sh times {missing}, which benchmarks/train_speed.py has no row for"
