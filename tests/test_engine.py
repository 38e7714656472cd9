"""The training engine: determinism, NaN handling, early stopping, checkpoints, resume."""

import json

import pytest
import torch
from fakes import synthetic_mnist
from safetensors.torch import load_file
from toy import Toy, ToyConfig

from genae.errors import UserError
from genae.rundir import load_checkpoint, read_metadata, read_metrics
from genae.train.engine import TrainingDiverged, fit

CPU = torch.device("cpu")


def run_toy(out, **kw):
    torch.manual_seed(0)
    model = Toy(ToyConfig(**{"epochs": 3, "batch_size": 32, **kw}))
    return model, fit(model, synthetic_mnist(128), out, device=CPU, quiet=True)


def test_same_seed_same_numbers(tmp_path):
    a, ha = run_toy(tmp_path / "a", seed=5)
    b, hb = run_toy(tmp_path / "b", seed=5)
    c, _ = run_toy(tmp_path / "c", seed=6, binarize="dynamic")
    assert [h["valid"] for h in ha] == [h["valid"] for h in hb]
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_run_directory_contents(tmp_path):
    _, history = run_toy(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == "toy" and config["epochs"] == 3
    assert [h["epoch"] for h in read_metrics(tmp_path)] == [1, 2, 3]
    assert history[0]["train"]["toy"]["loss"] > history[-1]["train"]["toy"]["loss"]
    assert read_metadata(tmp_path / "checkpoint.safetensors")["epoch"] == 3
    assert set(load_file(str(tmp_path / "model.safetensors"))) == {"net.1.weight", "net.1.bias",
                                                                  "net.2.weight", "net.2.bias"}
    assert not list(tmp_path.glob("*.tmp"))


def test_nan_loss_stops_with_phase_and_epoch_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"phase 'toy'.*epoch 2") as err:
        run_toy(tmp_path, nan_at_epoch=2)
    assert "checkpoint" in str(err.value)
    model = Toy(ToyConfig())
    opt = model.phases()[0].optimizer
    state = load_checkpoint(tmp_path / "checkpoint.safetensors", model, {"toy": opt})
    assert state["epoch"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_early_stopping_on_patience(tmp_path):
    _, history = run_toy(tmp_path, epochs=10, patience=2, worse_every_epoch=True)
    assert len(history) == 3  # epoch 1 is best, 2 and 3 are worse: stop
    assert [h["best"] for h in history] == [True, False, False]


def test_existing_run_is_not_overwritten(tmp_path):
    run_toy(tmp_path)
    with pytest.raises(UserError, match="--resume"):
        run_toy(tmp_path)


def test_resume_continues_where_the_checkpoint_stopped(tmp_path):
    full, _ = run_toy(tmp_path / "full", epochs=4)
    run_toy(tmp_path / "part", epochs=2)
    torch.manual_seed(123)  # a different initialisation: the checkpoint must override it
    model = Toy(ToyConfig(epochs=4, batch_size=32))
    history = fit(model, synthetic_mnist(128), tmp_path / "part", device=CPU, resume=True, quiet=True)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    for a, b in zip(full.parameters(), model.parameters()):
        assert torch.equal(a, b)


def test_cosine_schedule_sets_each_epochs_rate():
    from genae.train.engine import set_learning_rate
    model = Toy(ToyConfig(epochs=4, lr=0.01, lr_schedule="cosine"))
    opt = {"toy": model.phases()[0].optimizer}
    rates = []
    for epoch in range(1, 5):
        set_learning_rate(opt, model.config, epoch)
        rates.append(opt["toy"].param_groups[0]["lr"])
    assert rates == pytest.approx([0.01, 0.01 * (1 + 2 ** -0.5) / 2, 0.005, 0.01 * (1 - 2 ** -0.5) / 2])
    constant = Toy(ToyConfig(epochs=4, lr=0.01))
    opt = {"toy": constant.phases()[0].optimizer}
    set_learning_rate(opt, constant.config, 3)
    assert opt["toy"].param_groups[0]["lr"] == 0.01


def test_a_held_rate_decays_along_a_half_cosine_over_the_last_epochs():
    from genae.train.engine import set_learning_rate
    model = Toy(ToyConfig(epochs=5, lr=0.01, lr_decay_epochs=2))
    opt = {"toy": model.phases()[0].optimizer}
    rates = []
    for epoch in range(1, 6):
        set_learning_rate(opt, model.config, epoch)
        rates.append(opt["toy"].param_groups[0]["lr"])
    assert rates == pytest.approx([0.01, 0.01, 0.01, 0.0075, 0.0025])   # cos(π/3) = 1/2, cos(2π/3) = −1/2


@pytest.mark.parametrize("changes, message", [
    (dict(epochs=3, lr_decay_epochs=4), "--lr-decay-epochs 4: must be between 0 and --epochs \\(3\\)"),
    (dict(epochs=3, lr_decay_epochs=-1), "--lr-decay-epochs -1"),
    (dict(epochs=3, lr_decay_epochs=1, lr_schedule="cosine"), "--lr-schedule cosine has its own decay"),
])
def test_a_decay_no_run_can_follow_is_refused_by_name(changes, message):
    from genae.models.config import check_config
    with pytest.raises(ValueError, match=message):
        check_config(ToyConfig(**changes))


def test_process_settings_flush_subnormals_and_fix_the_malloc_threshold():
    import subprocess
    import sys
    code = ("import torch; from genae.runtime import configure_process, fix_malloc_mmap_threshold; "
            "configure_process(); x = torch.full((1_000_000,), 1e-30); "
            "print(int(((x * 1e-10) != 0).sum()), fix_malloc_mmap_threshold())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "0"  # no thread kept a subnormal
    assert out[1] == ("True" if sys.platform == "linux" else out[1])


def test_evaluation_is_repeatable_and_leaves_the_callers_rng_alone():
    from genae.models.registry import build
    from genae.models.vae import VAEConfig
    from genae.train.engine import evaluate
    torch.manual_seed(0)
    model = build("vae", VAEConfig(dim_z=3, n_hidden=16))
    split = synthetic_mnist(64).valid
    state = torch.get_rng_state()
    first, second = evaluate(model, split, CPU), evaluate(model, split, CPU)
    assert first == second  # the ELBO's z samples are seeded too
    assert torch.equal(torch.get_rng_state(), state)


def test_bf16_warns_on_cpus_without_bf16_matrix_instructions(monkeypatch):
    from genae.device import slow_bf16_warning

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert "--precision fp32" in slow_bf16_warning(torch.device("cpu"))
    assert slow_bf16_warning(torch.device("cuda")) is None
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert slow_bf16_warning(torch.device("cpu")) is None


def test_a_phase_with_every_k_runs_on_every_kth_step_and_logs_means_over_those(tmp_path):
    from genae.models.base import Phase, adam

    class Sparse(Toy):
        def __init__(self, config):
            super().__init__(config)
            self.steps = []

        def counted_loss(self, batch):
            self.steps.append(len(batch))
            loss = self.net(batch.x).pow(2).mean()
            return loss, {"n": torch.tensor(float(len(self.steps)))}

        def phases(self):
            return super().phases() + [Phase("sparse", adam(self.parameters(), lr=1e-3), self.counted_loss, every=3)]

    model = Sparse(ToyConfig(epochs=2, batch_size=16))
    history = fit(model, synthetic_mnist(128), tmp_path, device=CPU, quiet=True)  # 128/16 = 8 steps per epoch
    assert len(model.steps) == 5                       # steps 3, 6 | 9, 12, 15 of the run (counted across epochs)
    assert history[0]["train"]["sparse"]["n"] == pytest.approx(1.5)   # its own steps' mean: (1 + 2) / 2
    assert history[1]["train"]["sparse"]["n"] == pytest.approx(4.0)   # (3 + 4 + 5) / 3
    with pytest.raises(ValueError, match="phase 'sparse' runs every 17 steps.*16"):
        class Rare(Sparse):
            def phases(self):
                return [*super().phases()[:1], Phase("sparse", adam(self.parameters(), lr=1e-3), self.counted_loss,
                                                      every=17)]
        fit(Rare(ToyConfig(epochs=2, batch_size=16)), synthetic_mnist(128), tmp_path / "rare", device=CPU, quiet=True)


def test_a_resolved_device_resolves_to_itself(monkeypatch):
    """Recipes pass str(resolve_device('cuda')), i.e. 'cuda:0', on to the runs they train: it must
    resolve again (on the GPU machine every recipe failed with "unknown device 'cuda:0'")."""
    from genae.device import resolve_device

    assert resolve_device(str(resolve_device("cpu"))) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device(str(resolve_device("cuda"))) == torch.device("cuda", 0)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="--device cuda:2: torch sees 2 CUDA GPU"):
        resolve_device("cuda:2")
    for bad in ("cuda:x", "gpu", "cuda:"):
        with pytest.raises(ValueError, match=f"unknown device '{bad}'"):
            resolve_device(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="--device cuda:0 was asked for, but torch sees no CUDA GPU"):
        resolve_device("cuda:0")
