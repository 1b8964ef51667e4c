"""Bad input and unusual machines: quiet start-up, checks before loading, per-input outcomes, all-or-nothing
outputs, true reasons, ambiguous arrays, audio that will likely go wrong, the score's pedal and key, set-up."""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from piano_transcription.assets import DEFAULT_TFLITE, DEMO_AUDIO
from piano_transcription.audio import AudioError, AudioSource, AudioWarning
from piano_transcription.cli import main
from piano_transcription.native_logs import NOISE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TF_LINES = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1796150264.644490    3256 port.cc:153] oneDNN custom operations are on. You may see "
            "slightly different numerical results due to floating-point round-off errors.\n"
            "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")


def noise_lines(stderr: str) -> list[str]:
    """Lines of stderr that are a native library's start-up notice or a raw decoder / glyph warning."""
    raw = re.compile(r"Warning: Xing|libmpg123|Glyph .* missing|UserWarning")
    return [line for line in stderr.splitlines() if any(p.match(line) for p in NOISE) or raw.search(line)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """10.000 s of the real demo recording as a 44.1 kHz stereo WAV."""
    import soxr

    x, sr = sf.read(DEMO_AUDIO, dtype="float32")
    y = soxr.resample(x[: 10 * sr], sr, 44100)
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    sf.write(path, np.stack([y, y], 1), 44100, subtype="PCM_16")
    return path


def outputs(folder) -> list[str]:
    """The files in an output folder, less the run's hidden records (``.transcribe.done.jsonl`` and failures)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def run_python(code: str, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the package's own default
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


# 1. quiet start-up --------------------------------------------------------------------------------------------
def test_native_start_up_lines_are_dropped_and_the_rest_kept():
    """At the file descriptor, as TensorFlow's C++ code writes them: the notices go, other lines stay in order."""
    lines = (TF_LINES + "a real problem\n").encode()
    out = run_python(f"""
        import os, sys
        from piano_transcription.native_logs import filtered_stderr
        with filtered_stderr():
            os.write(2, {lines!r})
            print("from python", file=sys.stderr)
        os.write(2, {b"after" + bytes([10])!r})
    """)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "a real problem\nfrom python\nafter\n"


def test_cli_api_notebook_and_tflite_start_quietly(clip, tmp_path):
    """On a machine whose TensorFlow prints its start-up lines (AVX-512 CPUs) this fails without the filter."""
    shutil.copy(clip, tmp_path / "ピアノ曲.wav")
    x, sr = sf.read(DEMO_AUDIO, dtype="float32")
    sf.write(tmp_path / "cut.mp3", x[: 6 * sr], sr, format="MP3")
    data = (tmp_path / "cut.mp3").read_bytes()
    (tmp_path / "cut.mp3").write_bytes(data[: len(data) // 2])
    out = run_python(f"""
        import sys, warnings
        import piano_transcription
        import tensorflow as tf                                  # as notebook 3 does
        from piano_transcription.cli import main
        from piano_transcription.assets import DEFAULT_MODEL
        from piano_transcription.predictor import load_predictor
        from piano_transcription.transcribe import transcribe
        transcribe({str(clip)!r}, load_predictor(DEFAULT_MODEL))  # the API, Keras
        sys.exit(main([{str(tmp_path / "ピアノ曲.wav")!r}, {str(tmp_path / "cut.mp3")!r}, "--tflite",
                       {str(DEFAULT_TFLITE)!r}, "--plot", "-q", "-o", {str(tmp_path / "out")!r}]))
    """)
    assert out.returncode == 0, out.stderr
    assert noise_lines(out.stderr) == [], out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cut.mp3" in lines[0] and "truncated" in lines[0], out.stderr  # one line of ours
    assert (tmp_path / "out" / "ピアノ曲.png").exists()


# 2. check before loading --------------------------------------------------------------------------------------
def test_inputs_options_and_output_folder_are_checked_before_the_model_loads(tmp_path, clip):
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "m.keras").write_bytes(b"x")
    out = run_python(f"""
        import sys
        from piano_transcription.cli import main
        codes = [main(["/nonexistent.wav", "-o", {str(tmp_path / "o")!r}]),
                 main([{str(clip)!r}, "-o", {str(tmp_path / "file")!r}]),
                 main([{str(clip)!r}, "-o", {str(tmp_path / "file" / "sub")!r}]),
                 main([{str(clip)!r}, "--tflite", {str(tmp_path / "m.keras")!r}, "-o", {str(tmp_path / "o")!r}]),
                 main([{str(clip)!r}, "--model", {str(tmp_path / "missing.keras")!r}, "-o", {str(tmp_path / "o")!r}])]
        print(codes, "tensorflow" in sys.modules, "ai_edge_litert" in sys.modules)
    """)
    assert out.stdout.split() == ["[1,", "2,", "2,", "2,", "2]", "False", "False"], out.stdout + out.stderr
    err = out.stderr.splitlines()
    assert len(err) == 5 and "/nonexistent.wav: no such file" in err[0]
    assert "the output folder is a file" in err[1] and str(tmp_path / "file") in err[2]
    assert ".tmp" not in out.stderr and "is a Keras model (use --model)" in err[3] and "no such model" in err[4]
    assert not (tmp_path / "o").exists()


def test_plot_and_score_need_their_libraries_before_any_work(clip, tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main([str(clip), "--plot", "-o", str(tmp_path)]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err and not list(tmp_path.iterdir())


# 3. one input's problem never stops the others ----------------------------------------------------------------
def test_a_symlink_loop_and_names_differing_in_case_are_per_input_outcomes(clip, tmp_path, capsys):
    loop = tmp_path / "loopdir"
    loop.mkdir()
    (loop / "self.wav").symlink_to("self.wav")
    shutil.copy(clip, tmp_path / "take.wav")
    shutil.copy(clip, tmp_path / "take.WAV")
    out = tmp_path / "out"
    code = main([str(loop / "self.wav"), str(tmp_path / "take.wav"), str(tmp_path / "take.WAV"), "-o", str(out),
                 "--tflite", str(DEFAULT_TFLITE), "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert "self.wav: a symbolic link loop" in err and len(err.strip().splitlines()) == 1
    assert outputs(out) == ["take.WAV-2.mid", "take.wav.mid"]


def test_unsupported_files_and_empty_folders_are_named(tmp_path, clip, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "notes.txt").write_text("x")
    shutil.copy(clip, tmp_path / "mixed" / "a.wav")
    (tmp_path / "readme.txt").write_text("hello")
    code = main([str(tmp_path / "empty"), str(tmp_path / "readme.txt"), str(tmp_path / "mixed"), "-o",
                 str(tmp_path / "out"), "--tflite", str(DEFAULT_TFLITE), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and (tmp_path / "out" / "a.mid").exists()
    assert "empty: no audio files in this folder" in err
    assert "readme.txt: cannot decode audio" in err and "not an audio file?" in err
    assert "mixed: skipped 1 file(s) that are not audio (notes.txt)" in err


# 4. all or nothing per input ----------------------------------------------------------------------------------
def test_every_requested_output_or_none(clip, tmp_path, capsys, monkeypatch):
    from piano_transcription.transcribe import Transcription

    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(16000 * 3, np.float32), 16000)  # no notes: no beats, no score
    out = tmp_path / "out"
    args = ["--tflite", str(DEFAULT_TFLITE), "-q", "-o", str(out), "--plot", "--musicxml"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([str(quiet), *args]) == 1
    assert "no score" in capsys.readouterr().err and not outputs(out)
    assert main([str(quiet), "--tflite", str(DEFAULT_TFLITE), "-q", "-o", str(out)]) == 0  # a re-run works
    assert outputs(out) == ["quiet.mid"]
    # --overwrite: a failing run leaves the previous run's complete set as it was
    assert main([str(clip), *args]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"clip.mid", "clip.png", "clip.musicxml"} <= set(before)
    monkeypatch.setattr(Transcription, "write_musicxml", lambda self, path: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main([str(clip), *args, "--overwrite"]) == 130  # Ctrl-C while the score is written
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing new, nothing partial, no temporaries


# 5. no tracebacks, true reasons -------------------------------------------------------------------------------
@pytest.mark.parametrize("content, reason", [("[1, 2]", "holds an object"), ('{"onset": {"a": 1}}', "one number"),
                                             ("not json", "not a readable thresholds file"),
                                             ('{"timing": "exact"}', "unknown note timing")])
def test_bad_thresholds_files_name_the_file(tmp_path, clip, capsys, content, reason):
    from piano_transcription.predictor import load_predictor

    model = tmp_path / "m.tflite"
    shutil.copy(DEFAULT_TFLITE, model)
    (tmp_path / "m.thresholds.json").write_text(content)
    with pytest.raises(ValueError, match=reason) as exc:
        load_predictor(model)
    assert "m.thresholds.json" in str(exc.value)
    assert main([str(clip), "--tflite", str(model), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert reason in err and len(err.strip().splitlines()) == 1


def test_bad_model_files_and_short_audio_get_true_reasons(tmp_path, clip, capsys):
    from piano_transcription.predictor import load_predictor
    from piano_transcription.transcribe import transcribe

    (tmp_path / "dir.keras").mkdir()
    (tmp_path / "dir.tflite").mkdir()
    (tmp_path / "junk.keras").write_bytes(os.urandom(4096))
    for name, reason in (("dir.keras", "is a folder"), ("dir.tflite", "is a folder"), ("junk.keras", "zip")):
        with pytest.raises(ValueError, match=reason):
            load_predictor(tmp_path / name)
    one = tmp_path / "one.wav"
    sf.write(one, np.full(1, 0.5, np.float32), 44100)
    with pytest.raises(AudioError, match="too short"):
        transcribe(one, DEFAULT_TFLITE)
    with pytest.raises(AudioError, match="too short"):
        transcribe(np.full(1, 0.5, np.float32), DEFAULT_TFLITE, sample_rate=44100)
    assert main([str(one), "--tflite", str(DEFAULT_TFLITE), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "too short" in err and len(err.strip().splitlines()) == 1
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked.wav"
        shutil.copy(clip, locked)
        locked.chmod(0)
        with pytest.raises(AudioError, match="Permission denied"):
            AudioSource(locked)


# 6. API inputs ------------------------------------------------------------------------------------------------
def test_array_shapes_rates_and_bytes_paths():
    x = sf.read(DEMO_AUDIO, dtype="float32")[0][:32000]
    mono = AudioSource(x, 16000).read()
    np.testing.assert_allclose(AudioSource(np.tile(x[None], (10, 1)), 16000).read(), mono, atol=1e-6)  # channels first
    np.testing.assert_allclose(AudioSource(np.tile(x[:, None], (1, 10)), 16000).read(), mono, atol=1e-6)
    for shape in ((100, 100), (100, 2000)):
        with pytest.raises(AudioError, match=r"cannot tell samples from channels.*\[samples, channels\]"):
            AudioSource(np.zeros(shape, np.float32), 16000)
    with pytest.raises(AudioError, match="whole positive number of Hz"):
        AudioSource(x, 44100.5)
    assert AudioSource(x, 16000.0).sr == 16000
    assert AudioSource(os.fsencode(str(DEMO_AUDIO))).n_samples == AudioSource(DEMO_AUDIO).n_samples


# 7. audio that will likely go wrong ---------------------------------------------------------------------------
def wav_with_data_size(src, dst, size):
    data = bytearray(src.read_bytes())
    i = data.find(b"data")
    data[i + 4:i + 8] = struct.pack("<I", size)
    dst.write_bytes(bytes(data))


def test_suspicious_audio_gets_one_warning_and_is_read_consistently(tmp_path):
    x, sr = sf.read(DEMO_AUDIO, dtype="float32")
    x = x[: 10 * sr]
    sf.write(tmp_path / "full.wav", x, sr, subtype="PCM_16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AudioSource(tmp_path / "full.wav")  # a clean file: no warning
        wav_with_data_size(tmp_path / "full.wav", tmp_path / "streamed.wav", 0xFFFFFFFF)
        assert AudioSource(tmp_path / "streamed.wav").seconds == pytest.approx(10.0)  # streamed: no bogus warning
    with pytest.warns(AudioWarning, match="broadband noise"):
        AudioSource(np.random.default_rng(0).normal(0, 0.3, 10 * sr).astype(np.float32), sr)
    wav_with_data_size(tmp_path / "full.wav", tmp_path / "header1s.wav", 2 * sr)
    with pytest.warns(AudioWarning, match=r"announces 1.0 s but the file holds about 10.0 s"):
        AudioSource(tmp_path / "header1s.wav")
    for fmt, ext in (("FLAC", "flac"), ("OGG", "ogg"), ("MP3", "mp3")):
        sf.write(tmp_path / f"full.{ext}", x, sr, format=fmt)
        data = (tmp_path / f"full.{ext}").read_bytes()
        (tmp_path / f"cut.{ext}").write_bytes(data[: len(data) // 2])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            AudioSource(tmp_path / f"full.{ext}")
        with pytest.warns(AudioWarning, match="truncated") as caught:
            src = AudioSource(tmp_path / f"cut.{ext}")
        assert len(caught) == 1 and src.seconds > 3.0, (ext, src.seconds)  # what decodes is transcribed


# 8. the score -------------------------------------------------------------------------------------------------
def test_pedal_marks_reach_a_staff_with_two_voices(tmp_path):
    pytest.importorskip("music21")
    from piano_transcription.midi import make_notes
    from piano_transcription.score import write_musicxml

    beats = np.arange(0, 16, 0.5)
    held = [(0.5 * k, 0.5 * k + 2.0, 43, 60) for k in range(0, 16, 4)]  # long bass notes under ...
    moving = [(0.5 * k, 0.5 * k + 0.45, 50 + k % 5, 60) for k in range(16)]  # ... a moving voice: two voices
    notes = make_notes(held + moving + [(0.5 * k, 0.5 * k + 0.4, 72 + k % 3, 70) for k in range(16)])
    write_musicxml(notes, beats, tmp_path / "s.musicxml", "C major", pedal=np.array([[0.0, 3.9], [4.0, 7.9]]))
    text = (tmp_path / "s.musicxml").read_text()
    assert "<voice>2</voice>" in text
    assert text.count('<pedal') == 4 and text.count('type="start"') >= 2


def test_a_key_is_spelled_the_way_its_midi_stores_it(tmp_path):
    import mido

    from piano_transcription.music import key_name

    for number in range(24):
        pm = pretty_midi.PrettyMIDI()
        pm.key_signature_changes.append(pretty_midi.KeySignature(number, 0.0))
        pm.write(str(tmp_path / "k.mid"))
        stored = next(m.key for m in mido.MidiFile(tmp_path / "k.mid") if m.type == "key_signature")
        tonic, mode = key_name(number).split()
        assert stored == tonic + ("m" if mode == "minor" else ""), (number, stored, key_name(number))
    assert key_name(1) == "Db major"  # 5 flats, not C#'s 7 sharps


# 9. small things ----------------------------------------------------------------------------------------------
def test_note_ends_stay_inside_the_audio(clip):
    from piano_transcription.transcribe import transcribe

    result = transcribe(clip, DEFAULT_TFLITE)
    assert result.seconds == pytest.approx(10.0, abs=1e-3) and result.notes[:, 1].max() <= result.seconds


def test_demo_keeps_an_earlier_result_and_help_says_strictly(tmp_path, capsys):
    from piano_transcription.cli import transcription_parser

    (tmp_path / "demo.mid").write_bytes(b"earlier")
    assert main(["demo", "-o", str(tmp_path)]) == 1
    assert "demo.mid exists (use --overwrite" in capsys.readouterr().err
    assert (tmp_path / "demo.mid").read_bytes() == b"earlier"
    text = " ".join(transcription_parser().format_help().split())
    assert text.count("strictly between 0 and 1") == 3 and "0..1" not in text


def test_an_error_during_the_progress_bar_gets_its_own_line(clip, tmp_path, capsys):
    bad = tmp_path / "nan.wav"
    sf.write(bad, np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    assert main([str(clip), str(bad), "--tflite", str(DEFAULT_TFLITE), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    segments = [seg for line in err.split("\n") for seg in line.split("\r") if "piano-transcribe:" in seg]
    assert segments and all(seg.startswith("piano-transcribe:") for seg in segments), err


# 10. set-up ---------------------------------------------------------------------------------------------------
def test_set_up_waits_for_the_dpkg_lock(tmp_path):
    lock = tmp_path / "lock-frontend"
    lock.touch()
    holder = subprocess.Popen([sys.executable, "-c", f"import fcntl, time; f = open({str(lock)!r}, 'r+'); "
                               "fcntl.lockf(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(2.5)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    script = [sys.executable, os.path.join(ROOT, "scripts", "wait_for_dpkg_lock.py")]
    gave_up = subprocess.run(script + ["--timeout", "0.5", str(lock)], capture_output=True, text=True)
    assert gave_up.returncode == 1 and "gave up" in gave_up.stderr and "lock-frontend" in gave_up.stderr
    start = time.monotonic()
    waited = subprocess.run(script + ["--timeout", "30", str(lock)], capture_output=True, text=True)
    assert waited.returncode == 0 and "waiting for it" in waited.stderr and time.monotonic() - start > 0.5
    holder.wait()
    setup = open(os.path.join(ROOT, "scripts", "setup.sh")).read()
    assert "wait_for_dpkg_lock.py" in setup and "DPkg::Lock::Timeout" in setup
