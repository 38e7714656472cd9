"""Parameter tables: how big each architecture is and where its weights sit.

The architectures source chose its CNNs by comparing the weights of the fully connected layer with those of the
convolutions ("20 × 512 = 10240 for FC and 4 × 16 × 32 = 2048 for the biggest CNN"); these tables
give those counts for genae's architectures (`genae train vae --arch cnn3 --dry-run`).
"""

from __future__ import annotations

from torch import nn

from genae.nets.builder import ARCHITECTURES, build_networks, count_parameters


def layer_rows(module: nn.Module, prefix: str) -> list[tuple[str, str, int]]:
    """(name, kind, weights + biases) of each layer that has parameters."""
    rows = []
    for name, layer in module.named_modules():
        n = sum(p.numel() for p in layer.parameters(recurse=False))
        if n:
            rows.append((f"{prefix}.{name}", type(layer).__name__, n))
    return rows


def describe(layer_kind: str, module: nn.Module) -> str:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return f"{layer_kind} {module.in_channels}→{module.out_channels} {module.kernel_size[0]}×{module.kernel_size[1]} s{module.stride[0]}"
    if isinstance(module, nn.Linear):
        return f"Linear {module.in_features}→{module.out_features}"
    return layer_kind


def architecture_table(*, dim_z: int, n_hidden: int, n_layers: int, cond_dim: int,
                       mark: str | None = None) -> str:
    """One line per architecture: encoder, decoder and total parameters, and the share in FC layers."""
    lines = [f"{'arch':<7}{'encoder':>10}{'decoder':>10}{'total':>11}{'in FC layers':>14}  largest layer",
             "-" * 80]
    for arch in ARCHITECTURES:
        layers = 2 if arch == "fc3" else n_layers
        enc, dec = build_networks(arch, dim_z=dim_z, n_hidden=n_hidden, n_layers=layers, cond_dim=cond_dim)
        total = count_parameters(enc) + count_parameters(dec)
        fc = sum(count_parameters(m) for net in (enc, dec) for m in net.modules() if isinstance(m, nn.Linear))
        modules = {f"{side}.{name}": m for side, net in (("enc", enc), ("dec", dec))
                   for name, m in net.named_modules()}
        name, kind, n = max(layer_rows(enc, "enc") + layer_rows(dec, "dec"), key=lambda r: r[2])
        tag = " *" if arch == mark else ""
        lines.append(f"{arch + tag:<7}{count_parameters(enc):>10,}{count_parameters(dec):>10,}{total:>11,}"
                     f"{fc / total:>13.0%}  {describe(kind, modules[name])}: {n:,}")
    return "\n".join(lines)


def layer_table(arch: str, *, dim_z: int, n_hidden: int, n_layers: int, cond_dim: int) -> str:
    """Every layer of one architecture with its parameter count."""
    enc, dec = build_networks(arch, dim_z=dim_z, n_hidden=n_hidden, n_layers=n_layers, cond_dim=cond_dim)
    lines = [f"{'layer':<22}{'shape':<34}{'parameters':>12}", "-" * 68]
    for side, net in (("enc", enc), ("dec", dec)):
        modules = dict(net.named_modules())
        for name, kind, n in layer_rows(net, side):
            lines.append(f"{name:<22}{describe(kind, modules[name.split('.', 1)[1]]):<34}{n:>12,}")
    total = count_parameters(enc) + count_parameters(dec)
    lines.append(f"{'total':<56}{total:>12,}")
    return "\n".join(lines)
