"""`genae export`: every model family and every --arch written as ONNX files that onnxruntime runs to
PyTorch's numbers (≤ 1e-4 on random and real inputs), with a manifest of what each expects."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from fakes import write_npz

from genae.cli import main
from genae.data import DataSource
from genae.export import export_run
from genae.models.aae import AAEConfig
from genae.models.judge import JudgeConfig
from genae.models.semisupervised import M2Config
from genae.models.sohn import SohnConfig, SohnCVAEConfig
from genae.models.vae import VAEConfig
from genae.rundir import load_model
from genae.train.trainer import train_model

SMALL = dict(epochs=1, batch_size=64)
CASES = {
    **{f"vae-{arch}": ("vae", VAEConfig(dim_z=3, arch=arch, n_hidden=32, **SMALL))
       for arch in ("mlp", "fc3", "cnn2", "cnn3", "conv")},
    **{f"cvae-{arch}": ("cvae", VAEConfig(dim_z=3, arch=arch, n_hidden=32, **SMALL))
       for arch in ("mlp", "fc3", "cnn2", "cnn3", "conv")},
    "m2": ("m2", M2Config(n_labels=20, labeled_batch=8, dim_z=3, n_hidden=32, **SMALL)),
    "m1+m2": ("m2", M2Config(n_labels=20, labeled_batch=8, dim_z=3, n_hidden=32, **SMALL)),
    "aae": ("aae", AAEConfig(n_hidden=32, n_layers=1, **SMALL)),
    "aae-label-prior": ("aae", AAEConfig(prior="gmm", label_prior=True, n_labels=20, n_hidden=32, n_layers=1, **SMALL)),
    "aae-supervised": ("aae", AAEConfig(mode="supervised", n_hidden=32, n_layers=1, **SMALL)),
    "aae-semisupervised": ("aae", AAEConfig(mode="semisupervised", n_labels=20, dim_z=3, n_hidden=32, n_layers=1,
                                            **SMALL)),
    "sohn-baseline": ("sohn-baseline", SohnConfig(n_hidden=32, n_layers=1, **SMALL)),
    "sohn-cvae": ("sohn-cvae", SohnCVAEConfig(dim_z=3, n_hidden=32, n_layers=1, **SMALL)),
    "judge": ("judge", JudgeConfig(**SMALL)),
}
NETWORKS = {   # what each case must export (an independent statement of the capabilities' networks)
    "vae": {"encoder", "decoder"}, "cvae": {"encoder", "decoder"}, "m2": {"encoder", "decoder", "classifier"},
    "m1+m2": {"encoder", "decoder", "classifier"}, "aae": {"encoder", "decoder"},
    "aae-label-prior": {"encoder", "decoder"}, "aae-supervised": {"encoder", "decoder"},
    "aae-semisupervised": {"encoder", "decoder", "classifier"}, "sohn-baseline": {"completer"},
    "sohn-cvae": {"completer", "baseline"}, "judge": {"classifier"},
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> DataSource:
    return DataSource(data_dir=str(write_npz(tmp_path_factory.mktemp("d") / "mnist.npz")), limit=200)


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    root = tmp_path_factory.mktemp("export-runs")
    train_model("vae", VAEConfig(dim_z=3, n_hidden=32, **SMALL), root / "m1", data=data, device="cpu", quiet=True)
    train_model("sohn-baseline", SohnConfig(n_hidden=32, n_layers=1, **SMALL), root / "baseline", data=data,
                device="cpu", quiet=True)
    return root


@pytest.mark.parametrize("case", list(CASES))
def test_every_family_and_arch_exports_and_runs_in_onnxruntime_as_in_pytorch(case, data, runs, tmp_path):
    name, config = CASES[case]
    if case == "m1+m2":
        config = type(config)(**{**config.__dict__, "m1_run": str(runs / "m1")})
    if case == "sohn-cvae":
        config = type(config)(**{**config.__dict__, "baseline": str(runs / "baseline")})
    run, _ = train_model(name, config, tmp_path / "run", data=data, device="cpu", quiet=True)
    manifest = export_run(run, tmp_path / "onnx")
    assert json.loads((tmp_path / "onnx" / "manifest.json").read_text()) == manifest
    assert set(manifest["networks"]) == NETWORKS[case.split("-")[0] if case.startswith(("vae", "cvae")) else case]
    assert manifest["model"] == name and manifest["dim_z"] == getattr(config, "dim_z", None)
    model = load_model(run)
    real = data.load().test
    x, y = real.x[:9], real.y[:9]
    onehot = torch.nn.functional.one_hot(y, 10).float()
    for net, spec in manifest["networks"].items():
        assert spec["max_abs_difference"] <= 1e-4
        session = ort.InferenceSession(str(tmp_path / "onnx" / spec["file"]), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == list(spec["inputs"])
        z = torch.randn(9, model.latent_dim or 1)
        feeds = {"x": x, "y": onehot, "z": z, "eps": z}
        got = session.run(None, {k: feeds[k].numpy() for k in spec["inputs"]})
        with torch.no_grad():   # what the model's own methods give, written independently of the exporter
            if net == "encoder":
                q = model.encode(x, y if "y" in spec["inputs"] else None)
                expected = [q.mean, q.stddev]
            elif net == "decoder":
                expected = [model.decode(z, y if "y" in spec["inputs"] else None).mean]
            elif net == "classifier":
                expected = [model.classify_logits(x).softmax(1)]
            elif net == "completer":
                expected = [model.complete_with(x, z if "eps" in spec["inputs"] else None)]
            else:
                expected = [model.parts()[net].complete_with(x)]
        for g, e in zip(got, expected):
            assert np.abs(g - e.numpy()).max() <= 1e-4, net


def test_a_failed_export_is_one_line_naming_the_run(data, runs, tmp_path, monkeypatch, capsys):
    run, _ = train_model("vae", VAEConfig(dim_z=3, n_hidden=32, **SMALL), tmp_path / "run", data=data, device="cpu",
                         quiet=True)

    def refuse(*args, **kwargs):
        raise RuntimeError("an operator ONNX has no symbol for\nmore detail")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    with pytest.raises(SystemExit) as stop:
        main(["export", str(run), "--out", str(tmp_path / "onnx")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1
    assert str(run) in err and "cannot be exported to ONNX" in err and "no symbol" in err
    assert not list((tmp_path / "onnx").glob("*.onnx"))
