"""The Gradio demo: its guards and voice-dependent controls (handlers called directly), `voxflow demo`'s
arguments, the page in a real browser (Playwright driving Debian's Chromium) and its API (gradio_client)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile

from tts.errors import UserError

pytestmark = [pytest.mark.filterwarnings("ignore:.*(max_decoder_steps|n_frames)"),
              # gradio 6.31's queue calls pandas 3 options it deprecated
              pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|The copy keyword):Warning")]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
REFERENCE_TEXT = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def studio(tiny_voices, test_limits):
    from demo.handlers import Studio

    return Studio(tiny_voices, test_limits)


@pytest.fixture(scope="module")
def flite_clip(tmp_path_factory) -> Path:
    """About 3 s of flite speech, the reference a visitor would upload."""
    if shutil.which("flite") is None:
        pytest.fail("flite is not installed; run `bash scripts/test.sh`, which installs the test dependencies")
    path = tmp_path_factory.mktemp("clip") / "reference.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", REFERENCE_TEXT, "-o", str(path)], check=True, timeout=60)
    return path


def test_guards_refuse_long_text_and_empty_text(studio):
    with pytest.raises(gr.Error, match="501 characters long; the demo takes at most 500"):
        studio.speak("a" * 501, "tacotron2")
    with pytest.raises(gr.Error, match="type something first"):
        studio.speak("   ", "tacotron2")
    with pytest.raises(gr.Error, match="the reference's transcript: type something first"):
        studio.transfer(None, "", ["rhythm"], 0, "Hi.", "mellotron")


def test_guards_refuse_long_big_or_missing_audio(studio, tmp_path):
    long_clip = tmp_path / "long.wav"
    soundfile.write(long_clip, np.zeros(31 * 16000, dtype=np.int16), 16000)
    with pytest.raises(gr.Error, match=r"31\.0 s long; the demo takes clips up to 30 s"):
        studio.transfer(str(long_clip), REFERENCE_TEXT, ["pitch"], 0, "Hi.", "mellotron")
    big_file = tmp_path / "big.wav"
    big_file.write_bytes(b"\0" * (10 * 2 ** 20 + 1))
    with pytest.raises(UserError, match="the demo takes files up to 10 MB"):
        studio.read_upload(str(big_file), studio.voice("mellotron"))
    with pytest.raises(gr.Error, match="record or upload a clip first"):
        studio.transfer(None, REFERENCE_TEXT, ["pitch"], 0, "Hi.", "mellotron")
    with pytest.raises(gr.Error, match="steps: the demo takes 2 to 8"):
        studio.interpolate("Hi.", "samples", None, None, 20, 0.5, 1, None, None, "flowtron")


def test_guards_refuse_hostile_text_and_numbers(studio):
    with pytest.raises(gr.Error, match="text: a control character U\\+0000 at position 5; text may hold newlines"):
        studio.speak("Hello\x00there", "tacotron2")
    with pytest.raises(gr.Error, match="text: expected a str, found bytes; decode it first"):
        studio.speak(b"Hello there.", "tacotron2")
    with pytest.raises(gr.Error, match="unknown voice \\['tacotron2'\\]; this demo has"):
        studio.speak("Hi.", ["tacotron2"])
    # checked even where the voice ignores the value (Tacotron 2 takes no sigma)
    with pytest.raises(gr.Error, match="sigma: expected a number in 0..2, found inf"):
        studio.speak("Hi.", "tacotron2", None, float("inf"), 0, 1)
    with pytest.raises(gr.Error, match="seed: expected an integer in 0..9223372036854775807, found nan"):
        studio.speak("Hi.", "tacotron2", None, 0.6, 0, float("nan"))
    with pytest.raises(gr.Error, match="denoise: expected a number in 0..1, found str 'lots'"):
        studio.speak("Hi.", "tacotron2", None, 0.6, "lots", 1)
    with pytest.raises(gr.Error, match="steps: the demo takes 2 to 8, found nan"):
        studio.interpolate("Hi.", "samples", None, None, float("nan"), 0.5, 1, None, None, "flowtron")
    with pytest.raises(gr.Error, match="sigma: expected a number in 0..2, found -1"):
        studio.interpolate("Hi.", "samples", None, None, 3, -1, 1, None, None, "flowtron")
    with pytest.raises(gr.Error, match="bpm: expected a number in 10..500, found -5"):
        studio.sing("sample duet", None, "0", "mellotron", None, 0, -5, 1)
    assert studio.pick_step([(1, "a"), (2, "b")], float("nan")) == (1, "a")


def test_uploads_that_are_not_audio_are_named_as_the_visitor_knows_them(studio, tmp_path, rng, flite_clip):
    notes, noise, silent = tmp_path / "notes.wav", tmp_path / "noise.wav", tmp_path / "silent.wav"
    notes.write_text("a shopping list, not a recording\n")
    noise.write_bytes(rng.bytes(30_000))
    soundfile.write(silent, np.zeros(22050, dtype=np.int16), 22050)
    for path in (notes, noise):
        with pytest.raises(gr.Error, match=rf"reference audio: {path.name}: not a readable audio file \(.*Format "
                                           "not recognised") as refused:
            studio.transfer(str(path), REFERENCE_TEXT, ["pitch"], 0, "Hi.", "mellotron")
        assert str(tmp_path) not in str(refused.value)  # no server paths in the page
    with pytest.raises(gr.Error, match=r"reference audio \(silent.wav\): every sample is zero"):
        studio.transfer(str(silent), REFERENCE_TEXT, ["GST style"], 0, "Hi.", "mellotron")
    with pytest.raises(gr.Error, match="pitch_shift: expected a number in -24..24, found inf"):
        studio.transfer(str(flite_clip), REFERENCE_TEXT, ["pitch"], float("inf"), "Hi.", "mellotron")


def test_uploads_in_other_formats_are_converted(studio, tmp_path, flite_clip):
    import librosa

    audio, rate = soundfile.read(flite_clip, dtype="float32")
    stereo = tmp_path / "stereo44k.wav"
    resampled = librosa.resample(audio, orig_sr=rate, target_sr=44100)
    soundfile.write(stereo, np.stack([resampled, 0.5 * resampled], axis=1), 44100, subtype="PCM_16")
    (out_rate, out), f0, _ = studio.transfer(str(stereo), REFERENCE_TEXT, ["GST style", "pitch"], 0, "Hi there.",
                                             "mellotron", "rms", 1)
    assert out_rate == 22050 and out.dtype == np.int16 and len(out) > 0
    reference = f0.axes[0].get_lines()[0].get_label()  # "reference (N voiced frames)": read as speech
    assert reference.startswith("reference (") and not reference.startswith("reference (0 ")


def test_the_demo_refuses_a_song_over_its_limit_before_singing(tiny_voices):
    from demo.handlers import Limits, Studio

    short = Studio(tiny_voices, Limits(max_audio_seconds=0.5, max_decoder_steps=20))  # songs up to 4 x 0.5 s
    with pytest.raises(gr.Error, match="the score: part 'Soprano' lasts 3 s; the demo sings up to 2 s"):
        short.sing("sample duet", None, "Soprano", "mellotron")
    assert short.voice("mellotron").voice is tiny_voices["mellotron"].voice  # the same weights, not a copy
    assert tiny_voices["mellotron"].limits.holder == "the Synthesizer"  # the caller's synthesizer untouched


def test_voice_errors_reach_the_page_as_messages(studio):
    with pytest.raises(gr.Error, match="this mellotron voice takes speakers, style, found 'samples'"):
        studio.interpolate("Hi.", "samples", None, None, 3, 0.5, 1, None, None, "mellotron")
    with pytest.raises(gr.Error, match="the score: no part 'Bass'; parts: Soprano, Alto"):
        studio.sing("sample duet", None, "Bass", "mellotron")
    with pytest.raises(gr.Error, match="upload a MusicXML score first"):
        studio.sing("my upload", None, "0", "mellotron")


def test_controls_follow_what_each_voice_takes(studio):
    from demo.handlers import SAMPLE_SCORE, voice_controls

    flowtron = voice_controls("flowtron", studio.voice("flowtron"))
    mellotron = voice_controls("mellotron", studio.voice("mellotron"))
    tacotron2 = voice_controls("tacotron2", studio.voice("tacotron2"))
    assert flowtron["sigma"]["visible"] and not mellotron["sigma"]["visible"]
    assert flowtron["what"]["choices"] == ["posterior style"]
    assert mellotron["what"]["choices"] == ["GST style", "pitch", "rhythm"] and mellotron["pitch_shift"]["visible"]
    assert mellotron["sing"]["interactive"] and not flowtron["sing"]["interactive"]
    assert flowtron["walk"]["interactive"] and mellotron["walk"]["interactive"]
    assert flowtron["mode"]["choices"] == ["speakers", "samples", "style", "style_over_time"]
    assert mellotron["mode"]["choices"] == ["speakers", "style"] and "need a Flowtron" in mellotron["walk_note"]["value"]
    assert flowtron["walk_transcript"]["visible"] and not mellotron["walk_transcript"]["visible"]
    assert tacotron2["what"]["choices"] == [] and not tacotron2["speaker"]["visible"]
    assert SAMPLE_SCORE.is_file() and "tests" not in SAMPLE_SCORE.parts


def test_handlers_return_audio_and_figures(studio, flite_clip):
    (rate, audio), mel, _ = studio.speak("Hello there.", "mellotron", "slt", None, None, 1)
    assert rate == 22050 and audio.dtype == np.int16 and len(audio) > 0 and mel is not None
    (rate, audio), f0, _ = studio.transfer(str(flite_clip), REFERENCE_TEXT, ["pitch", "rhythm"], 2, "", "mellotron",
                                           "rms", 1)
    assert len(audio) > 22050 and "F0" in f0.axes[0].get_title()  # rhythm: the reference's own length
    walk, plot, clips, _, first = studio.interpolate("Hi.", "speakers", "rms", "slt", 3, 0.5, 1, None, None,
                                                     "flowtron")
    assert len(clips) == 3 and first == clips[0] and len(walk[1]) > sum(len(clip[1]) for clip in clips)
    assert studio.pick_step(clips, 2) is clips[1]
    _, _, clips, _, _ = studio.interpolate("Hi.", "style", "rms", None, 2, 0.5, 1, str(flite_clip), "", "mellotron")
    assert len(clips) == 2  # GST style needs no transcript


def test_cli_pairs_models_with_vocoders(tmp_path):
    from tts.cli.demo import parse_voices

    for name in ("a.safetensors", "b.safetensors", "w.safetensors"):
        (tmp_path / name).write_bytes(b"")
    voices = parse_voices([f"one={tmp_path / 'a.safetensors'}", str(tmp_path / "b.safetensors")],
                          [f"b={tmp_path / 'w.safetensors'}"])
    assert voices == {"one": (tmp_path / "a.safetensors", None),
                      "b": (tmp_path / "b.safetensors", tmp_path / "w.safetensors")}
    with pytest.raises(UserError, match="no --model named 'c'"):
        parse_voices([str(tmp_path / "a.safetensors")], ["c=x"])
    with pytest.raises(UserError, match="no such file"):
        parse_voices([str(tmp_path / "missing.safetensors")], [])


def test_cli_demo_without_a_voice_says_so_in_one_line(capsys, monkeypatch, tmp_path):
    import tts.api
    from tts.cli import main

    monkeypatch.setattr(tts.api, "DEFAULT_VOICE_DIR", tmp_path)  # as on a build that ships no voice

    assert main(["demo", "--port", "7999"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("voxflow demo: error: no voice is installed") and "\n" not in error


def test_api_speaks_through_gradio_client(served_app):
    from gradio_client import Client

    client = Client(served_app, verbose=False)
    audio_path, _, _ = client.predict("Hello there.", "tacotron2", None, 0.6, 0, 1, api_name="/speak")
    audio, rate = soundfile.read(audio_path)
    assert rate == 22050 and len(audio) > 0
    with pytest.raises(Exception, match="at most 500"):
        client.predict("a" * 600, "tacotron2", None, 0.6, 0, 1, api_name="/speak")
    with pytest.raises(Exception, match="control character U\\+0000 at position 5"):
        client.predict("Hello\x00there", "tacotron2", None, 0.6, 0, 1, api_name="/speak")


def test_api_refuses_an_upload_that_is_not_audio(served_app, tmp_path, rng):
    from gradio_client import Client, handle_file

    noise = tmp_path / "noise.wav"
    noise.write_bytes(rng.bytes(30_000))
    client = Client(served_app, verbose=False)
    with pytest.raises(Exception, match="reference audio: noise.wav: not a readable audio file"):
        client.predict(handle_file(str(noise)), REFERENCE_TEXT, ["pitch"], 0, "Hi.", "mellotron", "rms", 1,
                       api_name="/transfer")


@pytest.fixture(scope="module")
def page(served_app):
    if not CHROMIUM.is_file():
        pytest.fail("Debian's Chromium is not installed; run `bash scripts/test.sh`, which installs it "
                    "(apt-get install chromium)")
    import playwright.sync_api as playwright_api
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(served_app)
        yield page
        browser.close()


def _audio_arrived(page, elem_id: str) -> None:
    # Gradio 6: an output <audio> has no src; its download link appears once audio is there.
    page.wait_for_selector(f'#{elem_id} a[data-testid="download-link"]', state="attached")


@pytest.mark.slow
def test_page_speaks_transfers_and_warns(page, flite_clip):
    page.fill("#speak-text textarea", "Hello from the browser.")
    page.click("#speak-button")
    _audio_arrived(page, "speak-audio")
    page.wait_for_selector("#speak-mel img")
    page.wait_for_selector("#speak-alignment img")

    page.get_by_role("tab", name="Style transfer").click()
    page.set_input_files("#reference input[type=file]", str(flite_clip))
    page.fill("#transcript textarea", REFERENCE_TEXT)
    page.get_by_label("pitch", exact=True).check()
    page.fill("#target textarea", "A new sentence in the same tune.")
    page.click("#transfer-button")
    _audio_arrived(page, "transfer-audio")
    page.wait_for_selector("#transfer-f0 img")

    page.get_by_role("tab", name="Speak").click()
    page.fill("#speak-text textarea", "a" * 501)
    page.click("#speak-button")
    page.get_by_text("the demo takes at most 500").first.wait_for()
