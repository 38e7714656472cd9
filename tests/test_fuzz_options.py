"""Property: whatever values a user types for `genae train`'s options, genae either trains or stops
with exit code 2 and one line naming an option — never a traceback, never a half-made run (a run
that trained and then diverged keeps its files and says so).
Hypothesis draws the values, edge cases included (0, negatives, NaN, infinities, huge numbers)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from conftest import write_npz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genae.cli import main

# Floats from integers and a list of edge cases: genae flushes subnormal floats to zero for the whole
# process (genae.device.flush_denormals), which Hypothesis's own float machinery cannot work under.
floats = st.one_of(st.integers(min_value=-400, max_value=400).map(lambda k: k / 100),
                   st.integers(min_value=-40, max_value=40).map(lambda k: 10.0 ** k),
                   st.sampled_from([0.0, -0.0, float("nan"), float("inf"), float("-inf"), 1e-12, 1e38, -1.0]))
small_ints = st.integers(min_value=-3, max_value=40)
VALUES = {   # option → strategy of the values typed
    "--beta": floats,
    "--lr": floats,
    "--noise": floats,
    "--epochs": st.integers(min_value=-2, max_value=2),
    "--batch-size": st.one_of(small_ints, st.sampled_from([10**5, 10**9])),
    "--dim-z": small_ints,
    "--n-hidden": st.one_of(small_ints, st.sampled_from([10**6])),
    "--n-layers": st.integers(min_value=-1, max_value=3),
    "--limit": st.one_of(st.integers(min_value=-3, max_value=120), st.sampled_from([10**9])),
    "--seed": st.one_of(st.integers(min_value=-5, max_value=5), st.sampled_from([2**31, 2**63])),
    "--lr-decay-epochs": st.integers(min_value=-1, max_value=3),
    "--patience": st.integers(min_value=-2, max_value=2),
    "--sigma": st.sampled_from(["exp", "softplus", "cube"]),
    "--binarize": st.sampled_from(["none", "dynamic", "half"]),
    "--arch": st.sampled_from(["mlp", "fc3", "cnn2", "cnn3", "conv", "transformer"]),
}


EXAMPLES = itertools.count()


@pytest.fixture(scope="module")
def npz(tmp_path_factory) -> Path:
    return write_npz(tmp_path_factory.mktemp("fuzz-data") / "mnist.npz")


@given(choice=st.fixed_dictionaries({}, optional={k: v for k, v in VALUES.items()}), model=st.sampled_from(["vae", "cvae"]))
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_option_values_train_or_fail_with_one_named_line(choice, model, npz, tmp_path, capsys):
    out = tmp_path / f"run-{next(EXAMPLES)}"   # one new directory per example
    args = ["train", model, "--data-dir", str(npz), "--quiet", "--out", str(out)]
    choice.setdefault("--limit", 64)
    choice.setdefault("--epochs", 1)
    if choice.get("--n-hidden", 0) == 10**6 or choice.get("--limit") == 10**9:
        choice["--epochs"] = 1
    for option, value in choice.items():
        args += [option, repr(value) if isinstance(value, float) and not math.isfinite(value) else str(value)]
    small = {"--limit": 64, "--n-hidden": 32}   # keep each training to a second: a valid run is cut small
    for option, cap in small.items():
        value = choice.get(option)
        if isinstance(value, int) and 1 <= value and value > cap and value != 10**6 and value != 10**9:
            args[args.index(option) + 1] = str(cap)
    try:
        main(args)
        code = 0
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 0:
        assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    else:
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, err
        assert len(lines) == 1 and lines[0].startswith("genae: ") and "--" in lines[0], err
        diverged = "non-finite" in err or "validation loss is" in err   # a run that started, then diverged
        assert diverged or not out.exists() or not any(out.iterdir()), "a refused run left files behind"
        if diverged:
            assert "checkpoint" in err or "no epoch finished" in err
