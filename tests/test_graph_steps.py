"""The engine's graph mode, checked where a GPU is not needed.

- Schedule: the graph mode's bookkeeping run without capture ('static': warm-up steps, one index
  buffer, a "graph" per set of active phases, recapture when a learning rate changes, the last
  smaller batch run eagerly) trains bit for bit as the eager mode does.
- Declarations: a model that declares its step `graph_safe` runs one training step on the meta
  device (no values: anything that needs one — .item(), nonzero, boolean-mask indexing, a branch
  on a tensor — raises) touching no host tensor and drawing nothing from the host's generator; a
  model that declares it unsafe fails that check, so the check can fail.
- Choice: graphs only for CUDA, one process and a graph-safe model; --no-graphs turns them off.
"""

from __future__ import annotations

import contextlib
import dataclasses
from unittest import mock

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from fakes import synthetic_mnist
from genae.models.aae import AAEConfig
from genae.models.judge import JudgeConfig
from genae.models.registry import MODELS, build
from genae.models.semisupervised import M2Config
from genae.models.sohn import SohnCVAEConfig, SohnConfig
from genae.models.vae import VAEConfig
from genae.rundir import read_metrics
from genae.train import engine
from genae.train.steps import StepRunner, step_mode

CPU = torch.device("cpu")

# (model, config): every family, the AAE's and M2's variants whose steps differ
CASES = {
    "vae": ("vae", VAEConfig(dim_z=4, n_hidden=32, binarize="dynamic", noise=0.1)),
    "cvae-conv": ("cvae", VAEConfig(dim_z=4, arch="conv")),
    "aae": ("aae", AAEConfig(n_hidden=32, dropout=0.2, input_noise=0.1, discriminator_noise=0.1)),
    "aae-gmm-labels": ("aae", AAEConfig(n_hidden=32, prior="gmm", label_prior=True, n_labels=40, labeled_batch=8)),
    "aae-supervised": ("aae", AAEConfig(n_hidden=32, mode="supervised")),
    "aae-semi": ("aae", AAEConfig(n_hidden=32, mode="semisupervised", n_labels=40, classify_every=2)),
    "aae-semi-all": ("aae", AAEConfig(n_hidden=32, mode="semisupervised")),   # every label known
    "sohn-baseline": ("sohn-baseline", SohnConfig(n_hidden=32)),
    "sohn-cvae": ("sohn-cvae", SohnCVAEConfig(n_hidden=32, dim_z=4)),
    "m2": ("m2", M2Config(n_labels=40, n_hidden=32, dim_z=4)),
    "judge": ("judge", JudgeConfig(epochs=1, shift=2)),
}


def _model(case: str, **changes):
    name, config = CASES[case]
    torch.manual_seed(0)
    return build(name, dataclasses.replace(config, **changes))


def _fit(case: str, tmp_path, mode: str, monkeypatch, **changes):
    """Train `case` with the engine forced into `mode`; its weights, metrics and runner."""
    runners = []

    class Recording(StepRunner):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "mode": mode})
            runners.append(self)

    monkeypatch.setattr(engine, "StepRunner", Recording)
    model = _model(case, **changes)
    data = model.prepare_data(synthetic_mnist(200))
    engine.fit(model, data, tmp_path / mode, device=CPU, quiet=True)
    return {k: v.clone() for k, v in model.state_dict().items()}, read_metrics(tmp_path / mode), runners[0]


@pytest.mark.parametrize("case, changes, graphs", [
    ("vae", dict(epochs=3, batch_size=24, lr_schedule="cosine"), 3),   # 200 = 8×24 + 8: a smaller last batch
    # a labeled draw; no loss splits the batch, so one "graph" for all
    ("aae-gmm-labels", dict(epochs=3, batch_size=32, n_labels=10), 1),   # three phases
    # a varying number of labeled images per batch: a "graph" per count
    ("aae-semi", dict(epochs=3, batch_size=25, n_labels=10), 2),         # four phases, one every 2nd step
    ("m2", dict(epochs=3, batch_size=20, n_labels=10, labeled_batch=8, labeled_every=2), 2),   # draws or not
    ("sohn-cvae", dict(epochs=2, batch_size=64, precision="bf16"), 1),
], ids=["vae-cosine", "aae-gmm-labels", "aae-semi", "m2-every-2", "sohn-cvae-bf16"])
def test_the_graph_schedule_trains_bit_for_bit_as_eager(case, changes, graphs, tmp_path, monkeypatch):
    eager_weights, eager_metrics, _ = _fit(case, tmp_path, "eager", monkeypatch, **changes)
    static_weights, static_metrics, runner = _fit(case, tmp_path, "static", monkeypatch, **changes)
    assert eager_weights.keys() == static_weights.keys()
    for key in eager_weights:
        assert torch.equal(eager_weights[key], static_weights[key]), key
    for eager, static in zip(eager_metrics, static_metrics, strict=True):
        assert eager["train"] == static["train"] and eager["valid"] == static["valid"]
    assert runner.captures >= graphs   # the schedule did reach its "graphs"


def test_a_changed_learning_rate_is_recaptured_and_the_last_batch_runs_eagerly(tmp_path, monkeypatch):
    calls = []
    real_body = StepRunner._body

    def body(self, idx, active, plan, weight=1.0):
        calls.append((len(idx), idx is self.index if self.mode != "eager" else False))
        return real_body(self, idx, active, plan, weight)

    monkeypatch.setattr(StepRunner, "_body", body)
    _, _, runner = _fit("vae", tmp_path, "static", monkeypatch, epochs=3, batch_size=24, lr_schedule="cosine")
    # cosine: a new rate each epoch, so one "capture" per epoch; constant rate: one in all
    assert runner.captures == 3
    per_epoch = [calls[i * 9:(i + 1) * 9] for i in range(3)]
    assert [size for size, _ in per_epoch[0]] == [24] * 8 + [8]
    assert [replayed for _, replayed in per_epoch[0]] == [False] * 3 + [True] * 5 + [False]   # warm-up, replays, last
    assert [replayed for _, replayed in per_epoch[2]] == [True] * 8 + [False]
    calls.clear()
    _, _, runner = _fit("vae", tmp_path / "constant", "static", monkeypatch, epochs=3, batch_size=24)
    assert runner.captures == 1


# ---------------------------------------------------------------------------------- declarations
class HostWork(TorchDispatchMode):
    """Records each op that reads a value on the host, copies a host tensor to the device, or reads
    or makes a host tensor of more than one element."""

    COPIES = (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default)

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [t for t in tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)]
        if func is torch.ops.aten._local_scalar_dense.default:
            self.found.append(f"{func} (a value read on the host)")
        elif func in self.COPIES and {t.device.type for t in tensors} > {"cpu"}:
            self.found.append(f"{func} (a copy between host and device)")
        elif any(t.device.type == "cpu" and t.numel() > 1 for t in tensors):
            self.found.append(f"{func} (a host tensor)")
        return out


def graph_problems(case: str, batch_size: int = 16) -> list[str]:
    """What would stop `case`'s training step from being captured: a second step (the first is the
    engine's warm-up) on the meta device, under HostWork and with the host generator watched. The
    step's plan (`plan_step`) is made on the host before, as the engine does, and is not watched."""
    model = _model(case)
    data = model.prepare_data(synthetic_mnist(200))
    phases = model.phases()
    model.to("meta").train()
    train_x, train_y = data.train.x.to("meta"), data.train.y.to("meta")
    host_idx = torch.arange(batch_size)
    idx = host_idx.to("meta")

    def step(watch=None):
        plan = model.plan_step(host_idx)
        host_rng = torch.get_rng_state()
        with watch or contextlib.nullcontext():
            batch = model.training_batch(train_x.index_select(0, idx), train_y.index_select(0, idx), plan)
            for phase in phases:
                loss, parts = phase.loss(batch)
                loss.backward()
                torch.stack(list(parts.values())).double()
        return torch.equal(host_rng, torch.get_rng_state())

    real_autocast = torch.autocast   # the meta device has no autocast of its own: the CPU's stands in

    def autocast(device_type, *args, **kwargs):
        return real_autocast("cpu" if device_type == "meta" else device_type, *args, **kwargs)

    try:
        with mock.patch.object(torch, "autocast", autocast):
            step()
            watch = HostWork()
            rng_untouched = step(watch)
    except (NotImplementedError, RuntimeError) as err:   # what meta tensors raise for a value
        return [f"{type(err).__name__}: {str(err).splitlines()[0]}"]
    problems = watch.found
    if not rng_untouched:
        problems.append("the step draws from the host's random generator")
    return problems


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_safe_declarations_hold(case):
    model = _model(case)
    problems = graph_problems(case)
    if model.graph_safe:
        assert problems == [], problems
    else:
        assert problems, f"{case} declares its step unsafe, but the check finds nothing"


def test_the_check_finds_a_host_value_and_a_host_draw(monkeypatch):
    from genae.models.vae import VAE

    real = VAE.loss
    monkeypatch.setattr(VAE, "loss", lambda self, batch: real(self, batch[:int(batch.y.sum()) % 8 + 1]))
    assert any("RuntimeError" in p or "NotImplementedError" in p for p in graph_problems("vae"))
    monkeypatch.setattr(VAE, "loss", lambda self, batch: real(self, batch[:int(torch.randint(1, 8, ()))]))
    assert "the step draws from the host's random generator" in graph_problems("vae")
    # a one-element host tensor copied to the device (CUDA would wait for that copy)
    monkeypatch.setattr(VAE, "loss", lambda self, batch: real(self, dataclasses.replace(
        batch, x=batch.x * torch.full((1,), 0.5).to(batch.x.device))))
    assert any("a copy between host and device" in p for p in graph_problems("vae"))


def test_the_check_finds_a_step_that_ignores_its_plan(monkeypatch):
    # without the planned count of labeled images, M2 and the semi-supervised AAE would find them by value
    from genae.models import aae, base, semisupervised

    def unplanned(batch):
        return base.labeled_positions(dataclasses.replace(batch, n_labeled=None))

    monkeypatch.setattr(semisupervised, "labeled_positions", unplanned)
    monkeypatch.setattr(aae, "labeled_positions", unplanned)
    assert graph_problems("m2") and graph_problems("aae-semi")
    assert graph_problems("aae-gmm-labels") == []   # its losses never split the batch


def test_every_registered_model_is_covered():
    assert {name for name, _ in CASES.values()} == set(MODELS)


# ---------------------------------------------------------------------------------- choice
def test_graphs_only_on_cuda_for_one_process_and_a_safe_step():
    from genae.models.base import Model

    safe, unsafe = _model("vae"), Model(VAEConfig())   # the base class declares nothing safe
    cuda = torch.device("cuda", 0)
    assert step_mode(cuda, safe, graphs=True, world=1) == "graph"
    assert step_mode(cuda, safe, graphs=False, world=1) == "eager"     # --no-graphs
    assert step_mode(cuda, safe, graphs=True, world=2) == "eager"      # data-parallel
    assert step_mode(cuda, unsafe, graphs=True, world=1) == "eager"
    assert step_mode(CPU, safe, graphs=True, world=1) == "eager"


def test_no_graphs_is_an_option_of_training_commands(capsys):
    from genae.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "vae", "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert "--no-graphs" in help_text and "CUDA graph" in help_text
