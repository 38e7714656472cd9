"""ONNX files of the networks a trained run needs for inference, and a manifest of what each expects
(`genae export RUN --out DIR`). Each network wraps the model's declared interface
(genae.models.base), so what a capability means in Python is what the ONNX file computes:

  encoder     x [, y]  → mean, std           q(z | x[, y]): its mean and standard deviation
  decoder     z [, y]  → pixels              the mean of p(x | z[, y])
  classifier  x        → probs               q(y | x) (M2, the semi-supervised AAE, the judge)
  completer   x, eps   → pixels              Sohn's CVAE: z = μ_p(x) + σ_p(x)·eps, the given pixels kept
              x        → pixels              Sohn's baseline: its one prediction, the given pixels kept
  baseline    x        → pixels              the baseline inside Sohn's CVAE (a part it declares)

x: images B×1×28×28, float32 in [0, 1]; y: labels as one-hot rows B×10, float32 (their argmax is the
label); z, eps: B×dim_z, float32. The batch dimension is dynamic.
Every file is checked with onnxruntime against PyTorch on random and on real test inputs before the
manifest is written; the largest absolute difference is recorded there.

    manifest = export_run("runs/cvae", "exports/cvae")
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genae.errors import UserError
from genae.files import replacing, write_json
from genae.models.base import N_CLASSES, Model
from genae.rundir import config_record, load_model, read_record

MANIFEST = "manifest.json"
OPSET = 17
TOLERANCE = 1e-4


class Encoder(nn.Module):
    def __init__(self, model: Model, with_label: bool):
        super().__init__()
        self.model, self.with_label = model, with_label

    def forward(self, x, y=None):
        q = self.model.encode(x, y.argmax(1) if self.with_label else None)
        return q.mean, q.stddev


class Decoder(nn.Module):
    def __init__(self, model: Model, with_label: bool):
        super().__init__()
        self.model, self.with_label = model, with_label

    def forward(self, z, y=None):
        return self.model.decode(z, y.argmax(1) if self.with_label else None).mean


class Classifier(nn.Module):
    def __init__(self, model: Model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.classify_logits(x).softmax(1)


class Completer(nn.Module):
    """complete_with(x, eps): the noise an input, so the page draws it and the network does the rest."""

    def __init__(self, model: Model):
        super().__init__()
        self.model = model

    def forward(self, x, eps=None):
        return self.model.complete_with(x, eps)


IMAGES = ("B", 1, 28, 28)


def networks(model: Model) -> dict[str, tuple[nn.Module, dict[str, tuple], list[str]]]:
    """name → (module, {input: shape, B the batch}, output names): one network per capability the
    model declares, and a completer for each of its parts that completes."""
    caps, dim = model.capabilities, model.latent_dim
    found: dict = {}
    if caps.encodes:
        inputs = {"x": IMAGES, **({"y": ("B", N_CLASSES)} if caps.encodes_label else {})}
        found["encoder"] = (Encoder(model, caps.encodes_label), inputs, ["mean", "std"])
    if caps.decodes:
        inputs = {"z": ("B", dim), **({"y": ("B", N_CLASSES)} if caps.decodes_label else {})}
        found["decoder"] = (Decoder(model, caps.decodes_label), inputs, ["pixels"])
    if caps.classifies:
        found["classifier"] = (Classifier(model), {"x": IMAGES}, ["probs"])
    for name, part in {"completer": model, **model.parts()}.items():
        if part.capabilities.completes:
            inputs = {"x": IMAGES, **({"eps": ("B", part.latent_dim)} if part.latent_dim else {})}
            found[name] = (Completer(part), inputs, ["pixels"])
    return found


def example_inputs(inputs: dict[str, tuple], batch: int, generator: torch.Generator,
                   images: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    out = {}
    for name, shape in inputs.items():
        shape = (batch, *shape[1:])
        if name == "x":
            out[name] = images[:batch] if images is not None else torch.rand(shape, generator=generator)
        elif name == "y":
            picked = labels[:batch] if labels is not None else torch.randint(N_CLASSES, (batch,), generator=generator)
            out[name] = nn.functional.one_hot(picked, N_CLASSES).float()
        else:
            out[name] = torch.randn(shape, generator=generator)
    return out


def export_run(run_dir: str | Path, out: str | Path, *, check_images: torch.Tensor | None = None,
               check_labels: torch.Tensor | None = None) -> dict:
    """Export every network of the run into `out` (ONNX files and manifest.json) and return the manifest."""
    import onnxruntime as ort

    run_dir, out = Path(run_dir), Path(out)
    name, config, data = read_record(run_dir)
    model = load_model(run_dir, "cpu")
    found = networks(model)
    if not found:
        raise UserError(f"{run_dir}: a {name} offers no network to run outside genae (see its capabilities)")
    if check_images is None:
        test = data.load().test
        check_images, check_labels = test.x[:16], test.y[:16]
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    manifest_networks = {}
    for key, (module, inputs, outputs) in found.items():
        module.eval()
        example = example_inputs(inputs, 4, generator)
        path = out / f"{key}.onnx"
        dynamic = {n: {0: "batch"} for n in [*inputs, *outputs]}
        try:
            with warnings.catch_warnings(), replacing(path) as tmp:
                warnings.simplefilter("ignore")
                torch.onnx.export(module, tuple(example.values()), str(tmp), input_names=list(inputs),
                                  output_names=outputs, dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
        except Exception as err:   # noqa: BLE001 - any exporter failure is reported in one line
            raise UserError(f"{run_dir}: the {key} of a {name} cannot be exported to ONNX "
                            f"({type(err).__name__}: {str(err).splitlines()[0]})") from err
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        kept = [i.name for i in session.get_inputs()]
        worst = 0.0
        for batch in (example_inputs(inputs, 7, generator),
                      example_inputs(inputs, len(check_images), generator, check_images, check_labels)):
            with torch.no_grad():
                expected = module(*batch.values())
            expected = expected if isinstance(expected, tuple) else (expected,)
            got = session.run(outputs, {n: batch[n].numpy() for n in kept})
            worst = max(worst, *(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected)))
        if worst > TOLERANCE:
            raise UserError(f"{path}: onnxruntime differs from PyTorch by {worst:.2e} (more than {TOLERANCE:g}); "
                            "not exported")
        manifest_networks[key] = {"file": path.name, "inputs": {n: list(inputs[n]) for n in kept},
                                  "outputs": outputs, "max_abs_difference": worst}
    manifest = {"model": name, "capabilities": dataclasses.asdict(model.capabilities), "dim_z": model.latent_dim,
                "pixel_range": [0, 1], "label_encoding": f"one-hot rows of {N_CLASSES}, float32", "opset": OPSET,
                "networks": manifest_networks, **model.describe(), "config": json.loads(json.dumps(config_record(name, config, data)))}
    write_json(out / MANIFEST, manifest)
    return manifest
