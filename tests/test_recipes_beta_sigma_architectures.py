"""The β sweep, σ parametrisation and architectures recipes (the TF VAE concepts and CVAE
architectures sources) on a small slice of MNIST-shaped data: their numbers, figures and reports,
divergence bookkeeping, and reuse on rerun."""

import dataclasses
import json
from pathlib import Path

import pytest
from fakes import write_npz

from genae.data import DataSource
from genae.experiments.architectures import ArchitectureOptions, architectures
from genae.experiments.beta_sigma import DIVERGED_FILE, BetaOptions, SigmaOptions, beta, sigma
from genae.options import TrainCompute


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    data = tmp_path_factory.mktemp("mnist")
    write_npz(data / "mnist.npz")
    return tmp_path_factory.mktemp("recipes"), str(data)


def common(root):
    out, data_dir = root
    return dict(out=out, data=DataSource(data_dir=data_dir, limit=300), compute=TrainCompute(device="cpu", quiet=True))


def options(cls, root, vae=None, **kw):
    """The recipe's default options with `kw` and its VAE config changed by `vae`, on the small data."""
    defaults = cls()
    return dataclasses.replace(defaults, **{**common(root), **kw}, vae=dataclasses.replace(defaults.vae, **(vae or {})))


def figures_exist(result):
    saved = json.loads((result.report.parent / "results.json").read_text())
    assert saved["figures"]
    for figure in saved["figures"]:
        assert (result.report.parent / figure).stat().st_size > 2000, figure
    return saved


def test_beta_sweep_trades_kl_for_reconstruction(root):
    result = beta(options(BetaOptions, root, betas=(0.0, 200.0), vae={"epochs": 3}, n_images=100))
    numbers = result.numbers
    assert set(numbers) == {"β = 0", "β = 200"}
    assert numbers["β = 200"]["kl"] < numbers["β = 0"]["kl"]
    assert numbers["β = 200"]["rec"] > numbers["β = 0"]["rec"]
    assert result.arrays["β = 0"]["z"].shape == (100, 2)
    figures_exist(result)
    assert "β = 200" in result.report.read_text()


def test_beta_draws_a_2d_latent_and_refuses_a_negative_beta_before_training(root, tmp_path):
    opts = options(BetaOptions, root)
    assert opts.vae.dim_z == 20   # the VAE config's own default: the recipe sets z itself
    with pytest.raises(ValueError, match="--betas"):
        beta(dataclasses.replace(opts, out=tmp_path, betas=(1.0, -1.0)))
    assert not (tmp_path / "models").exists()


def test_sigma_records_divergences_and_skips_them_on_rerun(root):
    opts = options(SigmaOptions, root, lrs=(0.5,), seeds=(0,), vae={"epochs": 1})
    first = sigma(opts)
    exp = first.numbers["exp-lr0.5-seed0"]
    assert exp["status"] == "diverged" and "non-finite" in exp["message"]  # exp(½·logvar) overflows at lr 0.5
    saved = figures_exist(first)
    assert Path(saved["runs"]["exp-lr0.5-seed0"], DIVERGED_FILE).is_file()
    table = first.report.read_text()
    assert "| 0.5 | exp | 1 / 1 | 0 |" in table
    again = sigma(opts)
    assert again.numbers == first.numbers


def test_architectures_table_has_a_row_per_run_and_reuses_its_evaluation(root):
    opts = options(ArchitectureOptions, root, archs=("cnn2",), vae={"epochs": 1}, iw_samples=3, judge_samples=10,
                   tsne_arch="cnn2", tsne_images=100)
    result = architectures(opts)
    assert set(result.numbers) == {"vae-cnn2", "cvae-cnn2"}
    for key, row in result.numbers.items():
        assert row["iw_samples"] == 3 and row["n_images"] == 300 and row["parameters"] > 50_000, key
        assert row["elbo"] < 0
    assert result.numbers["cvae-cnn2"]["conditional_nll"] > 0 and result.numbers["vae-cnn2"]["nll"] > 0
    assert result.arrays["cvae-cnn2-mean"].shape == (10, 1, 28, 28)
    saved = figures_exist(result)
    assert any("tsne_vae_cnn2" in f for f in saved["figures"])
    eval_file = Path(saved["runs"]["vae-cnn2"]) / "eval.json"
    stamp = eval_file.stat().st_mtime_ns
    architectures(opts)
    assert eval_file.stat().st_mtime_ns == stamp  # same K and images: not evaluated again


def test_architectures_needs_the_tsne_arch_among_its_archs(root):
    with pytest.raises(ValueError, match="--tsne-arch fc3"):
        architectures(options(ArchitectureOptions, root, archs=("cnn2",)))
