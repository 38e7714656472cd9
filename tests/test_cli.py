"""The `genae` command end to end on a small MNIST-shaped npz: train, kill, resume, eval, sample,
plot, torchrun with 2 processes, and the error messages."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import write_npz
from safetensors.torch import load_file

TESTS = Path(__file__).parent
SMALL = ["--limit", "1000", "--n-hidden", "64", "--dim-z", "2", "--quiet"]


def genae(*args, check=True, **kw):
    result = subprocess.run([sys.executable, "-m", "genae", *map(str, args)], capture_output=True, text=True,
                            **kw)
    if check and result.returncode != 0:
        raise AssertionError(f"genae {' '.join(map(str, args))} failed:\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("mnist")
    write_npz(d / "mnist.npz")
    return d


@pytest.fixture(scope="module")
def cvae_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cvae"
    genae("train", "cvae", "--data-dir", data_dir, "--epochs", "2", *SMALL, "--out", out)
    return out


def test_train_writes_a_run_directory(cvae_run, data_dir):
    config = json.loads((cvae_run / "config.json").read_text())
    assert config["model"] == "cvae" and config["dim_z"] == 2 and config["n_hidden"] == 64
    assert config["data"] == {"data_dir": str(data_dir), "limit": 1000}
    lines = (cvae_run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["valid"]["loss"] < json.loads(lines[0])["valid"]["loss"]
    assert (cvae_run / "model.safetensors").is_file()


def test_eval_writes_conditional_nll_with_k(cvae_run):
    genae("eval", cvae_run, "--iw-samples", "20", "--limit", "200", "--device", "cpu")
    result = json.loads((cvae_run / "eval.json").read_text())
    assert result["iw_samples"] == 20 and result["n_images"] == 200
    assert "K=20" in result["nll_meaning"]
    assert 0 < result["conditional_nll"] <= -result["elbo"] + 1e-3


def test_sample_png_and_npy(cvae_run, tmp_path):
    genae("sample", cvae_run, "-n", "7", "--label", "3", "--out", tmp_path / "s.npy")
    arr = np.load(tmp_path / "s.npy")
    assert arr.shape == (7, 28, 28) and arr.min() >= 0 and arr.max() <= 1
    genae("sample", cvae_run, "-n", "12", "--out", tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_reconstruction(cvae_run):
    result = genae("plot", cvae_run, "reconstruction")
    path = Path(result.stdout.strip())
    assert path == cvae_run / "figures" / "reconstruction.png" and path.stat().st_size > 5000


@pytest.mark.parametrize("args, message", [
    (["sample", "{run}", "-n", "3", "--label", "12", "--out", "x.png"], "labels are 0..9"),
    (["sample", "{run}", "-n", "3", "--out", "x.jpg"], "must end in .png or .npy"),
    (["eval", "{missing}"], "not a run directory"),
    (["train", "vae", "--data-dir", "{missing}", "--quiet"], "does not exist"),
    (["train", "vae", "--device", "cuda", "--quiet"], "no CUDA"),
    (["reproduce", "--quick", "--full", "--out", "{missing}"], "--quick and --full: choose one"),
    (["reproduce", "--only", "betta", "--out", "{missing}"], "--only betta: no such recipe"),
])
def test_errors_name_the_bad_input(cvae_run, tmp_path, args, message):
    if message == "no CUDA" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    args = [a.format(run=cvae_run, missing=tmp_path / "nowhere") for a in args]
    result = genae(*args, check=False, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_killed_run_resumes_to_the_same_weights(data_dir, tmp_path):
    args = ["train", "vae", "--data-dir", data_dir, "--epochs", "8", "--limit", "6000", "--n-hidden", "128",
            "--quiet", "--binarize", "dynamic"]
    # One thread: multi-threaded MKL kernels are not promised bitwise repeatable on every CPU
    # (Intel's CNR notes); this test is about what resume restores, not about BLAS.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    genae(*args, "--out", tmp_path / "straight", env=env)
    proc = subprocess.Popen([sys.executable, "-m", "genae", *map(str, args), "--out", str(tmp_path / "killed")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    metrics = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 2):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    done = json.loads(load_meta(tmp_path / "killed" / "checkpoint.safetensors")["epoch"])
    assert 1 <= done < 8, "the run must be killed part-way"
    genae("train", "vae", "--resume", tmp_path / "killed", "--quiet", env=env)
    a = load_file(str(tmp_path / "straight" / "checkpoint.safetensors"))
    b = load_file(str(tmp_path / "killed" / "checkpoint.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert len((tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()) == 8


def load_meta(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


def torchrun(nproc, *args, **kw):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, **kw)
    assert result.returncode == 0, (f"torchrun exited {result.returncode}\nstdout:\n{result.stdout[-2000:]}"
                                    f"\nstderr:\n{result.stderr[-4000:]}")
    return result


def test_two_processes_give_the_single_process_result_per_global_batch(tmp_path):
    subprocess.run([sys.executable, str(TESTS / "ddp_worker.py"), str(tmp_path / "one")], check=True)
    torchrun(2, TESTS / "ddp_worker.py", tmp_path / "two")
    a = load_file(str(tmp_path / "one" / "checkpoint.safetensors"))
    b = load_file(str(tmp_path / "two" / "checkpoint.safetensors"))
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5, rtol=1e-4), key
    one = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert one[-1]["valid"]["loss"] == pytest.approx(two[-1]["valid"]["loss"], rel=1e-4)


def test_vae_trains_under_torchrun_with_two_cpu_processes(data_dir, tmp_path):
    torchrun(2, "-m", "genae", "train", "vae", "--data-dir", data_dir, "--epochs", "2", *SMALL,
             "--device", "cpu", "--out", tmp_path / "ddp")
    lines = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and lines[1]["valid"]["loss"] < lines[0]["valid"]["loss"]
