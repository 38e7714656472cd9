"""`genae reproduce`: the plan's steps run, skip when done, redo on --force or changed options; the
HTML report is self-contained and every number in its tables is the one in results.json / eval.json."""

import base64
import dataclasses
import io
import json
import shlex
from html.parser import HTMLParser
from pathlib import Path

import pytest
import tyro
from fakes import write_npz
from PIL import Image

from genae.experiments import RECIPES, gallery
from genae.experiments.common import format_cell
from genae.experiments.reproduce import (PLAN, StepsFailed, equivalent_command, read_state, reproduce, same_options,
                                         step_options, with_changes)

ONLY = ["reproduce", "semisupervised"]   # one recipe without eval.json files, one with
SMALL = dict(limit=300, device="cpu", quiet=True)


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    data = tmp_path_factory.mktemp("mnist")
    write_npz(data / "mnist.npz")
    out = tmp_path_factory.mktemp("quick")
    report = reproduce(out, "quick", only=ONLY, data_dir=str(data), **SMALL)
    return out, report, str(data)


class Page(HTMLParser):
    """The report's tables (class, rows of (text, data-value)) and its images' src attributes."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append((attrs.get("class"), []))
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag == "td":
            self._cell = ["", attrs.get("data-value")]
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "td":
            self.tables[-1][1][-1].append(tuple(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data


def parse(report: Path) -> Page:
    page = Page()
    page.feed(report.read_text(encoding="utf-8"))
    return page


def body_rows(rows):
    return [row for row in rows if row]   # the header row holds <th>, not <td>


def recipe_results(out: Path) -> dict:
    state = read_state(out)
    return {name: json.loads((Path(step["options"]["out"]) / name / "results.json").read_text())
            for name, step in state["steps"].items()}


def test_every_step_ran_and_is_recorded_with_its_command(reproduced):
    out, report, _ = reproduced
    state = read_state(out)
    assert state["mode"] == "quick" and list(state["steps"]) == ONLY
    for name, step in state["steps"].items():
        assert step["status"] == "done" and step["wall_seconds"] > 0
        assert step["command"].startswith(f"genae run {name} ") and "--limit 300" in step["command"]
    assert report == out / "report" / "index.html"


def test_eval_tables_match_the_eval_json_files_exactly(reproduced):
    out, report, _ = reproduced
    rows = [row for cls, table in parse(report).tables if cls == "eval-table" for row in body_rows(table)]
    assert len(rows) >= 6   # semisupervised: M1, M2, M1+M2 runs, several numbers each
    for (_, _), (path, _), (metric, _), (text, value) in rows:
        expected = json.loads(Path(path).read_text())[metric]
        assert json.loads(value) == expected, (path, metric)
        assert text == format_cell(expected)


def test_recipe_tables_match_results_json_exactly(reproduced):
    out, report, _ = reproduced
    html_tables = [body_rows(t) for cls, t in parse(report).tables if cls == "recipe-table"]
    json_tables = [t["rows"] for name in ONLY for t in recipe_results(out)[name]["tables"]]
    assert len(html_tables) == len(json_tables) > 0
    for html_rows, json_rows in zip(html_tables, json_tables):
        assert len(html_rows) == len(json_rows)
        for html_row, json_row in zip(html_rows, json_rows):
            assert [text for text, _ in html_row] == [format_cell(v) for v in json_row]
            for (_, value), expected in zip(html_row, json_row):
                if value is not None:
                    assert json.loads(value) == expected


def test_every_figure_is_embedded_as_a_decodable_png(reproduced):
    out, report, _ = reproduced
    images = parse(report).images
    figures = [f for name in ONLY for f in recipe_results(out)[name]["figures"]]
    assert len(images) == len(figures) > 0
    for src in images:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
            image.load()
            assert image.width > 50 and image.height > 50
    assert "src='runs/" not in report.read_text() and "file:" not in report.read_text()


def test_a_second_call_skips_finished_steps_and_force_redoes_them(reproduced):
    out, _, data = reproduced
    results = Path(read_state(out)["steps"]["reproduce"]["options"]["out"]) / "reproduce" / "results.json"
    before = results.stat().st_mtime_ns
    reproduce(out, "quick", only=["reproduce"], data_dir=data, **SMALL)
    assert results.stat().st_mtime_ns == before
    reproduce(out, "quick", only=["reproduce"], data_dir=data, force=True, **SMALL)
    assert results.stat().st_mtime_ns != before


def test_changed_options_rerun_a_step(reproduced):
    out, _, data = reproduced
    results = Path(read_state(out)["steps"]["reproduce"]["options"]["out"]) / "reproduce" / "results.json"
    before = results.stat().st_mtime_ns
    reproduce(out, "quick", only=["reproduce"], data_dir=data, **{**SMALL, "limit": 250})
    assert results.stat().st_mtime_ns != before
    assert read_state(out)["steps"]["reproduce"]["options"]["data"]["limit"] == 250


def test_a_killed_step_is_run_again(reproduced, monkeypatch):
    out, _, data = reproduced
    real = RECIPES["reproduce"]

    def killed(options):
        raise KeyboardInterrupt

    monkeypatch.setitem(RECIPES, "reproduce", dataclasses.replace(real, run=killed))
    with pytest.raises(KeyboardInterrupt):
        reproduce(out, "quick", only=["reproduce"], data_dir=data, force=True, **SMALL)
    assert read_state(out)["steps"]["reproduce"]["status"] == "running"
    monkeypatch.setitem(RECIPES, "reproduce", real)
    reproduce(out, "quick", only=["reproduce"], data_dir=data, **SMALL)   # no --force: not done, so it runs
    assert read_state(out)["steps"]["reproduce"]["status"] == "done"


@pytest.mark.parametrize("step", PLAN, ids=lambda s: s.recipe)
@pytest.mark.parametrize("mode", ["quick", "full"])
def test_each_steps_command_parses_back_to_its_options(step, mode, tmp_path):
    options = step_options(step, mode, tmp_path, {"seed": 3, "data.limit": None, "compute.device": "cpu",
                                                  "compute.quiet": False})
    words = shlex.split(equivalent_command(step, options))
    assert words[:3] == ["genae", "run", step.recipe]
    assert tyro.cli(RECIPES[step.recipe].options, args=words[3:]) == options


def test_an_option_added_after_a_step_was_recorded_matches_only_at_its_default(tmp_path):
    step = next(s for s in PLAN if s.recipe == "semisupervised")
    options = step_options(step, "quick", tmp_path, {})
    recorded = json.loads(json.dumps(dataclasses.asdict(options), default=str))
    assert same_options(recorded, options)
    del recorded["setting"]   # as a step recorded before the recipe's option existed
    del recorded["m2"]["labeled_every"]   # ... and before the model's option existed
    assert same_options(recorded, options)
    assert not same_options(recorded, dataclasses.replace(options, setting="source"))
    assert not same_options(recorded, with_changes(options, {"m2.labeled_every": 2}))
    assert not same_options(recorded, with_changes(options, {"m2.epochs": options.m2.epochs + 1}))
    assert not same_options(recorded, dataclasses.replace(options, seeds=(0, 1)))
    assert not same_options(None, options)
    # how a step runs (device, --quiet, --graphs) does not make it another step
    assert same_options(recorded, with_changes(options, {"compute.device": "cuda", "compute.quiet": True,
                                                          "compute.graphs": not options.compute.graphs}))


def test_limit_caps_but_never_raises_the_plans_own_limit(tmp_path):
    step = next(s for s in PLAN if s.quick.get("data.limit"))
    assert step_options(step, "quick", tmp_path, {"data.limit": 10**9}).data.limit == step.quick["data.limit"]
    assert step_options(step, "quick", tmp_path, {"data.limit": 100}).data.limit == 100


def test_bad_requests_name_the_problem(reproduced, tmp_path):
    out, _, data = reproduced
    with pytest.raises(ValueError, match="no-such-recipe"):
        reproduce(tmp_path, "quick", only=["no-such-recipe"], data_dir=data, **SMALL)
    with pytest.raises(ValueError, match="--quick reproduction"):
        reproduce(out, "full", only=["reproduce"], data_dir=data, report_only=True, **SMALL)


def test_gallery_holds_small_pngs_of_the_chosen_figures(reproduced, tmp_path, monkeypatch):
    out, _, _ = reproduced
    monkeypatch.setattr(gallery, "GALLERY", {"reproduce": "", "semisupervised": "no-such-figure", "aae": ""})
    folder = gallery.write_gallery(out, tmp_path / "gallery", width=200)
    assert [p.name for p in folder.glob("*.png")] == ["reproduce.png"]   # aae did not run; no such figure
    with Image.open(folder / "reproduce.png") as image:
        assert image.width == 200


def test_the_report_finds_relative_run_paths_from_another_directory(reproduced, tmp_path, monkeypatch):
    _, _, data = reproduced
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    reproduce(Path("rel"), "quick", only=["semisupervised"], data_dir=data, **SMALL)
    monkeypatch.chdir(tmp_path / "elsewhere")
    report = reproduce(tmp_path / "rel", "quick", only=["semisupervised"], report_only=True, **SMALL)
    page = parse(report)
    assert page.images and any(cls == "eval-table" and body_rows(rows) for cls, rows in page.tables)
    assert "class='missing'" not in report.read_text()


def test_a_failing_recipe_is_reported_and_the_others_still_run(reproduced, monkeypatch):
    out, _, data = reproduced
    real = RECIPES["reproduce"]

    def broken(options):
        raise ValueError("boom in the recipe")

    monkeypatch.setitem(RECIPES, "reproduce", dataclasses.replace(real, run=broken))
    with pytest.raises(StepsFailed, match="reproduce failed"):
        reproduce(out, "quick", only=["reproduce", "semisupervised"], data_dir=data, force=True, **SMALL)
    steps = read_state(out)["steps"]
    assert steps["reproduce"]["status"] == "failed: ValueError: boom in the recipe"
    assert steps["semisupervised"]["status"] == "done"   # ran after the failure
    assert "It failed: ValueError: boom in the recipe." in (out / "report" / "index.html").read_text()
    monkeypatch.setitem(RECIPES, "reproduce", real)
    reproduce(out, "quick", only=["reproduce"], data_dir=data, **SMALL)   # a failed step is not done: it reruns
    assert read_state(out)["steps"]["reproduce"]["status"] == "done"
