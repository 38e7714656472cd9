"""The architectures of seeds 001/002 built by the one builder, their parameter tables, the loss
convention across them, t-SNE embeddings and samples at a chosen z scale."""

import math

import pytest
import torch
from torch import nn

from genae.cli import main
from genae.models.base import Batch
from genae.models.vae import VAE, VAEConfig
from genae.nets import ARCHITECTURES, build_networks, count_parameters
from genae.nets.summary import architecture_table, layer_table
from genae.plots.latent import save_latent, tsne


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("cond_dim", [0, 10])
def test_every_architecture_maps_images_to_codes_and_codes_to_images(arch, cond_dim):
    enc, dec = build_networks(arch, dim_z=5, n_hidden=32, cond_dim=cond_dim)
    x, c = torch.rand(3, 1, 28, 28), torch.eye(10)[:3]
    assert enc(x, c if cond_dim else None).shape == (3, 10)
    assert dec(torch.randn(3, 5), c if cond_dim else None).shape == (3, 1, 28, 28)
    # K samples × B images decode at once, the condition broadcast, each as if decoded alone
    z = torch.randn(4, 3, 5)
    together = dec(z, c if cond_dim else None)
    assert together.shape == (4, 3, 1, 28, 28)
    torch.testing.assert_close(together[2], dec(z[2], c if cond_dim else None), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ["cnn2", "cnn3", "conv"])
def test_the_condition_changes_a_cnn_decoders_output(arch):
    _, dec = build_networks(arch, dim_z=4, cond_dim=10)
    z = torch.randn(1, 4)
    assert not torch.allclose(dec(z, torch.eye(10)[:1]), dec(z, torch.eye(10)[1:2]))


def test_fc3_is_three_layers_and_refuses_another_depth():
    enc, dec = build_networks("fc3", dim_z=20, n_hidden=500)
    assert [m.out_features for m in enc.modules() if isinstance(m, nn.Linear)] == [500, 500, 40]
    assert [m.out_features for m in dec.modules() if isinstance(m, nn.Linear)] == [500, 500, 784]
    with pytest.raises(ValueError, match="fc3.*--n-layers 3"):
        build_networks("fc3", dim_z=20, n_hidden=500, n_layers=3)


def test_unknown_architecture_is_named_in_the_error():
    with pytest.raises(ValueError, match="'resnet'.*cnn3"):
        build_networks("resnet", dim_z=2)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_reconstruction_term_sums_all_784_pixels_for_every_architecture(arch):
    """Zero logits make each pixel cost log 2 whatever the shape of the network, so β weighs the KL
    against the same 784-pixel sum everywhere (seed 001's CNN summed one axis: 28·log 2)."""
    model = VAE(VAEConfig(arch=arch, dim_z=3, n_hidden=16), conditional=True)
    last = [m for m in model.decoder.modules() if isinstance(m, (nn.Linear, nn.ConvTranspose2d))][-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    x = (torch.rand(6, 1, 28, 28) > 0.5).float()
    rec = model.loss_terms(Batch(x, torch.arange(6), x))["rec"]
    torch.testing.assert_close(rec, torch.full((6,), 784 * math.log(2)))


@pytest.mark.parametrize("arch", ["cnn2", "conv"])
def test_a_cnn_vae_learns(arch):
    torch.manual_seed(0)
    model = VAE(VAEConfig(arch=arch, dim_z=4), conditional=True)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = torch.zeros(32, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 1.0  # one bar: an easy image to learn
    batch = Batch(x, torch.arange(32) % 10, x)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss, _ = model.loss(batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_parameter_tables_count_every_weight():
    sizes = dict(dim_z=20, n_hidden=500, n_layers=2, cond_dim=10)
    table = architecture_table(mark="cnn3", **sizes)
    for arch in ARCHITECTURES:
        enc, dec = build_networks(arch, **sizes)
        total = count_parameters(enc) + count_parameters(dec)
        assert f"{total:,}" in table, arch
    assert "cnn3 *" in table
    enc, dec = build_networks("cnn2", **sizes)
    layers = layer_table("cnn2", **sizes)
    assert "Conv2d 1→16 4×4 s2" in layers and "272" in layers  # 16·(4·4·1) + 16
    assert layers.rstrip().endswith(f"{count_parameters(enc) + count_parameters(dec):,}")


def test_dry_run_prints_the_tables_and_trains_nothing(tmp_path, capsys):
    main(["train", "cvae", "--arch", "conv", "--dry-run", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert "layers of --arch conv" in out and "ConvTranspose2d 32→16 3×3 s2" in out
    assert not (tmp_path / "run").exists()


def test_tsne_keeps_separated_clusters_apart():
    torch.manual_seed(0)
    centres = torch.randn(3, 10) * 20
    labels = torch.arange(150) % 3
    z = centres[labels] + torch.randn(150, 10)
    embedded = tsne(z, seed=0)
    assert embedded.shape == (150, 2)
    nearest = torch.cdist(embedded, embedded).fill_diagonal_(float("inf")).argmin(1)
    assert (labels[nearest] == labels).float().mean() > 0.95


def test_tsne_refuses_too_few_points():
    with pytest.raises(ValueError, match="more than 90 points, got 20"):
        tsne(torch.randn(20, 5))


def test_latent_figure_draws_2d_means_as_they_are(tmp_path, monkeypatch):
    import genae.plots.latent as latent

    monkeypatch.setattr(latent, "tsne", lambda *a, **k: pytest.fail("t-SNE used on 2-D means"))
    path = save_latent(tmp_path / "z.png", torch.randn(50, 2), torch.arange(50) % 10, "two dims")
    assert path.stat().st_size > 2000


def test_samples_shrink_towards_the_mean_with_std():
    torch.manual_seed(0)
    model = VAE(VAEConfig(dim_z=4, n_hidden=16), conditional=True)
    at_mean = model.sample(5, 3, std=0.0)
    assert torch.allclose(at_mean, at_mean[:1].expand_as(at_mean))
    spread = {std: model.sample(200, 3, std=std).std(0).mean().item() for std in (0.1, 1.0)}
    assert 0 < spread[0.1] < spread[1.0]
    with pytest.raises(ValueError, match="std -1"):
        model.sample(2, std=-1)
