"""Training speed of the engine: seconds per epoch and images per second, median of several epochs.

    .venv/bin/python benchmarks/train_speed.py            # all rows, 5 timed epochs each
    .venv/bin/python benchmarks/train_speed.py --epochs 3 --models pt-examples
    python benchmarks/train_speed.py --device cuda --models m2 aae   # on a GPU (engine rows only)

On CUDA each engine row runs eagerly and replayed from CUDA graphs (--graphs both|on|off; the
`steps` column says which, and 'eager (unsafe)' where the model's step cannot be a graph; a row
whose capture failed says so, and the table ends there with exit status 1).

Rows: the seed's VAE and CVAE (784-500-500-20 MLPs), and pytorch/examples' VAE (784-400-20, one
hidden layer, built by the same builder) — the peers' yardstick — at batch 128 over 60,000 images
(MNIST train + validation); Sohn et al.'s baseline and CVAE (1 quadrant given) over the 50,000
training images (the Pyro tutorial's yardstick); the `cvae-<arch>` rows are the architectures of
seeds 001/002 over the 50,000 training images; `m2` is Kingma et al.'s M2 (784-500-50, 100 labels,
a labeled draw of 100 images joins each batch of 128, all ten labels summed for each unlabeled
image) over the 50,000 training images (the Pyro ss_vae_M2 yardstick), `m2-l2` the same with two hidden
layers of 500 in each network (--n-layers 2, the README's best M2), `m2-cosine` the same as `m2`
with --lr-schedule cosine (a new rate each epoch: graphed, every plan is captured again each epoch); `aae` is seed 003's
adversarial autoencoder (2×1000 ReLU encoder, decoder and discriminator, z 2; three phases per
batch: reconstruction, discriminator, generator) and `aae-semi` its semi-supervised form (z 10,
100 labels, a labeled draw of 32 joins each batch, a fourth phase: classification); `-bf16` rows use --precision bf16. The first epoch is a warm-up and not counted. `plain-loop` is the
textbook loop over a torch DataLoader for the same 784-400-20 VAE, for comparison; `bare-loop` the
same model with in-memory batches, fused Adam and a hand-written loss (no engine): eager PyTorch's floor.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from genae.data import load_mnist
from genae.data.mnist import MNIST, Split
from genae.device import resolve_device, slow_bf16_warning
from genae.models.registry import MODELS
from genae.models.vae import VAEConfig
from genae.rundir import build_model as build
from genae.rundir import read_metrics
from genae.runtime import configure_process
from genae.train.engine import fit
from genae.train.steps import CaptureFailed, step_mode

ROWS = {  # row → (model, config options, images per epoch: 60k = the yardstick, 50k = the training split)
    "vae": ("vae", dict(dim_z=20, n_hidden=500, n_layers=2), 60_000),
    "cvae": ("cvae", dict(dim_z=20, n_hidden=500, n_layers=2), 60_000),
    "pt-examples": ("vae", dict(dim_z=20, n_hidden=400, n_layers=1), 60_000),
    "vae-bf16": ("vae", dict(dim_z=20, n_hidden=500, n_layers=2, precision="bf16"), 60_000),
    "pt-examples-bf16": ("vae", dict(dim_z=20, n_hidden=400, n_layers=1, precision="bf16"), 60_000),
    "cvae-fc3": ("cvae", dict(arch="fc3", dim_z=20), 50_000),
    "cvae-cnn2": ("cvae", dict(arch="cnn2", dim_z=20), 50_000),
    "cvae-cnn3": ("cvae", dict(arch="cnn3", dim_z=20), 50_000),
    "cvae-conv": ("cvae", dict(arch="conv", dim_z=20), 50_000),
    "m2": ("m2", dict(n_labels=100), 50_000),
    "m2-bf16": ("m2", dict(n_labels=100, precision="bf16"), 50_000),
    "m2-cosine": ("m2", dict(n_labels=100, lr_schedule="cosine"), 50_000),
    "m2-l2": ("m2", dict(n_labels=100, n_layers=2), 50_000),
    "m2-l2-bf16": ("m2", dict(n_labels=100, n_layers=2, precision="bf16"), 50_000),
    "aae": ("aae", dict(prior="gaussian"), 50_000),
    "aae-bf16": ("aae", dict(prior="gaussian", precision="bf16"), 50_000),
    "aae-semi": ("aae", dict(mode="semisupervised", n_labels=100, dim_z=10), 50_000),
    "aae-semi-bf16": ("aae", dict(mode="semisupervised", n_labels=100, dim_z=10, precision="bf16"), 50_000),
    "sohn-baseline": ("sohn-baseline", dict(quadrants=1), 50_000),
    "sohn-cvae": ("sohn-cvae", dict(quadrants=1), 50_000),
    "sohn-cvae-bf16": ("sohn-cvae", dict(quadrants=1, precision="bf16"), 50_000),
}


def sixty_thousand(data: MNIST) -> MNIST:
    train = Split(torch.cat([data.train.x, data.valid.x]), torch.cat([data.train.y, data.valid.y]))
    return MNIST(train, data.test.head(1000), data.test.head(1000), data.source)


def engine_epochs(name: str, kw: dict, data: MNIST, epochs: int, device: torch.device, *,
                  graphs: bool = False) -> list[float]:
    torch.manual_seed(0)
    model = build(name, config_for(name, epochs=epochs + 1, batch_size=128, patience=0, **kw))
    data = model.prepare_data(data)  # M2: the labeled subset
    with tempfile.TemporaryDirectory() as tmp:
        fit(model.to(device), data, Path(tmp), device=device, quiet=True, graphs=graphs)
        return [m["train_seconds"] for m in read_metrics(Path(tmp))[1:]]


def steps_column(name: str, kw: dict, device: torch.device, graphs: bool) -> str:
    """How the engine runs this row's steps (genae.train.steps.step_mode)."""
    mode = step_mode(device, build(name, config_for(name, **kw)), graphs=graphs, world=1)
    return mode if mode == "graph" or not graphs else "eager (unsafe)"


def step_flops(name: str, kw: dict, data: MNIST) -> float:
    """Floating-point operations of one training step (every phase, forward and backward) on a
    batch of 128, counted by torch's FlopCounterMode (matrix products and convolutions only)."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = build(name, config_for(name, **kw))
    data = model.prepare_data(data)
    model.train()
    batch = model.prepare(data.train.x[:128], data.train.y[:128])
    with FlopCounterMode(display=False) as counter:
        for phase in model.phases():
            loss, _ = phase.loss(batch)
            loss.backward()
    return counter.get_total_flops()


def config_for(name: str, **kw):
    return MODELS[name].config(**kw)


def bare_loop_epochs(data: MNIST, epochs: int) -> list[float]:
    """The floor of eager PyTorch here: in-memory batches, F.linear layers, fused Adam, the loss
    written out by hand (no distributions, no engine) for the same 784-400-20 VAE."""
    torch.manual_seed(0)
    model = build("vae", VAEConfig(dim_z=20, n_hidden=400, n_layers=1))
    enc, dec = model.encoder.body, model.decoder.body
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    x_all, n = data.train.x.flatten(1), len(data.train)
    times = []
    for _ in range(epochs + 1):
        order = torch.randperm(n)
        start = time.perf_counter()
        for i in range(0, n - 127, 128):
            x = x_all[order[i:i + 128]]
            opt.zero_grad(set_to_none=True)
            mu, logvar = enc(x).chunk(2, 1)
            std = torch.exp(0.5 * logvar)
            logits = dec(mu + std * torch.randn_like(std))
            rec = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum")
            kl = 0.5 * (mu.pow(2) + std.pow(2) - logvar - 1).sum()
            ((rec + kl) / len(x)).backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times[1:]


def plain_loop_epochs(data: MNIST, epochs: int) -> list[float]:
    """The textbook loop: DataLoader, per-tensor Adam, no denormal flushing."""
    torch.set_flush_denormal(False)
    torch.manual_seed(0)
    model = build("vae", VAEConfig(dim_z=20, n_hidden=400, n_layers=1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.train.x, data.train.y),
                                         batch_size=128, shuffle=True)
    times = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        for x, y in loader:
            batch = model.prepare(x, y)
            opt.zero_grad()
            loss, _ = model.loss(batch)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times[1:]


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per row (after one warm-up)")
    parser.add_argument("--models", nargs="+", default=[*ROWS, "bare-loop", "plain-loop"],
                        choices=[*ROWS, "bare-loop", "plain-loop"],
                        help="rows to run (default: all)")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"],
                        help="where the engine rows train (bare-loop and plain-loop: CPU only)")
    parser.add_argument("--graphs", default="both", choices=["both", "on", "off"],
                        help="on CUDA: each engine row eager (off), replayed from CUDA graphs (on), or both")
    args = parser.parse_args()
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    loops = [row for row in args.models if row in ("plain-loop", "bare-loop")]
    if device.type != "cpu" and loops:
        parser.error(f"{', '.join(loops)}: CPU only; leave them out with --device {args.device}")
    configure_process()
    mnist = load_mnist()
    datasets = {60_000: sixty_thousand(mnist), 50_000: mnist}
    where = (f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}), host CPU {cpu_name()}"
             if device.type == "cuda" else
             f"{cpu_name()} ({torch.backends.cpu.get_cpu_capability()}; bf16 emulated (slow): "
             f"{'yes' if slow_bf16_warning(device) else 'no'})")
    print(f"machine: {where}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"batch 128, median of {args.epochs} epochs after a warm-up\n")
    print(f"| {'model':16s} | {'steps':14s} | {'parameters':>10s} | {'images':>6s} | {'s / epoch (median)':>18s} | "
          f"{'min':>5s} | {'max':>5s} | {'images / s':>10s} | {'GFLOP / epoch':>13s} | {'GFLOP/s':>7s} |")
    print(f"|{'-' * 18}|{'-' * 16}|{'-' * 12}|{'-' * 8}|{'-' * 20}|{'-' * 7}|{'-' * 7}|{'-' * 12}|{'-' * 15}|{'-' * 9}|")
    graph_modes = {"both": [False, True], "on": [True], "off": [False]}[args.graphs] if device.type == "cuda" else [False]
    for row in args.models:
        if row in ("plain-loop", "bare-loop"):
            n = 60_000
            kw = dict(dim_z=20, n_hidden=400, n_layers=1)
            params = sum(p.numel() for p in build("vae", VAEConfig(**kw)).parameters())
            flops = step_flops("vae", kw, datasets[n]) * -(-n // 128)
            times = (plain_loop_epochs if row == "plain-loop" else bare_loop_epochs)(datasets[n], args.epochs)
            print_row(row, "eager", params, n, times, flops)
            continue
        name, kw, n = ROWS[row]
        params = sum(p.numel() for p in build(name, config_for(name, **kw)).parameters() if p.requires_grad)
        flops = step_flops(name, kw, datasets[n]) * -(-n // 128)
        for graphs in graph_modes:
            try:
                times = engine_epochs(name, kw, datasets[n], args.epochs, device, graphs=graphs)
            except CaptureFailed as err:   # CUDA's state is not to be trusted after it: the table ends here
                print(f"| {row:16s} | capture failed: {err} |", flush=True)
                raise SystemExit(1) from None
            print_row(row, steps_column(name, kw, device, graphs), params, n, times, flops)


def print_row(row: str, steps: str, params: int, n: int, times: list[float], flops: float) -> None:
    med = statistics.median(times)
    print(f"| {row:16s} | {steps:14s} | {params:>10,d} | {n:>6,d} | {med:>18.3f} | {min(times):>5.2f} | "
          f"{max(times):>5.2f} | {n / med:>10,.0f} | {flops / 1e9:>13,.0f} | {flops / 1e9 / med:>7,.0f} |", flush=True)


if __name__ == "__main__":
    main()
