"""Training the reference judge (`genae judge train`): the judge model (genae.models.judge) trained
once into the cache, its test accuracy measured and recorded with the sha256 of its weights.

    record = train_judge()    # → $GENAE_DATA/judge/ (model.safetensors, judge.json)
"""

from __future__ import annotations

from pathlib import Path

from genae.data import DataSource
from genae.device import resolve_device
from genae.errors import UserError
from genae.evaluate.judge import JUDGE_FILE, accuracy, judge_dir, sha256_of
from genae.files import write_json
from genae.models.judge import JudgeConfig
from genae.rundir import CONFIG_FILE, MODEL_FILE, load_model, read_run_config
from genae.train.trainer import train_model


def train_judge(config: JudgeConfig | None = None, out: Path | None = None, *, data: DataSource | None = None,
                device: str = "auto", quiet: bool = False, graphs: bool = True) -> dict:
    """Train the judge into `out` (default: the cache), measure its test accuracy, record both."""
    out = Path(out) if out is not None else judge_dir()
    data = data if data is not None else DataSource()
    if (out / CONFIG_FILE).is_file() and read_run_config(out)[0] != "judge":
        raise UserError(f"{out} holds another model's run; choose another --out for the judge")
    config = config or JudgeConfig()
    dev = str(resolve_device(device))
    run, history = train_model("judge", config, out, data=data, force=True, device=dev, quiet=quiet, graphs=graphs)
    judge = load_model(run, dev)
    test = data.load().test
    record = {"sha256": sha256_of(run / MODEL_FILE), "test_accuracy": accuracy(judge, test.x.to(dev), test.y.to(dev)),
              "test_images": len(test), "epochs": len(history), "data_dir": data.data_dir}
    write_json(run / JUDGE_FILE, record)
    return record
