"""Data-parallel training where Adam cannot hide a mistake: with plain SGD every step's size is the
gradient's, so two processes must move the weights exactly as one process does with the same global
batch — also when the batch does not split evenly (51 = 26 + 25) and for a model of three phases
(the AAE: reconstruction, discriminator, generator)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_cli import torchrun

TESTS = Path(__file__).parent


def weight_change(run: Path) -> dict[str, torch.Tensor]:
    start = load_file(str(run / "initial.safetensors"))
    end = load_file(str(run / "checkpoint.safetensors"))
    return {k: end[f"model/{k}"] - v for k, v in start.items() if v.is_floating_point()}


@pytest.mark.parametrize("kind", ["toy", "aae"])
def test_two_processes_make_the_one_process_sgd_steps_with_uneven_shards(kind, tmp_path):
    subprocess.run([sys.executable, str(TESTS / "ddp_sgd_worker.py"), kind, str(tmp_path / "one"), "51"], check=True)
    torchrun(2, TESTS / "ddp_sgd_worker.py", kind, tmp_path / "two", "51")
    one, two = weight_change(tmp_path / "one"), weight_change(tmp_path / "two")
    assert one.keys() == two.keys() and one
    for key in one:
        size = one[key].norm()
        assert size > 0, f"{key} did not move"
        assert (two[key] - one[key]).norm() <= 1e-4 * size + 1e-7, key
