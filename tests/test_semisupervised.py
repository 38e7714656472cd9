"""Kingma et al.'s M2 and M1+M2: the unlabeled bound, the labeled subsets, training and selection."""

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from fakes import synthetic_mnist, write_npz
from safetensors import safe_open
from torch.distributions import Independent

from genae.data import DataSource, load_mnist
from genae.data.mnist import Split
from genae.data.subsets import UNLABELED, LabeledSubset, balanced_subset, hide_labels
from genae.evaluate import evaluate_run
from genae.models.base import Batch, labeled_positions
from genae.models.semisupervised import M2, M2Config
from genae.models.vae import VAEConfig
from genae.nets import build_networks
from genae.options import TrainCompute
from genae.rundir import build_model
from genae.rundir import load_model as load
from genae.train.trainer import train_model


def train_run(name, config, out, data_dir, limit):
    return train_model(name, config, out, data=DataSource(data_dir=data_dir, limit=limit), device="cpu", quiet=True)


def test_balanced_subsets_are_balanced_seeded_and_from_the_training_split():
    y = torch.arange(50_000) % 10
    idx = balanced_subset(y, 100, seed=0)
    assert len(idx) == len(set(idx.tolist())) == 100
    assert torch.bincount(y[idx], minlength=10).tolist() == [10] * 10
    assert idx.min() >= 0 and idx.max() < 50_000  # indices into the training split: never validation or test
    assert torch.equal(idx, balanced_subset(y, 100, seed=0))
    assert not torch.equal(idx, balanced_subset(y, 100, seed=1))
    for bad in (5, 105):
        with pytest.raises(ValueError, match=f"--n-labels {bad}"):
            balanced_subset(y, bad, seed=0)


def test_hide_labels_keeps_only_the_subset():
    split = Split(torch.zeros(6, 1, 28, 28), torch.tensor([3, 1, 4, 1, 5, 9]))
    hidden = hide_labels(split, torch.tensor([1, 4]))
    assert hidden.y.tolist() == [UNLABELED, 1, UNLABELED, UNLABELED, 5, UNLABELED]
    assert split.y.tolist() == [3, 1, 4, 1, 5, 9]  # the original is untouched


@pytest.mark.parametrize("every", [1, 3])
def test_a_planned_step_knows_how_many_of_its_images_are_labeled(every):
    # the plan counts on the host; the joined batch's labels (y >= 0) are counted here on their own
    y = torch.arange(300) % 10
    split = Split(torch.rand(300, 1, 28, 28), y)
    keep = balanced_subset(y, 30, seed=0)
    hidden = hide_labels(split, keep)
    labeled = LabeledSubset(split, keep, draw=7, every=every)
    torch.manual_seed(0)
    plans = set()
    for idx in torch.randperm(300).split(25):
        drawn, n_labeled = labeled.plan(idx)
        x, yy = labeled.join(hidden.x[idx], hidden.y[idx], drawn)
        plans.add((drawn, n_labeled))
        assert n_labeled == int((yy >= 0).sum()) and len(yy) == 25 + (7 if drawn else 0)
        assert torch.equal(x[:25], hidden.x[idx])
        positions = labeled_positions(Batch(x, yy, x, n_labeled))
        expected = labeled_positions(Batch(x, yy, x))   # found by value
        assert all(torch.equal(a, b) for a, b in zip(positions, expected))
    assert len({n for _, n in plans}) > 1 and {d for d, _ in plans} == ({True} if every == 1 else {True, False})


def test_m2s_training_batch_carries_its_plan_and_prepare_draws_without_one():
    model = M2(M2Config(n_labels=10, n_hidden=8, dim_z=2, labeled_batch=4, labeled_every=2))
    data = model.prepare_data(synthetic_mnist(256))
    model.train()
    idx = torch.arange(20)
    torch.manual_seed(3)
    planned = model.training_batch(data.train.x[idx], data.train.y[idx], model.plan_step(idx))
    assert planned.n_labeled == int((planned.y >= 0).sum())
    torch.manual_seed(3)   # the same host draw decides prepare's draw; the count stays unknown
    unplanned = model.prepare(data.train.x[idx], data.train.y[idx])
    assert unplanned.n_labeled is None and len(unplanned) == len(planned)


def test_forward_each_condition_equals_one_forward_per_condition():
    enc, _ = build_networks("mlp", dim_z=3, n_hidden=8, cond_dim=10)
    x, labels = torch.rand(4, 1, 28, 28), torch.eye(10)
    each = enc.forward_each(x, labels)
    assert each.shape == (10, 4, 6)
    for k in range(10):
        torch.testing.assert_close(each[k], enc(x, labels[k].expand(4, 10)), rtol=1e-5, atol=1e-5)


def test_forward_each_computes_a_cnns_features_once_for_every_condition():
    """A CNN's body is one linear layer: its convolutions and the product with their 3136 features run
    once for all ten labels (only the label's part per label), with the same result."""
    from torch.utils.flop_counter import FlopCounterMode

    def products(fn):   # FLOPs of matrix products, convolutions left out
        with FlopCounterMode(display=False) as counter:
            out = fn()
        return out, sum(n for op, n in counter.get_flop_counts()["Global"].items() if "mm" in str(op))

    enc, _ = build_networks("conv", dim_z=3, cond_dim=10)
    x, labels = torch.rand(4, 1, 28, 28), torch.eye(10)
    calls = []
    enc.features.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    each, each_flops = products(lambda: enc.forward_each(x, labels))
    assert calls == [4] and each.shape == (10, 4, 6)
    _, one_flops = products(lambda: enc(x, labels[0].expand(4, 10)))
    assert each_flops < 1.5 * one_flops   # not ten times
    for k in range(10):
        torch.testing.assert_close(each[k], enc(x, labels[k].expand(4, 10)), rtol=1e-5, atol=1e-5)


def tiny_m2(**kw):
    torch.manual_seed(0)
    return M2(M2Config(dim_z=3, n_hidden=16, **kw))


def test_unlabeled_bound_is_the_explicit_sum_over_labels(monkeypatch):
    """U(x) = Σ_y q(y|x)·L(x,y) − H(q(y|x)), with z fixed at the mean so both sides are exact."""
    monkeypatch.setattr(Independent, "rsample", lambda self, shape=torch.Size(): self.mean)
    model = tiny_m2()
    x = (torch.rand(5, 1, 28, 28) > 0.5).float()
    q = torch.softmax(model.classify_logits(x), 1)
    bounds = torch.stack([model.labeled_bound(x, torch.full((5,), k), x) for k in range(10)], 1)
    explicit = (q * bounds).sum(1) + (q * q.log()).sum(1)
    torch.testing.assert_close(model.unlabeled_bound(x, x), explicit, rtol=1e-5, atol=1e-4)


def test_classifier_stays_float32_under_bf16_autocast():
    """bf16 logits of q(y|x) slowed M2's learning (_logits docstring); the rest may use bf16."""
    model = tiny_m2()
    x = torch.rand(4, 1, 28, 28)
    exact = model.classify_logits(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model.classify_logits(x)
        encoder_out = model.encoder(x, torch.eye(10)[:4])
    assert logits.dtype == torch.float32 and encoder_out.dtype == torch.bfloat16
    torch.testing.assert_close(logits, exact)


def test_labeled_bound_includes_the_label_prior():
    model = tiny_m2()
    x = (torch.rand(3, 1, 28, 28) > 0.5).float()
    torch.manual_seed(1)
    with_prior = model.labeled_bound(x, torch.tensor([0, 1, 2]), x)
    torch.manual_seed(1)
    q = model.encode(x, torch.tensor([0, 1, 2]))
    z = q.rsample()
    plain = -model.decode(z, torch.tensor([0, 1, 2])).log_prob(x) + torch.distributions.kl_divergence(
        q, torch.distributions.Independent(torch.distributions.Normal(torch.zeros(3, 3), 1.0), 1))
    torch.testing.assert_close(with_prior - plain, torch.full((3,), math.log(10)), rtol=0, atol=1e-3)


def test_alpha_defaults_to_the_papers_value_per_labeled_image():
    assert tiny_m2(n_labels=100).alpha == pytest.approx(0.1 * 50_000 / 100)
    assert tiny_m2(n_labels=100, alpha=2.0).alpha == 2.0


def test_loss_mixes_labeled_and_unlabeled_images_with_fixed_parts():
    model = tiny_m2()
    model.labeled_weight, model.classification_weight = 0.25, 0.5
    x = (torch.rand(6, 1, 28, 28) > 0.5).float()
    loss, parts = model.loss(Batch(x, torch.tensor([-1, -1, -1, 2, 7, -1]), x))
    assert set(parts) == {"loss", "labeled_bound", "unlabeled_bound", "classification"}
    assert loss.item() == pytest.approx(parts["unlabeled_bound"].item() + 0.25 * parts["labeled_bound"].item()
                                        + 0.5 * model.alpha * parts["classification"].item(), rel=1e-5)
    loss_u, parts_u = model.loss(Batch(x, torch.full((6,), -1), x))  # no labeled image: same keys, zeros
    assert set(parts_u) == set(parts) and parts_u["classification"].item() == 0


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    write_npz(folder / "mnist.npz")
    return str(folder)


def test_m2_trains_keeps_the_best_validation_epoch_and_reports_its_test_error(tmp_path, fake_data):
    config = M2Config(dim_z=4, n_hidden=32, n_labels=20, labeled_batch=20, epochs=3, lr=3e-3)
    out, history = train_run("m2", config, tmp_path / "m2", fake_data, 300)
    errors = [h["valid"]["error"] for h in history]
    best = 1 + min(range(len(errors)), key=errors.__getitem__)
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert int(f.metadata()["epoch"]) == best
    result = evaluate_run(out, device="cpu", limit=300)
    model = load(out)
    test = load_mnist(fake_data).test.head(300)
    expected = (model.classify_logits(test.x).argmax(1) != test.y).float().mean().item()
    assert result["error"] == pytest.approx(expected)
    assert json.loads((out / "eval.json").read_text())["n_labels"] == 20


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_m1_plus_m2_trains_on_a_frozen_m1(tmp_path, fake_data, arch):
    m1_dir, _ = train_run("vae", VAEConfig(dim_z=5, n_hidden=32, arch=arch, epochs=1), tmp_path / "m1", fake_data, 200)
    config = M2Config(dim_z=3, n_hidden=16, n_labels=20, labeled_batch=10, epochs=1, m1_run=str(m1_dir))
    out, history = train_run("m2", config, tmp_path / "m1m2", fake_data, 200)
    assert math.isfinite(history[-1]["train"]["m2"]["loss"])
    model, m1 = load(out), load(m1_dir)
    for (name, a), b in zip(model.m1.state_dict().items(), m1.state_dict().values()):
        assert torch.equal(a, b), name  # M1 stayed frozen
    assert model.sample(4).shape == (4, 1, 28, 28)  # through M1's decoder back to pixels
    x = torch.rand(2, 1, 28, 28)
    batch = model.prepare(x, torch.tensor([0, 1]))
    assert batch.x.shape == (2, 5)
    # the public methods take images and map them through M1 themselves
    torch.testing.assert_close(model.classify_logits(x), model._logits(batch.x))


@pytest.mark.parametrize("with_m1", [False, True], ids=["m2", "m1+m2"])
def test_m2_draws_a_chosen_digit_and_plots_reconstructions_in_pixels(tmp_path, fake_data, with_m1):
    """M2 is conditional, p(x | y, z): the flag that `genae sample --label` checks (it refused M2
    as not conditional) and that gives `plot samples` a row per label; `plot reconstruction` works
    for M2 (it had no reconstruct) and shows pixels for M1+M2, whose prepared inputs are M1's codes."""
    from genae.plots.figures import reconstruction, samples

    extra = {}
    if with_m1:
        m1_dir, _ = train_run("vae", VAEConfig(dim_z=5, n_hidden=32, epochs=1), tmp_path / "m1", fake_data, 200)
        extra = {"m1_run": str(m1_dir)}
    config = M2Config(dim_z=3, n_hidden=16, n_labels=20, labeled_batch=10, epochs=1, **extra)
    out, _ = train_run("m2", config, tmp_path / "m2", fake_data, 200)
    model = load(out)
    assert model.capabilities.conditional and model.capabilities.samples
    draws = {}
    for label in (3, 5):
        torch.manual_seed(0)   # the same z for both labels
        draws[label] = model.sample(4, label)
    assert draws[3].shape == (4, 1, 28, 28)
    if not with_m1:   # (this one-epoch M1 on fake data keeps no z1 dimension active: M1+M2 decodes z1 = 0)
        assert not torch.equal(draws[3], draws[5])
    test = load_mnist(fake_data).test.head(4)
    assert model.reconstruct(test.x).shape == (4, 1, 28, 28)
    for figure in (reconstruction, samples):
        assert figure(out, device="cpu").stat().st_size > 2000


def test_m1_plus_m2_uses_only_m1s_active_dimensions(tmp_path, fake_data):
    m1_dir, _ = train_run("vae", VAEConfig(dim_z=5, n_hidden=32, epochs=1), tmp_path / "m1", fake_data, 200)
    model = build_model("m2", M2Config(dim_z=3, n_hidden=16, n_labels=20, m1_run=str(m1_dir), m1_min_std=1e-6))
    last = model.m1.encoder.body[-1]  # rows 0..4 give q(z1|x)'s mean: make dimensions 0 and 2 constant
    with torch.no_grad():
        last.weight[[0, 2]] = 0
    model.prepare_data(load_mnist(fake_data).head(200))
    assert model.m1_active.tolist() == [0, 1, 0, 1, 1]
    model.eval()
    batch = model.prepare(torch.rand(4, 1, 28, 28), torch.arange(4))
    assert torch.all(batch.x[:, [0, 2]] == 0) and torch.all(batch.x[:, [1, 3, 4]] != 0)
    model.train()
    target = model.prepare(torch.rand(4, 1, 28, 28), torch.full((4,), -1)).target   # z1 samples, all dims
    out = torch.randn(len(target), 10)
    mu, log_var = out[:, :5], out[:, 5:]
    expected = (torch.distributions.Normal(mu, (0.5 * log_var).exp()).log_prob(target)[:, [1, 3, 4]].sum(1)
                + torch.distributions.Normal(0.0, 1.0).log_prob(target[:, [0, 2]]).sum(1))  # N(0, 1): M1's prior
    assert torch.allclose(model._likelihood(out).log_prob(target), expected, atol=1e-5)


def test_m1_plus_m2_mask_keeps_every_dimension_at_zero(tmp_path, fake_data):
    m1_dir, _ = train_run("vae", VAEConfig(dim_z=5, n_hidden=32, epochs=1), tmp_path / "m1", fake_data, 200)
    model = build_model("m2", M2Config(dim_z=3, n_hidden=16, n_labels=20, m1_run=str(m1_dir), m1_min_std=0.0))
    with torch.no_grad():
        model.m1.encoder.body[-1].weight[0] = 0   # a constant dimension
    model.prepare_data(load_mnist(fake_data).head(200))
    assert model.m1_active.tolist() == [1.0] * 5   # 0 keeps all


def test_m1_run_must_hold_a_vae(tmp_path, fake_data):
    from genae.models.vae import VAEConfig as C

    cvae_dir, _ = train_run("cvae", C(dim_z=2, n_hidden=8, epochs=1), tmp_path / "cvae", fake_data, 100)
    with pytest.raises(ValueError, match="holds a 'cvae' run"):
        build_model("m2", M2Config(m1_run=str(cvae_dir)))


def test_semisupervised_recipe_tables_every_model_over_seeds(tmp_path, fake_data):
    from genae.experiments.semisupervised import SemiSupervisedOptions, semisupervised

    defaults = SemiSupervisedOptions()
    opts = dataclasses.replace(defaults, out=tmp_path, data=DataSource(data_dir=fake_data, limit=300), n_labels=(20,),
                               seeds=(0, 1), m1=dataclasses.replace(defaults.m1, epochs=1),
                               m2=dataclasses.replace(defaults.m2, epochs=1, lr_decay_epochs=0),
                               m1m2=dataclasses.replace(defaults.m1m2, epochs=1),
                               compute=TrainCompute(device="cpu", quiet=True))
    result = semisupervised(opts)
    assert {k.rsplit("-seed", 1)[0] for k in result.numbers} == {"m1-n20", "m2-n20", "m1+m2-n20"}
    for key, row in result.numbers.items():
        assert 0 <= row["error"] <= 1, key
    report = result.report.read_text()
    for name, key, field in (("M1 + SVM", "m1", "error"), ("M1 + label spreading", "m1", "error_label_spreading"),
                             ("M2", "m2", "error"), ("M1+M2", "m1+m2", "error")):
        mean = 100 * sum(result.numbers[f"{key}-n20-seed{s}"][field] for s in (0, 1)) / 2
        assert f"| {name} | 20 | {mean:.2f} ± " in report
    assert result.arrays["analogies"].shape == (8 * 11, 1, 28, 28)
    assert (result.report.parent / "figures" / "m2_analogies.png").stat().st_size > 2000
    with pytest.raises(ValueError, match="--n-labels 15"):
        semisupervised(dataclasses.replace(opts, n_labels=(15,)))


def test_recipe_refuses_a_bad_m2_option_before_m1_trains(tmp_path, fake_data):
    from genae.experiments.semisupervised import SemiSupervisedOptions, semisupervised

    defaults = SemiSupervisedOptions()
    for changes in ({"m2": dataclasses.replace(defaults.m2, epochs=2, lr_decay_epochs=5)},
                    {"m1m2": dataclasses.replace(defaults.m1m2, epochs=2, lr_decay_epochs=5)}):
        with pytest.raises(ValueError, match="--lr-decay-epochs 5"):
            semisupervised(dataclasses.replace(defaults, out=tmp_path, data=DataSource(data_dir=fake_data),
                                               n_labels=(20,), **changes))
    assert not (tmp_path / "models").exists()   # nothing trained


def test_recipe_schedule_precision_and_network_sizes_reach_m2_and_m1_m2_configs():
    from genae.experiments.semisupervised import (
        SemiSupervisedOptions,
        m1_config,
        m2_config,
    )

    defaults = SemiSupervisedOptions()
    opts = dataclasses.replace(
        defaults, m2=dataclasses.replace(defaults.m2, lr_schedule="cosine", lr_decay_epochs=0, precision="bf16",
                                         n_layers=2, dim_z=10),
        m1m2=dataclasses.replace(defaults.m1m2, lr_schedule="cosine", precision="bf16", n_layers=3, dim_z=7))
    for m1_run, expected in ((None, ("cosine", "bf16", 2, 10)), ("runs/m1", ("cosine", "bf16", 3, 7))):
        config = m2_config(opts, 100, 0, m1_run)
        assert type(config) is M2Config   # the model's own class, not the command line's view of it
        assert (config.lr_schedule, config.precision, config.n_layers, config.dim_z) == expected
        assert (config.n_labels, config.seed, config.m1_run) == (100, 0, m1_run)
    assert (m1_config(opts).lr_schedule, m1_config(opts).precision) == ("constant", "fp32")  # M1 shared by all
    assert m2_config(defaults, 100, 0).precision == "fp32"


def test_recipe_m1_arch_reaches_m1s_config():
    from genae.experiments import RECIPES
    from genae.experiments.semisupervised import SemiSupervisedOptions, m1_config

    assert m1_config(SemiSupervisedOptions()).arch == "conv"   # ours: a convolutional M1
    source = RECIPES["semisupervised"].defaults("source")
    assert m1_config(source).arch == "mlp"   # Kingma et al.'s M1 with --setting source
    assert m1_config(dataclasses.replace(source, m1=dataclasses.replace(source.m1, arch="cnn2"))).arch == "cnn2"


def test_m1_beta_reaches_m1s_vae_and_names_a_different_run_while_the_default_names_its_plain_config():
    from genae.experiments.semisupervised import SemiSupervisedOptions, m1_config
    from genae.rundir import run_dir_for

    opts, data = SemiSupervisedOptions(), DataSource()
    default = m1_config(opts)
    half = m1_config(dataclasses.replace(opts, m1=dataclasses.replace(opts.m1, beta=0.5)))
    assert (default.beta, half.beta) == (0.25, 0.5)
    assert run_dir_for(Path("r"), "vae", default, data, "m1-z50") == run_dir_for(Path("r"), "vae", VAEConfig(
        arch="conv", dim_z=50, beta=0.25, epochs=30, seed=0), data, "m1-z50")   # the recipe's M1 is a plain VAE config
    assert run_dir_for(Path("r"), "vae", half, data, "m1-z50") != run_dir_for(Path("r"), "vae", default, data, "m1-z50")


def test_m1_classifiers_on_two_clusters_and_label_spreading_uses_the_unlabeled_points():
    import numpy as np

    from genae.evaluate.classification import label_spreading_error, svm_error

    rng = np.random.default_rng(0)
    # two classes on two long, thin parallel bars: the labeled points sit at the bars' ends, so the
    # labeled images alone mislead about the far ends, but every bar is one chain of neighbours
    t = rng.uniform(0, 10, 120)
    features = np.stack([t, np.repeat([0.0, 5.0], 60) + 0.02 * rng.standard_normal(120)], 1)
    truth = np.repeat([0, 1], 60)
    labels = np.full(120, -1)
    first, second = np.argmin(np.where(truth == 0, t, 99)), np.argmax(np.where(truth == 1, t, -1))
    labels[[first, second]] = truth[[first, second]]
    spread = label_spreading_error(features, labels, features, truth)
    alone = svm_error(features[[first, second]], truth[[first, second]], features, truth)
    assert spread < 0.02 and alone > 0.3          # only the transductive classifier follows the bars
    with pytest.raises(ValueError, match="at least one labeled"):
        label_spreading_error(features, np.full(120, -1), features, truth)


def test_labeled_terms_weigh_by_the_labeled_share_of_the_training_split():
    """'share': labeled images are drawn every step, so their terms carry N_l / N_u and the step loss
    is an unbiased estimate of the paper's J^α / N_u; 'batch' (default) weighs them 1."""
    from fakes import synthetic_mnist

    model = tiny_m2(n_labels=20, labeled_weight="share")
    data = model.prepare_data(synthetic_mnist(256))
    assert model.labeled_weight == pytest.approx(20 / 236)
    assert (data.train.y >= 0).sum().item() == 20
    assert model.classification_weight == pytest.approx(20 / 236)
    default = tiny_m2(n_labels=20)
    default.prepare_data(synthetic_mnist(256))
    assert default.labeled_weight == 1.0 and default.classification_weight == 1.0


def test_bound_share_weighs_the_labeled_bound_by_its_share_and_the_classification_by_one():
    """'bound-share': L(x, y) of the labeled draw carries N_l / N_u, α·(−log q(y|x)) carries 1."""
    from fakes import synthetic_mnist

    model = tiny_m2(n_labels=20, labeled_weight="bound-share")
    model.prepare_data(synthetic_mnist(256))
    assert model.labeled_weight == pytest.approx(20 / 236) and model.classification_weight == 1.0
    every4 = tiny_m2(n_labels=20, labeled_weight="bound-share", labeled_every=4)
    every4.prepare_data(synthetic_mnist(256))   # a draw in 1 step of 4 on average weighs 4 times more
    assert every4.labeled_weight == pytest.approx(4 * 20 / 236) and every4.classification_weight == 1.0
    x = (torch.rand(6, 1, 28, 28) > 0.5).float()
    loss, parts = model.loss(Batch(x, torch.tensor([-1, -1, -1, 2, 7, -1]), x))
    assert loss.item() == pytest.approx(parts["unlabeled_bound"].item() + 20 / 236 * parts["labeled_bound"].item()
                                        + model.alpha * parts["classification"].item(), rel=1e-5)


def test_labeled_every_k_puts_a_labeled_draw_in_about_one_step_in_k():
    """--labeled-every K: each step takes the labeled draw with probability 1/K from the seeded RNG."""
    from fakes import synthetic_mnist

    def labeled_steps(every: int) -> list[bool]:
        model = tiny_m2(n_labels=20, labeled_batch=5, labeled_every=every)
        data = model.prepare_data(synthetic_mnist(256))
        x, y = data.train.x[:8], torch.full((8,), UNLABELED)
        torch.manual_seed(3)
        return [len(model.prepare(x, y).y) == 13 for _ in range(400)]

    assert all(labeled_steps(1))
    model = tiny_m2(n_labels=20, labeled_batch=5)
    data = model.prepare_data(synthetic_mnist(256))
    state = torch.get_rng_state()
    torch.randint(20, (5,))         # what the draw itself uses
    after_draw = torch.get_rng_state()
    torch.set_rng_state(state)
    model.prepare(data.train.x[:8], torch.full((8,), UNLABELED))
    assert torch.equal(torch.get_rng_state(), after_draw)   # every=1 takes no extra random number: old runs reproduce
    steps = labeled_steps(10)
    assert 20 <= sum(steps) <= 60          # binomial(400, 0.1): mean 40, sd 6
    assert labeled_steps(10) == steps      # same RNG state, same steps (a resumed run draws the same)


def test_m2_dry_run_counts_its_own_networks(tmp_path, capsys):
    from genae.cli import main

    main(["train", "m2", "--n-layers", "2", "--dry-run", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    model = M2(M2Config(n_layers=2))
    for part in ("classifier", "encoder", "decoder"):
        assert f"  {part}: {sum(p.numel() for p in getattr(model, part).parameters()):,}" in out
    assert "layers of --arch" not in out and not (tmp_path / "run").exists()


def test_softplus_activation_and_option_errors():
    softplus = tiny_m2(activation="softplus")
    for net in (softplus.classifier, softplus.encoder, softplus.decoder):
        assert any(isinstance(m, torch.nn.Softplus) for m in net.modules())
        assert not any(isinstance(m, torch.nn.ReLU) for m in net.modules())
    assert not any(isinstance(m, torch.nn.Softplus) for m in tiny_m2().modules())
    for option, kwargs in (("--labeled-every 0", {"labeled_every": 0}), ("--labeled-batch 0", {"labeled_batch": 0}),
                           ("--adam-beta1 1.0", {"adam_beta1": 1.0}), ("--dim-z 0", {"dim_z": 0}),
                           ("--n-layers 0", {"n_layers": 0})):
        with pytest.raises(ValueError, match=option):
            M2(M2Config(**kwargs))   # rejected before any network is built


def test_beta_weighs_the_z_kl_in_the_training_loss_only(monkeypatch):
    """--beta b: both bounds of the loss carry b·KL(q(z|x,y) ‖ p(z)); reported bounds keep 1."""
    monkeypatch.setattr(Independent, "rsample", lambda self, shape=torch.Size(): self.mean)
    model = tiny_m2(beta=3.0)
    x = (torch.rand(4, 1, 28, 28) > 0.5).float()
    y = torch.tensor([0, 3, 5, 9])
    q = model.encode(x, y)
    kl = torch.distributions.kl_divergence(q, torch.distributions.Independent(
        torch.distributions.Normal(torch.zeros(4, 3), 1.0), 1))
    torch.testing.assert_close(model.labeled_bound(x, y, x, 3.0) - model.labeled_bound(x, y, x), 2 * kl,
                               rtol=1e-4, atol=1e-4)
    mixed = torch.tensor([0, 3, -1, -1])
    loss, parts = model.loss(Batch(x, mixed, x))
    assert parts["labeled_bound"].item() == pytest.approx(model.labeled_bound(x[:2], y[:2], x[:2], 3.0).mean().item(),
                                                          rel=1e-5)
    assert parts["unlabeled_bound"].item() == pytest.approx(model.unlabeled_bound(x[2:], x[2:], beta=3.0).mean().item(),
                                                            rel=1e-5)
    assert model.validation_metrics(Batch(x, y, x))["labeled_bound"].item() == pytest.approx(
        model.labeled_bound(x, y, x).mean().item(), rel=1e-5)
    assert model.test_metrics(Batch(x, y, x))["labeled_elbo"] == pytest.approx(
        -model.labeled_bound(x, y, x).mean().item(), rel=1e-5)
    unl = model.unlabeled_bound(x, x, beta=3.0) - model.unlabeled_bound(x, x)
    q_y = torch.softmax(model.classify_logits(x), 1)
    kls = torch.stack([torch.distributions.kl_divergence(model.encode(x, torch.full((4,), k)), torch.distributions.Independent(
        torch.distributions.Normal(torch.zeros(4, 3), 1.0), 1)) for k in range(10)], 1)
    torch.testing.assert_close(unl, 2 * (q_y * kls).sum(1), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="--beta -1"):
        tiny_m2(beta=-1.0)


def test_generative_error_classifies_by_the_smallest_bound(monkeypatch):
    """eval.json's generative_error: argmin_y L(x, y) with z at q's mean, checked against labeled_bound."""
    model = tiny_m2()
    x = (torch.rand(6, 1, 28, 28) > 0.5).float()
    each = model.bounds_each_label(x, x, sample=False)
    monkeypatch.setattr(Independent, "rsample", lambda self, shape=torch.Size(): self.mean)
    one_by_one = torch.stack([model.labeled_bound(x, torch.full((6,), k), x) for k in range(10)])
    torch.testing.assert_close(each, one_by_one, rtol=1e-4, atol=1e-4)
    y = each.argmin(0)
    model.eval()
    metrics = model.test_metrics(Batch(x, y, x))
    assert metrics["generative_error"] == 0.0
    assert model.test_metrics(Batch(x, (y + 1) % 10, x))["generative_error"] == 1.0
