"""The reference judge: its augmentation, that it learns, and the checksum that guards its cache."""

import pytest
import torch
from fakes import synthetic_mnist, write_npz

from genae.data import DataSource
from genae.errors import UserError
from genae.evaluate.judge import JUDGE_FILE, load_judge
from genae.experiments.judge import train_judge
from genae.models.judge import Judge, JudgeConfig, random_shift
from genae.rundir import MODEL_FILE
from genae.train.engine import fit


def test_random_shift_moves_each_image_by_at_most_k_pixels_and_keeps_its_content():
    x = torch.zeros(64, 1, 28, 28)
    x[:, 0, 12:15, 12:15] = 1
    shifted = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(shifted.sum((1, 2, 3)), x.sum((1, 2, 3)))
    where = [(img[0] == 1).nonzero().min(0).values.tolist() for img in shifted]
    assert all(10 <= r <= 14 and 10 <= c <= 14 for r, c in where)
    assert len({tuple(w) for w in where}) > 5  # per-image shifts, not one for the batch
    assert torch.equal(random_shift(x, 0), x)


def test_the_judge_learns_and_only_shifts_while_training(tmp_path):
    torch.manual_seed(0)
    judge = Judge(JudgeConfig(epochs=2, batch_size=32, lr_schedule="constant"))
    history = fit(judge, synthetic_mnist(512), tmp_path, device=torch.device("cpu"), quiet=True)
    assert history[-1]["valid"]["error"] < 0.2
    judge.eval()
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(judge.prepare(x, torch.zeros(4, dtype=torch.long)).x, x)


def test_cached_judge_is_checked_against_its_sha256(tmp_path):
    data = tmp_path / "mnist"
    data.mkdir()
    write_npz(data / "mnist.npz")
    with pytest.raises(UserError, match="genae judge train"):
        load_judge(tmp_path / "judge")
    record = train_judge(JudgeConfig(epochs=1), tmp_path / "judge", data=DataSource(data_dir=str(data), limit=300),
                         device="cpu", quiet=True)
    assert 0 <= record["test_accuracy"] <= 1 and record["test_images"] == 300
    judge = load_judge(tmp_path / "judge")
    assert judge.record == record and judge.predict(torch.rand(5, 1, 28, 28)).shape == (5,)
    weights = tmp_path / "judge" / MODEL_FILE
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ValueError, match="sha256"):
        load_judge(tmp_path / "judge")
    assert (tmp_path / "judge" / JUDGE_FILE).is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"model": "vae"}')
    with pytest.raises(UserError, match="another model"):
        train_judge(JudgeConfig(epochs=1), other, data=DataSource(data_dir=str(data), limit=300), device="cpu",
                    quiet=True)


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    from genae.evaluate.judge import frechet_distance
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    b = torch.randn(20000, 3, generator=g, dtype=torch.float64) * 2 + torch.tensor([1.0, 0, 0], dtype=torch.float64)
    # N(0, I) vs N((1,0,0), 4I): ‖Δμ‖² + Σ (1 + 4 − 2·2) = 1 + 3
    assert frechet_distance(a, b) == pytest.approx(4.0, abs=0.15)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_judge_scores_a_conditional_model_per_label(tmp_path):
    from genae.evaluate.judge import judge_generated

    class Oracle:  # "generates" the class-c synthetic digit for label c
        def sample(self, n, y):
            x = torch.zeros(n, 1, 28, 28)
            for c in range(10):
                x[y == c, :, 2 + 2 * c:6 + 2 * c, 4:24] = 0.9
            return x

    torch.manual_seed(0)
    judge = Judge(JudgeConfig(epochs=3, batch_size=32, lr_schedule="constant", shift=0))
    fit(judge, synthetic_mnist(512), tmp_path, device=torch.device("cpu"), quiet=True)
    judge.eval()
    scores = judge_generated(Oracle(), judge, synthetic_mnist(256).test.x, per_label=20)
    assert scores["conditional_accuracy"] > 0.9 and len(scores["conditional_accuracy_per_label"]) == 10
    assert scores["judge_frechet_distance"] >= 0


def test_eval_scores_a_cvae_with_the_cached_judge_only_when_there_is_one(tmp_path, monkeypatch):
    from genae.evaluate import evaluate_run
    from genae.evaluate.judge import judge_dir
    from genae.models.vae import VAEConfig
    from genae.train.trainer import train_model
    data = tmp_path / "mnist"
    data.mkdir()
    write_npz(data / "mnist.npz")
    source = DataSource(data_dir=str(data), limit=300)
    run, _ = train_model("cvae", VAEConfig(dim_z=2, n_hidden=16, epochs=1), tmp_path / "cvae", data=source,
                         device="cpu", quiet=True)
    result = evaluate_run(run, iw_samples=5, limit=50)
    assert "no cached judge" in result["judge"]
    assert (result["model"], result["n_images"], result["iw_samples"]) == ("cvae", 50, 5)
    assert result["conditional_nll"] <= -result["elbo"] + 1e-3   # the IWAE bound is at least the ELBO
    with pytest.raises(UserError, match="genae judge train"):
        evaluate_run(run, iw_samples=5, limit=50, judge="on")
    train_judge(JudgeConfig(epochs=1), judge_dir(), data=source, device="cpu", quiet=True)
    result = evaluate_run(run, iw_samples=5, limit=50, judge_samples=30)
    assert result["samples_per_label"] == 30 and 0 <= result["conditional_accuracy"] <= 1 and result["judge_frechet_distance"] >= 0
    assert "not Inception FID" in result["judge_note"]


def test_analogy_columns_are_scored_by_the_judge(tmp_path, monkeypatch):
    import genae.evaluate.judge as judge_module
    from genae.experiments.common import Report
    from genae.experiments.cvae_vs_vae import _judge_columns

    class Reader:  # reads every image as its column's label, except row 0 of column 2 (read as 7)
        record = {"test_accuracy": 0.995}

        def predict(self, x):
            out = torch.arange(10).repeat(3)
            out[2] = 7
            return out

    rep = Report("analogy-random", "t", tmp_path)
    monkeypatch.setattr(judge_module, "judge_dir", lambda: tmp_path)
    _judge_columns(rep, torch.zeros(3, 10, 1, 28, 28))
    assert "not scored" in rep.sections[-1]
    (tmp_path / "judge.json").write_text("{}")
    monkeypatch.setattr(judge_module, "load_judge", lambda device="cpu": Reader())
    _judge_columns(rep, torch.zeros(3, 10, 1, 28, 28))
    expected = [1.0, 1.0, round(2 / 3, 4)] + [1.0] * 7
    assert rep.numbers["judge_accuracy_per_column"] == expected
    assert "| judge accuracy | 100% | 100% | 67% |" in rep.sections[-1]
