"""The CVAE-vs-VAE recipes (the TF CVAE source), each for a short run on a small slice of MNIST-shaped data: the figures and
numbers exist and are sane, recipes share and reuse trained models, and a rerun is identical."""

import dataclasses
import json
import math
import subprocess
import sys

import pytest
import torch
from fakes import write_npz

from genae.data import DataSource
from genae.experiments import RECIPES
from genae.experiments.cvae_vs_vae import PairOptions, denoising_scores
from genae.options import TrainCompute
from genae.plots.manifold import latent_grid

SMALL = dict(n_samples=200, n_img_x=4, n_img_y=3, compute=TrainCompute(device="cpu", quiet=True))
SMALL_VAE = dict(epochs=2, n_hidden=32)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    data = tmp_path_factory.mktemp("mnist")
    write_npz(data / "mnist.npz")
    return tmp_path_factory.mktemp("recipes"), str(data)


def options(root, cls=PairOptions, **vae):
    out, data_dir = root
    defaults = cls()
    return dataclasses.replace(defaults, out=out, data=DataSource(data_dir=data_dir, limit=400), **SMALL,
                               vae=dataclasses.replace(defaults.vae, **{**SMALL_VAE, **vae}))


@pytest.fixture(scope="module")
def results(root):
    return {name: recipe.run(options(root, recipe.options)) for name, recipe in RECIPES.items()
            if recipe.source == "TF CVAE"}


def finite(numbers):
    if isinstance(numbers, dict):
        return all(finite(v) for v in numbers.values())
    if isinstance(numbers, list):
        return all(finite(v) for v in numbers)
    return not isinstance(numbers, float) or math.isfinite(numbers)


def test_every_recipe_writes_its_figures_numbers_and_report(results):
    assert set(results) == {"reproduce", "denoising", "manifold", "analogy-random", "analogy-image"}
    for name, result in results.items():
        folder = result.report.parent
        saved = json.loads((folder / "results.json").read_text())
        assert saved["recipe"] == name and saved["figures"], name
        for figure in saved["figures"]:
            assert (folder / figure).stat().st_size > 2000, figure  # a real PNG, not an empty canvas
            assert figure in result.report.read_text()
        assert finite(saved["numbers"]) and saved["numbers"] == json.loads(json.dumps(result.numbers))


def test_reproduce_keeps_epoch_one_and_the_last_epoch(results):
    numbers = results["reproduce"].numbers
    assert set(numbers) == {"cvae_epoch1", "vae_epoch1", "cvae_epoch2", "vae_epoch2"}
    for terms in numbers.values():
        assert terms["rec"] > 0 and terms["kl"] >= 0
    arrays = results["reproduce"].arrays
    assert arrays["cvae_epoch1"].shape == (12, 1, 28, 28)
    assert not torch.equal(arrays["cvae_epoch1"], arrays["cvae_epoch2"])


def test_denoising_scores_every_rate_for_both_models_and_the_noisy_input(results):
    numbers = results["denoising"].numbers
    assert set(numbers) == {"rate=0.1", "rate=0.3", "rate=0.5"}
    noisy = [numbers[f"rate={r}"]["noisy input"]["psnr_db"] for r in ("0.1", "0.3", "0.5")]
    assert noisy[0] > noisy[1] > noisy[2]  # more noise, lower PSNR of the noisy input itself
    for scores in numbers.values():
        assert set(scores) == {"noisy input", "cvae", "vae"}


def test_denoising_scores_closed_form():
    clean = torch.zeros(2, 1, 28, 28)
    perfect, half = clean.clone(), torch.full_like(clean, 0.5)
    assert denoising_scores(clean, perfect)["psnr_db"] == pytest.approx(100.0)  # MSE floored at 1e-10
    scores = denoising_scores(clean, half)
    assert scores["psnr_db"] == pytest.approx(10 * math.log10(4))
    assert scores["bce_per_pixel"] == pytest.approx(math.log(2), rel=1e-6)


def test_manifold_grids_and_codes(results):
    arrays = results["manifold"].arrays
    assert {f"cvae_label{i}" for i in range(10)} <= set(arrays)
    assert arrays["cvae_label3"].shape == (12, 1, 28, 28) and arrays["vae"].shape == (12, 1, 28, 28)
    assert not torch.allclose(arrays["cvae_label3"], arrays["cvae_label7"])
    assert arrays["codes_cvae"].shape == (200, 2)
    assert 0 <= results["manifold"].numbers["share_of_test_codes_inside_square"]["vae"] <= 1


def test_latent_grid_runs_left_to_right_and_top_down():
    z = latent_grid(3, 2, 2.0)
    assert z.tolist() == [[-2, 2], [0, 2], [2, 2], [-2, -2], [0, -2], [2, -2]]


def test_analogy_columns_differ_by_label(results):
    grid = results["analogy-random"].arrays["grid"]
    assert grid.shape == (3, 10, 1, 28, 28)
    for col in range(1, 10):
        assert (grid[:, col] - grid[:, 0]).abs().mean() > 1e-3, col
    generated = results["analogy-image"].arrays["generated"]
    assert generated.shape == (3, 10, 1, 28, 28)
    assert results["analogy-image"].numbers["mean_abs_difference_between_labels"] > 1e-3


def test_recipes_share_models_and_a_rerun_reuses_them_and_gives_the_same_figure(root, results):
    models = sorted(p.name for p in (root[0] / "models").iterdir())
    assert len([m for m in models if "noise" not in m]) == 2  # one CVAE, one VAE for four recipes
    assert len([m for m in models if "noise" in m]) == 6      # a pair per noise rate
    stamp = {p: p.stat().st_mtime_ns for p in (root[0] / "models").rglob("*.safetensors")}
    again = RECIPES["analogy-image"].run(options(root))
    assert {p: p.stat().st_mtime_ns for p in (root[0] / "models").rglob("*.safetensors")} == stamp
    assert torch.equal(again.arrays["generated"], results["analogy-image"].arrays["generated"])


def test_manifold_needs_a_2d_latent_space(root):
    with pytest.raises(ValueError, match="dim-z 2"):
        RECIPES["manifold"].run(options(root, dim_z=3, epochs=1))


def test_cli_lists_the_recipes():
    listed = subprocess.run([sys.executable, "-m", "genae", "run", "--list"], capture_output=True, text=True,
                            check=True).stdout
    usage, blank, *lines = listed.splitlines()
    assert usage.startswith("usage: genae run RECIPE") and not blank
    assert [line.split()[0] for line in lines] == list(RECIPES)


def test_a_longer_budget_trains_on_from_the_shorter_run_to_the_weights_of_a_fresh_run(tmp_path, root):
    from safetensors.torch import load_file

    from genae.models.vae import VAEConfig
    from genae.rundir import shorter_run
    from genae.train.trainer import trained

    _, data_dir = root
    data = DataSource(data_dir=data_dir, limit=300)
    short = VAEConfig(dim_z=2, n_hidden=16, epochs=2)
    longer = VAEConfig(dim_z=2, n_hidden=16, epochs=3)
    first = trained(tmp_path / "a", "vae", short, data, device="cpu", quiet=True)
    (first / "eval.json").write_text("{}")
    assert shorter_run(tmp_path / "a", "vae", longer, data) == first
    assert shorter_run(tmp_path / "a", "vae", VAEConfig(**{**vars(longer), "seed": 1}), data) is None   # another config
    assert shorter_run(tmp_path / "a", "vae", VAEConfig(**{**vars(longer), "lr_schedule": "cosine"}), data) is None
    assert shorter_run(tmp_path / "a", "vae", longer, DataSource(data_dir=data_dir, limit=400)) is None   # other data
    (tmp_path / "a" / "models" / "broken").mkdir()
    (tmp_path / "a" / "models" / "broken" / "config.json").write_text("{not json")   # skipped, not fatal
    assert shorter_run(tmp_path / "a", "vae", longer, data) == first
    extended = trained(tmp_path / "a", "vae", longer, data, device="cpu", quiet=True)
    fresh = trained(tmp_path / "b", "vae", longer, data, device="cpu", quiet=True)
    assert extended != first and (first / "checkpoint.safetensors").is_file()   # the short run stays as it was
    assert not (extended / "eval.json").exists()   # the shorter run's evaluation is not carried over
    lines = (extended / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and lines[:2] == (first / "metrics.jsonl").read_text().splitlines()  # copied, not retrained
    a, b = load_file(str(extended / "checkpoint.safetensors")), load_file(str(fresh / "checkpoint.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_decay_trains_on_from_the_constant_rate_run_of_its_held_epochs(tmp_path, root):
    from safetensors.torch import load_file

    from genae.models.vae import VAEConfig
    from genae.rundir import run_dir_for, shorter_run
    from genae.train.trainer import trained

    _, data_dir = root
    data = DataSource(data_dir=data_dir, limit=300)
    held = VAEConfig(dim_z=2, n_hidden=16, epochs=2)
    decayed = VAEConfig(**{**vars(held), "epochs": 4, "lr_decay_epochs": 2})
    # a run's name is the digest of its config.json (model, data, config): pinned, so that a change of
    # the record that would orphan every trained run shows here; another option or data names another run
    assert run_dir_for(tmp_path, "vae", VAEConfig(), DataSource(), "t").name == "vae-t-400a0df0"
    assert run_dir_for(tmp_path, "vae", VAEConfig(lr_decay_epochs=5), DataSource(), "t").name != "vae-t-400a0df0"
    assert run_dir_for(tmp_path, "vae", VAEConfig(), DataSource(limit=5), "t").name != "vae-t-400a0df0"
    first = trained(tmp_path / "a", "vae", held, data, device="cpu", quiet=True)
    assert shorter_run(tmp_path / "a", "vae", decayed, data) == first
    assert shorter_run(tmp_path / "a", "vae", VAEConfig(**{**vars(decayed), "lr_decay_epochs": 3}), data) is None  # held 1
    assert shorter_run(tmp_path / "a", "vae", VAEConfig(**{**vars(decayed), "epochs": 5}), data) == first  # held 3
    extended = trained(tmp_path / "a", "vae", decayed, data, device="cpu", quiet=True)
    # the decayed 4-epoch run is no start for another decay: the 2-epoch constant-rate run is
    assert shorter_run(tmp_path / "a", "vae", VAEConfig(**{**vars(decayed), "epochs": 6}), data) == first
    fresh = trained(tmp_path / "b", "vae", decayed, data, device="cpu", quiet=True)
    a, b = load_file(str(extended / "checkpoint.safetensors")), load_file(str(fresh / "checkpoint.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    lines = (extended / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 and lines[:2] == (first / "metrics.jsonl").read_text().splitlines()  # copied, not retrained
    constant = trained(tmp_path / "c", "vae", VAEConfig(**{**vars(held), "epochs": 4}), data, device="cpu", quiet=True)
    c = load_file(str(constant / "checkpoint.safetensors"))
    assert not all(torch.equal(a[k], c[k]) for k in a if k.startswith("model/"))   # the decay changed the path
