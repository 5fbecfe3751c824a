"""Workdir safety: refuse folders that are not this run's, never rewrite config.json, atomic writes."""
import json
import os

import pytest

from flaxzoo.train.defaults import base_config
from flaxzoo.train.workdir import MARKER, WorkdirError, config_diff, prepare, trim_metrics, write_atomic


def config(**changes):
    c = base_config()
    c.model.name = "swin_test_tiny"
    c.model.kwargs.depths = (1, 1)
    c.task.name = "classify"
    c.total_steps = 10
    for key, value in changes.items():
        *parents, leaf = key.split("__")  # optim__lr -> c.optim.lr
        target = c
        for name in parents:
            target = target[name]
        target[leaf] = value
    return c


def files(folder):
    return sorted(os.listdir(folder))


def test_new_run_in_missing_or_empty_dir_is_marked(tmp_path):
    assert prepare(config(), str(tmp_path / "run")) == "new"
    assert files(tmp_path / "run") == ["config.json", MARKER]
    marker = json.loads((tmp_path / "run" / MARKER).read_text())
    assert marker["model"] == "swin_test_tiny" and marker["task"] == "classify"
    (tmp_path / "empty").mkdir()
    assert prepare(config(), str(tmp_path / "empty")) == "new"


def test_same_run_resumes_and_a_changed_config_is_recorded_beside(tmp_path, capsys):
    run = tmp_path / "run"
    prepare(config(), str(run))
    first = (run / "config.json").read_text()
    assert prepare(config(), str(run)) == "resume"
    assert files(run) == ["config.json", MARKER]  # nothing changed, nothing recorded
    capsys.readouterr()
    assert prepare(config(total_steps=20, optim__lr=0.002), str(run)) == "resume"
    assert (run / "config.json").read_text() == first  # the first config is never rewritten
    recorded = json.loads((run / "config.resume-1.json").read_text())
    assert recorded["total_steps"] == 20
    out = capsys.readouterr().out
    assert "config.resume-1.json" in out and "total_steps: 10 -> 20" in out and "optim.lr: 0.001 -> 0.002" in out
    # A further change is compared with the newest recorded config, and gets its own file.
    assert prepare(config(total_steps=30, optim__lr=0.002), str(run)) == "resume"
    assert "total_steps: 20 -> 30" in capsys.readouterr().out
    assert json.loads((run / "config.resume-2.json").read_text())["total_steps"] == 30


def test_folder_of_someone_else_is_refused_and_untouched(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(WorkdirError, match=r"is not empty \(thesis.tex\) and is not a flaxzoo run"):
        prepare(config(), str(tmp_path))
    for mode in ("new", "force", "require"):
        with pytest.raises(WorkdirError):
            prepare(config(resume=mode), str(tmp_path))
    assert files(tmp_path) == ["thesis.tex"] and (tmp_path / "thesis.tex").read_text() == "precious"


def test_run_of_another_model_or_task_is_refused(tmp_path):
    prepare(config(), str(tmp_path))
    with pytest.raises(WorkdirError, match=r"holds a run of model 'swin_test_tiny'.*model.name: \"swin_test_tiny\" -> "
                                           r"\"maxim_test\".*--config.resume=force"):
        prepare(config(model__name="maxim_test"), str(tmp_path))
    with pytest.raises(WorkdirError, match=r"task.kwargs.label_smoothing: \(unset\) -> 0.1"):
        prepare(config(task__kwargs__label_smoothing=0.1), str(tmp_path))


def test_force_continues_with_a_changed_model_config_and_records_it(tmp_path, capsys):
    prepare(config(), str(tmp_path))
    assert prepare(config(resume="force", model__kwargs__drop_path_rate=0.1), str(tmp_path)) == "resume"
    assert "model.kwargs.drop_path_rate: (unset) -> 0.1" in capsys.readouterr().out
    # From now on the run is the changed one: auto resumes it without force, and refuses the old config.
    assert prepare(config(model__kwargs__drop_path_rate=0.1), str(tmp_path)) == "resume"
    with pytest.raises(WorkdirError, match=r"model.kwargs.drop_path_rate: 0.1 -> \(unset\)"):
        prepare(config(), str(tmp_path))


def test_new_and_require(tmp_path):
    with pytest.raises(WorkdirError, match="holds no run to resume"):
        prepare(config(resume="require"), str(tmp_path))
    assert prepare(config(resume="new"), str(tmp_path)) == "new"
    with pytest.raises(WorkdirError, match=r"config.resume='new' but .* already holds a flaxzoo run"):
        prepare(config(resume="new"), str(tmp_path))
    with pytest.raises(WorkdirError, match="has no checkpoint yet"):
        prepare(config(resume="require"), str(tmp_path))
    (tmp_path / "checkpoints" / "2").mkdir(parents=True)
    assert prepare(config(resume="require"), str(tmp_path)) == "resume"


def test_bad_resume_value_and_file_workdir(tmp_path):
    with pytest.raises(WorkdirError, match=r"config.resume must be one of auto, new, require, force; got 'yes'"):
        prepare(config(resume="yes"), str(tmp_path))
    (tmp_path / "runs").write_text("")
    with pytest.raises(WorkdirError, match="is a file, not a folder"):
        prepare(config(), str(tmp_path / "runs"))


def test_damaged_marker_is_named(tmp_path):
    prepare(config(), str(tmp_path))
    (tmp_path / MARKER).write_text("{trunc")
    with pytest.raises(WorkdirError, match=f"Cannot read the run marker .*{MARKER}"):
        prepare(config(), str(tmp_path))


def test_write_atomic_replaces_whole_files_and_leaves_no_temporaries(tmp_path, monkeypatch):
    path = tmp_path / "done.json"
    write_atomic(str(path), "one")
    write_atomic(str(path), b"two")
    assert path.read_text() == "two" and files(tmp_path) == ["done.json"]

    def disk_full(fd):
        raise OSError("No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(str(path), "three")
    assert path.read_text() == "two" and files(tmp_path) == ["done.json"]


def test_trim_metrics_drops_replayed_rows(tmp_path):
    rows = [{"step": s, "train/loss": 1.0 / s} for s in range(1, 7)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 7, "tra')
    trim_metrics(str(tmp_path), 4)
    kept = [json.loads(l)["step"] for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert kept == [1, 2, 3, 4]


def test_config_diff():
    assert config_diff({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3, "d": "x"}}) == ['b.c: 2 -> 3', 'b.d: (unset) -> "x"']
