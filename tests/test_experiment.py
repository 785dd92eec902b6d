"""The experiment harness at toy size: the grid runs, resumes where it stopped, and reports paired intervals."""

import json

import pytest
import torch

from hf_whisper_context.cli import main
from hf_whisper_context.data.dataset import load_swc
from hf_whisper_context.experiment import ExperimentConfig, ExperimentError, parse_arm, plan

pytestmark = pytest.mark.slow


def test_arms_and_the_plan():
    assert parse_arm("ce@learning_rate=1e-4,lora_r=None") == ("ce", {"learning_rate": 1e-4, "lora_r": None})
    with pytest.raises(ExperimentError, match="known arms: off-the-shelf, ce, ce\\+kd"):
        parse_arm("distilled")
    with pytest.raises(ExperimentError, match="unknown setting 'lr'"):
        parse_arm("ce@lr=1")
    config = ExperimentConfig(data="x", arms=["off-the-shelf", "ce", "ce+kd+ot+rep"], seeds=[0, 1],
                              context_words=[64, 512])  # fmt: skip
    assert plan(config) == [("off-the-shelf", None, None), ("ce", 0, None), ("ce", 1, None),
                            ("ce+kd+ot+rep", 0, 64), ("ce+kd+ot+rep", 1, 64), ("ce+kd+ot+rep", 0, 512),
                            ("ce+kd+ot+rep", 1, 512)]  # fmt: skip


def test_corpora_of_other_articles_are_pooled():
    """The first corpus and each later one holding other articles are pooled, arm by arm and seed by seed; the same
    articles in another voice are not; an arm missing a seed on one corpus is left out of the pool."""
    from hf_whisper_context.experiment_report import pooled

    def runs(articles, seeds):
        return {seed: {"articles": [{"article_id": a, "seed": seed} for a in articles]} for seed in seeds}

    groups = {
        ("test", "sequential"): {"ce": runs("AB", [0, 1]), "off": runs("AB", [None]), "x": runs("AB", [0])},
        ("piper", "sequential"): {"ce": runs("AB", [0, 1]), "off": runs("AB", [None])},
        ("more", "sequential"): {"ce": runs("CDE", [0, 1]), "off": runs("CDE", [None]), "x": runs("C", [1])},
    }
    out = pooled(groups, ["test", "piper", "more"])
    assert set(out) == {*groups, ("test+more", "sequential")}
    pool = out["test+more", "sequential"]
    assert set(pool) == {"ce", "off"}  # "x" has other seeds on the two corpora
    assert [a["article_id"] for a in pool["ce"][1]["articles"]] == list("ABCDE")
    assert {a["seed"] for a in pool["ce"][1]["articles"]} == {1} and list(pool["off"]) == [None]
    assert pooled(groups, ["test", "piper"]) == groups  # the same articles: nothing to pool


def test_quick_grid_runs_resumes_and_reports(corpus, tiny_models, tmp_path, capsys):
    load_swc(corpus, test_articles=1)
    out = tmp_path / "exp"
    argv = ["experiment", "--quick", "--data", str(corpus), "--output-dir", str(out), "--student",
            str(tiny_models / "student"), "--teacher", str(tiny_models / "teacher"), "--eval-batch-size", "2",
            "--teacher-dtype", "float32"]  # fmt: skip
    assert main(argv) == 0
    done = sorted(out.glob("runs/**/done.json"))
    assert len(done) == 5  # off-the-shelf, ce x 2 seeds, ce+kd+ot+rep x 2 seeds at 64 words
    table = (out / "experiment.md").read_text()
    for needle in ("| off-the-shelf | 1 |", "| ce | 2 |", "| ce+kd+ot+rep [64 words] | 2 |",
                   "**ce − off-the-shelf**", "**ce+kd+ot+rep [64 words] − ce**", "chunked decoding",
                   "sequential decoding", "Loops"):  # fmt: skip
        assert needle in table, needle
    summary = json.loads((out / "experiment.json").read_text())
    assert {r["strategy"] for r in summary["results"]} == {"chunked", "sequential"}
    assert list(out.glob("experiment_*_chunked.png"))

    # interrupted mid-grid: the finished runs are skipped, the missing one is run again
    stamps = {p: p.stat().st_mtime_ns for p in done}
    missing = out / "runs" / "ce+kd+ot+rep" / "ctx64" / "seed1" / "done.json"
    missing.unlink()
    capsys.readouterr()
    assert main(argv) == 0
    assert missing.is_file()
    assert all(p.stat().st_mtime_ns == stamps[p] for p in done if p != missing)

    assert main([*argv, "--arms", "distilled"]) == 1
    assert "known arms" in capsys.readouterr().err

    # the same students evaluated again under another decoding: nothing retrained, the decoding in every record;
    # a run the earlier grid does not have is trained
    again = tmp_path / "again"
    argv_again = [*argv[:5], str(again), *argv[6:], "--students-from", str(out), "--fallback", "--seeds", "0",
                  "--strategies", "sequential", "--arms", "ce", "ce@cut_ratio=1.0"]  # fmt: skip
    assert main(argv_again) == 0
    assert not (again / "runs" / "ce" / "seed0" / "merged").exists()
    assert (again / "runs" / "ce@cut_ratio=1.0" / "seed0" / "merged").is_dir()
    record = json.loads((again / "runs" / "ce" / "seed0" / "done.json").read_text())
    assert record["trained_in"] == str(out) and "temperature fallback" in record["decoding"]
    assert record["threads"] == torch.get_num_threads()
    assert json.loads((again / "runs" / "ce@cut_ratio=1.0" / "seed0" / "done.json").read_text())["recipe"] == {
        **record["recipe"], "cut_ratio": 1.0}  # fmt: skip
    assert record["student"] == str(out / "runs" / "ce" / "seed0" / "merged")
    assert record["history"] == json.loads((out / "runs" / "ce" / "seed0" / "log_history.json").read_text())
    assert "temperature fallback" in (again / "experiment.md").read_text().splitlines()[0]
    # a student trained with another recipe is not taken for this one
    assert main([*argv_again[:-1], "--label_smoothing_factor", "0.2", "--output-dir", str(tmp_path / "other")]) == 1
    assert "was trained with another recipe (label_smoothing_factor=0.1 there, 0.2 here)" in capsys.readouterr().err

    # another corpus may train the students (more voices), but never on an article this grid evaluates
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    for article in corpus.iterdir():
        if article.is_dir():
            (leaky / article.name).symlink_to(article)
    splits = json.loads((corpus / "splits.json").read_text())  # another draw: a test article among the training ones
    (tested, *_), (trained, *rest) = splits["test"], splits["train"]
    splits["train"], splits["test"] = [tested, *rest], [trained, *splits["test"][1:]]
    (leaky / "splits.json").write_text(json.dumps(splits))
    assert main([*argv_again[:-3], "--arms", f"ce@train_data={leaky}"]) == 1
    assert f"train_data {leaky} trains on ['{tested}'], which {corpus} evaluates" in capsys.readouterr().err


def test_checkpoint_selection_on_the_dev_split(corpus, tiny_models, tmp_path, capsys):
    """`select_every` saves the student every N steps, transcribes each saved one and the last on the dev articles,
    and keeps the lowest WER; the grid must then evaluate another split."""
    data = tmp_path / "corpus"  # the fixture's four articles: two train, one validation, one test
    data.mkdir()
    for article in corpus.iterdir():
        if article.is_dir():
            (data / article.name).symlink_to(article)
    names = sorted(p.name for p in corpus.iterdir() if p.is_dir())
    (data / "splits.json").write_text(json.dumps({"train": names[:2], "validation": names[2:3], "test": names[3:]}))
    out = tmp_path / "exp"
    argv = ["experiment", "--quick", "--data", str(data), "--output-dir", str(out), "--student",
            str(tiny_models / "student"), "--eval-batch-size", "2", "--seeds", "0", "--strategies", "sequential",
            "--arms", "ce@select_every=2"]  # fmt: skip
    assert main(argv) == 0
    run = out / "runs" / "ce@select_every=2" / "seed0"
    done = json.loads((run / "done.json").read_text())
    selection = done["selection"]
    assert selection["split"] == "validation" and set(selection["wer"]) == {"2", "4"}  # quick: 4 steps
    assert selection["wer"][str(selection["step"])] == min(selection["wer"].values())
    chosen = run / ("merged" if selection["step"] == 4 else "steps/step2")
    assert done["student"] == selection["student"] == str(chosen)
    assert (run / "steps" / "step2" / "model.safetensors").is_file()
    evaluated = json.loads((run / "eval" / "corpus" / "results.json").read_text())
    assert evaluated["split"] == "test"
    assert evaluated["runs"]["ce@select_every=2 (sequential)"]["model"] == str(chosen)

    capsys.readouterr()
    assert main([*argv, "--eval-split", "validation", "--output-dir", str(tmp_path / "biased")]) == 1
    assert "select_every chooses each student on" in capsys.readouterr().err
