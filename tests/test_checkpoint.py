"""autometa.checkpoint: the one resume mechanism of the trainers (settings check, atomic save).
That importing it does not import torch is checked in test_metalearn.py."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from autometa.checkpoint import Checkpoint  # noqa: E402
from autometa.exceptions import InputError, ResumeError  # noqa: E402

SETTINGS = {"algo": "maml", "seed": 0, "network": {"channels": 8, "ops": ["skip_connect", "none"]}}


def test_load_is_none_without_a_file_and_returns_the_saved_state(tmp_path):
    ckpt = Checkpoint(tmp_path / "run" / "checkpoint.pt", SETTINGS)
    assert ckpt.load() is None
    ckpt.save({"iterations": 3, "weights": torch.arange(4.0)})
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt"]  # no temporary file left
    state = Checkpoint(tmp_path / "run" / "checkpoint.pt", dict(SETTINGS)).load()
    assert set(state) == {"iterations", "weights"} and state["iterations"] == 3
    assert torch.equal(state["weights"], torch.arange(4.0))


def test_other_settings_are_refused_naming_each_difference_with_both_values(tmp_path):
    Checkpoint(tmp_path / "c.pt", SETTINGS).save({"iterations": 1})
    other = {"algo": "fomaml", "network": {"channels": 16, "ops": ["skip_connect", "none"]}, "extra": True}
    with pytest.raises(ResumeError) as info:
        Checkpoint(tmp_path / "c.pt", other).load()
    message = str(info.value)
    assert "holds a run with other settings" in message and str(tmp_path / "c.pt") in message
    assert "algo ('maml' in the file, 'fomaml' now)" in message
    assert "network.channels (8 in the file, 16 now)" in message  # nested settings by dotted name
    assert "seed (0 in the file, unset now)" in message and "extra (unset in the file, True now)" in message
    assert "network.ops" not in message


def test_an_interrupted_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    ckpt = Checkpoint(tmp_path / "c.pt", SETTINGS)
    ckpt.save({"iterations": 1})
    real_save = torch.save

    def crash(obj, f, *args, **kwargs):
        real_save({"half": "written"}, f)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save({"iterations": 2})
    monkeypatch.undo()
    assert ckpt.load() == {"iterations": 1}


def test_legacy_files_resume_by_their_key_and_foreign_files_are_refused(tmp_path):
    torch.save({"key": "old|steps=5", "step": 4}, tmp_path / "old.pt")
    assert Checkpoint(tmp_path / "old.pt", SETTINGS, legacy_key="old|steps=5").load() == {"step": 4}
    with pytest.raises(ResumeError, match="holds a run with other settings"):
        Checkpoint(tmp_path / "old.pt", SETTINGS, legacy_key="old|steps=6").load()
    torch.save({"step": 4}, tmp_path / "foreign.pt")
    with pytest.raises(ResumeError, match="holds no settings of an autometa run"):
        Checkpoint(tmp_path / "foreign.pt", SETTINGS).load()
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ResumeError, match="holds no autometa run"):
        Checkpoint(tmp_path / "list.pt", SETTINGS).load()
    (tmp_path / "broken.pt").write_bytes(b"not a pickle")
    with pytest.raises(ResumeError, match="cannot be read"):
        Checkpoint(tmp_path / "broken.pt", SETTINGS).load()


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(InputError, match="'settings' parameter of Checkpoint must be a mapping; got list"):
        Checkpoint(tmp_path / "c.pt", [("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="reserved key 'settings'"):
        Checkpoint(tmp_path / "c.pt", SETTINGS).save({"settings": 1})
