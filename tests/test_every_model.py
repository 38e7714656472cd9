"""One test over every registered model, through the declared interface (genae.models.base):
build, one training step, save, `genae.load`, the same outputs from the loaded model, and each
capability the model declares — shapes, ranges, what a label changes — while every capability it
does not declare refuses to run."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from fakes import synthetic_mnist

import genae
from genae.models.aae import AAEConfig
from genae.models.base import Capabilities, Model
from genae.models.judge import JudgeConfig
from genae.models.registry import MODELS
from genae.models.semisupervised import M2Config
from genae.models.sohn import SohnConfig, SohnCVAEConfig
from genae.models.vae import VAEConfig
from genae.rundir import RunDir, build_model, load_model
from genae.train.engine import fit

SMALL = dict(epochs=1, batch_size=64)

CASES = {   # case → (registered model, config); every registered name appears at least once
    "vae": ("vae", VAEConfig(dim_z=3, n_hidden=32, n_layers=1, **SMALL)),
    "vae-conv": ("vae", VAEConfig(dim_z=3, arch="conv", **SMALL)),
    "cvae": ("cvae", VAEConfig(dim_z=3, n_hidden=32, n_layers=1, binarize="dynamic", **SMALL)),
    "m2": ("m2", M2Config(n_labels=20, labeled_batch=8, dim_z=3, n_hidden=32, **SMALL)),
    "m1+m2": ("m2", M2Config(n_labels=20, labeled_batch=8, dim_z=3, n_hidden=32, m1_min_std=0.0, **SMALL)),  # + m1_run
    "aae": ("aae", AAEConfig(n_hidden=32, n_layers=1, **SMALL)),
    "aae-label-prior": ("aae", AAEConfig(prior="gmm", label_prior=True, n_labels=20, n_hidden=32, n_layers=1,
                                         **SMALL)),
    "aae-supervised": ("aae", AAEConfig(mode="supervised", n_hidden=32, n_layers=1, **SMALL)),
    "aae-semisupervised": ("aae", AAEConfig(mode="semisupervised", n_labels=20, dim_z=3, n_hidden=32, n_layers=1,
                                            **SMALL)),
    "sohn-baseline": ("sohn-baseline", SohnConfig(n_hidden=32, n_layers=1, **SMALL)),
    "sohn-cvae": ("sohn-cvae", SohnCVAEConfig(dim_z=3, n_hidden=32, n_layers=1, **SMALL)),   # baseline set below
    "judge": ("judge", JudgeConfig(**SMALL)),
}
EXPECTED = {   # what each case must declare (an independent statement of the models' contracts)
    "vae": Capabilities(encodes=True, decodes=True, samples=True, likelihood="nll"),
    "vae-conv": Capabilities(encodes=True, decodes=True, samples=True, likelihood="nll"),
    "cvae": Capabilities(conditional=True, encodes=True, encodes_label=True, decodes=True, decodes_label=True,
                         samples=True, likelihood="conditional_nll"),
    "m2": Capabilities(conditional=True, encodes=True, encodes_label=True, decodes=True, decodes_label=True,
                       samples=True, classifies=True),
    "m1+m2": Capabilities(conditional=True, encodes=True, encodes_label=True, decodes=True, decodes_label=True,
                          samples=True, classifies=True),
    "aae": Capabilities(encodes=True, decodes=True, samples=True),
    "aae-label-prior": Capabilities(conditional=True, encodes=True, decodes=True, samples=True),
    "aae-supervised": Capabilities(conditional=True, encodes=True, decodes=True, decodes_label=True, samples=True),
    "aae-semisupervised": Capabilities(conditional=True, encodes=True, decodes=True, decodes_label=True, samples=True,
                                       classifies=True),
    "sohn-baseline": Capabilities(completes=True),
    "sohn-cvae": Capabilities(completes=True, likelihood="cll"),
    "judge": Capabilities(classifies=True),
}


def test_every_registered_model_has_a_case():
    assert {name for name, _ in CASES.values()} == set(MODELS)


def _train(name: str, config, out) -> Model:
    data = synthetic_mnist(64)   # 64 images and a batch of 64: one training step
    torch.manual_seed(0)
    model = build_model(name, config)
    data = model.prepare_data(data)
    model.initialize(lambda run: load_model(run))
    fit(model, data, RunDir(out), device=torch.device("cpu"), quiet=True)
    return model


@pytest.fixture(scope="module")
def dependencies(tmp_path_factory):
    """The runs other models are built from: an M1 VAE and a Sohn baseline."""
    root = tmp_path_factory.mktemp("deps")
    _train("vae", VAEConfig(dim_z=3, n_hidden=32, n_layers=1, **SMALL), root / "m1")
    _train("sohn-baseline", SohnConfig(n_hidden=32, n_layers=1, **SMALL), root / "baseline")
    return root


def _config(case: str, dependencies):
    name, config = CASES[case]
    if case == "m1+m2":
        config = dataclasses.replace(config, m1_run=str(dependencies / "m1"))
    if case == "sohn-cvae":
        config = dataclasses.replace(config, baseline=str(dependencies / "baseline"))
    return name, config


def _images(n=6, seed=1):
    data = synthetic_mnist(n, seed=seed).test
    return data.x, data.y


def _same(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("case", list(CASES))
def test_model_trains_saves_loads_and_keeps_its_promises(case, dependencies, tmp_path):
    name, config = _config(case, dependencies)
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in build_model(name, config).state_dict().items()}
    model = _train(name, config, tmp_path / case).eval()
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point()), \
        "one training step changed no weight"

    loaded = genae.load(tmp_path / case)
    assert type(loaded) is type(model) and loaded.name == name
    caps = loaded.capabilities
    assert caps == EXPECTED[case]
    assert loaded.latent_dim == getattr(config, "dim_z", None) if case != "judge" else loaded.latent_dim is None
    x, y = _images()
    b = len(x)

    def both(fn):
        torch.manual_seed(5)
        first = fn(model)
        torch.manual_seed(5)
        second = fn(loaded)
        return first, second

    with torch.no_grad():
        if caps.encodes:
            label = y if caps.encodes_label else None
            q, q_loaded = both(lambda m: m.encode(x, label))
            _same(q.mean, q_loaded.mean)
            assert q.mean.shape == (b, config.dim_z)
            rec, rec_loaded = both(lambda m: m.reconstruct(x, y if caps.conditional else None))
            _same(rec, rec_loaded)
            assert rec.shape == x.shape and 0 <= rec.min() and rec.max() <= 1
        else:
            with pytest.raises(NotImplementedError, match="encodes"):
                loaded.encode(x)
        if caps.decodes:
            z = torch.randn(b, config.dim_z)
            p, p_loaded = both(lambda m: m.decode(z, y if caps.conditional else None))
            _same(p.mean, p_loaded.mean)
            assert p.mean.shape == x.shape
        if caps.samples:
            s, s_loaded = both(lambda m: m.sample(b))
            _same(s, s_loaded)
            assert s.shape == (b, 1, 28, 28) and 0 <= s.min() and s.max() <= 1
            torch.manual_seed(5)
            with_one = loaded.sample(b, torch.full((b,), 1))
            torch.manual_seed(5)
            with_two = loaded.sample(b, torch.full((b,), 2))
            changed = (with_one - with_two).abs().max().item() > 1e-6
            assert changed == caps.conditional, "a label must change a conditional model's samples, and only those"
        else:
            with pytest.raises(NotImplementedError, match="samples"):
                loaded.sample(2)
        if caps.classifies:
            logits, logits_loaded = both(lambda m: m.classify_logits(x))
            _same(logits, logits_loaded)
            assert logits.shape == (b, 10) and torch.isfinite(logits).all()
        elif case.startswith("aae"):
            with pytest.raises(ValueError, match="no classifier"):
                loaded.classify_logits(x)
        else:
            with pytest.raises(NotImplementedError, match="classifies"):
                loaded.classify_logits(x)
        if caps.likelihood:
            batch = loaded.prepare(x, y, torch.Generator().manual_seed(0))
            w, w_loaded = both(lambda m: m.log_weights(batch, 4))
            _same(w, w_loaded)
            assert w.shape == (4, b) and torch.isfinite(w).all() and (w < 0).all()
        else:
            with pytest.raises(NotImplementedError, match="likelihood"):
                loaded.log_weights(loaded.prepare(x, y), 2)
        if caps.completes:
            c, c_loaded = both(lambda m: m.complete(x, 3))
            _same(c, c_loaded)
            assert c.shape == (3, b, 1, 28, 28)
            given = loaded.given_mask.bool().expand_as(x)
            for k in range(3):
                _same(c[k][given], x[given])   # the given quadrants are kept exactly
            dim = loaded.latent_dim
            eps = torch.zeros(b, dim) if dim else None
            one = loaded.complete_with(x, eps)
            _same(one[given], x[given])
            if dim:   # the noise moves the completion, which outside the given pixels is the generator's
                assert (loaded.complete_with(x, eps + 3) - one).abs().max() > 1e-5
            else:
                _same(one, c[0])
        else:
            with pytest.raises(NotImplementedError, match="completes"):
                loaded.complete(x)
