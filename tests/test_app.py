"""The demo page in a real browser: `hf-whisper-context app` on a free local port, headless Chromium (Debian's
chromium + chromium-driver, driven by Selenium) uploads real speech and reads both models' columns; bad uploads get
a message on the page. A screenshot is kept as a test artefact (`$TEST_ARTEFACTS`, default test-artefacts/)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hf_whisper_context.app import entity_spans, word_diff

pytestmark = pytest.mark.slow
ARTEFACTS = Path(os.environ.get("TEST_ARTEFACTS", Path(__file__).resolve().parents[1] / "test-artefacts"))


def test_word_diff_marks_each_kind_of_error():
    diff = word_diff("Marie Curie lived in Paris, France.", "marie Curie lived on in Paris. France")
    labels = {word.strip(): label for word, label in diff}
    assert labels["marie"] == "case" and labels["on"] == "insertion" and labels["Paris."] == "punctuation"
    assert labels["France"] == "punctuation" and labels["Curie"] is None
    assert word_diff("one two", "one") == [("one ", None), ("two ", "deletion")]
    assert word_diff("cat", "dog") == [("dog [cat] ", "substitution")]
    spans, source = entity_spans("[PERSON]Marie Curie[/PERSON] lived in [GPE]Paris[/GPE].")
    assert spans == [("Marie Curie", "PERSON"), (" lived in ", None), ("Paris", "GPE"), (".", None)]
    assert source == "the model's own tags"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def page(tiny_en):
    port = _free_port()  # two columns: the bundled name and its converted folder (one small model, loaded twice)
    command = [sys.executable, "-m", "hf_whisper_context.cli", "app", "--models", "tiny.en", str(tiny_en), "--port",
               str(port), "--max-minutes", "1"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()[-3000:]
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode is not None  # the app process is stopped


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2200"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


def _upload(browser, url, path: Path, reference: str = "", wait_for_player: bool = True):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#audio input[type=file]"))
    browser.find_element(By.CSS_SELECTOR, "#audio input[type=file]").send_keys(str(path))
    if reference:
        browser.find_element(By.CSS_SELECTOR, "#reference textarea").send_keys(reference)
    if wait_for_player:
        WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#audio audio, #audio .waveform"))
    else:
        time.sleep(3)  # the upload itself
    browser.find_element(By.CSS_SELECTOR, "#transcribe").click()


def _status(browser, timeout: float = 600) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(lambda d: d.find_element(By.CSS_SELECTOR, "#status").text.strip())
    return browser.find_element(By.CSS_SELECTOR, "#status").text


def test_the_page_compares_two_models_on_real_speech(page, browser, call):
    from selenium.webdriver.common.by import By

    folder, rows = call
    clip = folder / "call.wav"  # the utterances of the phone call, one after another (21 s of real speech)
    sf.write(clip, np.concatenate([sf.read(folder / r["file_name"], dtype="float32")[0] for r in rows]), 16_000)
    _upload(browser, page, clip, " ".join(r["text"] for r in rows))
    assert "Transcribed" in _status(browser)
    for k in (0, 1):
        assert len(browser.find_element(By.CSS_SELECTOR, f"#entities-{k}").text.split()) > 10
        assert "Jersey" in browser.find_element(By.CSS_SELECTOR, f"#diff-{k}").text
    entities = browser.find_element(By.CSS_SELECTOR, "#entities-0").text + browser.find_element(
        By.CSS_SELECTOR, "#entities-1").text  # fmt: skip
    assert any(label in entities for label in ("GPE", "PERSON", "NORP"))  # a highlighted entity, with its type
    table = browser.find_element(By.CSS_SELECTOR, "#metrics").text
    assert "WER (normalised)" in table and "Loops" in table and "Real-time factor" in table
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTEFACTS / "app.png"))


def test_bad_uploads_get_a_message_on_the_page(page, browser, tmp_path):
    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(16_000 * 2, dtype=np.float32), 16_000)
    _upload(browser, page, silent)
    assert "silent" in _status(browser)
    text = tmp_path / "notes.wav"  # not audio, whatever its name says
    text.write_text("These are my notes, not a recording.\n" * 50)
    _upload(browser, page, text, wait_for_player=False)
    assert "Cannot transcribe" in _status(browser) and "cannot decode" in _status(browser)
    long = tmp_path / "long.wav"  # over the page's --max-minutes 1, streamed, never loaded whole
    sf.write(long, np.random.default_rng(0).normal(0, 0.1, 16_000 * 70).astype(np.float32), 16_000)
    _upload(browser, page, long)
    assert "lasts 1 min; this page transcribes up to 1 min" in _status(browser)
