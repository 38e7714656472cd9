"""Recovery checked by equality of weights, not epoch numbers: a validation loss turning NaN keeps
exactly the last good epoch's checkpoint, and an AAE (several optimizers) resumed after an epoch
ends with the weights of the run that was never stopped."""

from __future__ import annotations

import pytest
import torch
from fakes import synthetic_mnist
from safetensors.torch import load_file
from toy import Toy, ToyConfig

from genae.data import DataSource
from genae.models.aae import AAEConfig
from genae.rundir import read_metadata
from genae.train.engine import TrainingDiverged, fit
from genae.train.trainer import train_model


def toy_run(path, **kw):
    torch.manual_seed(0)
    model = Toy(ToyConfig(batch_size=64, **kw))
    return fit(model, synthetic_mnist(256), path, device=torch.device("cpu"), quiet=True)


def test_a_nan_validation_loss_keeps_the_last_good_epochs_weights(tmp_path):
    with pytest.raises(TrainingDiverged, match="after epoch 3") as err:
        toy_run(tmp_path / "nan", epochs=5, nan_validation_at_epoch=3)
    assert "checkpoint" in str(err.value)
    toy_run(tmp_path / "clean", epochs=2)
    kept = load_file(str(tmp_path / "nan" / "checkpoint.safetensors"))
    clean = load_file(str(tmp_path / "clean" / "checkpoint.safetensors"))
    assert read_metadata(tmp_path / "nan" / "checkpoint.safetensors")["epoch"] == 2
    assert kept.keys() == clean.keys()
    for key in kept:
        assert torch.equal(kept[key], clean[key]), key


def test_an_aae_resumed_after_an_epoch_ends_with_the_uninterrupted_runs_weights(tmp_path, npz_data):
    config = dict(mode="semisupervised", n_labels=20, dim_z=3, n_hidden=32, n_layers=1, batch_size=64)
    data = DataSource(data_dir=str(npz_data), limit=256)
    train_model("aae", AAEConfig(epochs=2, **config), tmp_path / "straight", data=data, device="cpu", quiet=True)
    train_model("aae", AAEConfig(epochs=1, **config), tmp_path / "stopped", data=data, device="cpu", quiet=True)
    train_model("aae", None, tmp_path / "stopped", resume=True, given={"epochs": 2}, device="cpu", quiet=True)
    a = load_file(str(tmp_path / "straight" / "checkpoint.safetensors"))
    b = load_file(str(tmp_path / "stopped" / "checkpoint.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("optim/") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def npz_data(tmp_path_factory):
    from fakes import write_npz

    return write_npz(tmp_path_factory.mktemp("npz") / "mnist.npz")
