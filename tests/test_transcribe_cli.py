import subprocess
import sys
import warnings

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from piano_transcription.cli import main
from piano_transcription.inference import predict_windows, stitch_ranges, window_starts
from piano_transcription.midi import make_notes
from piano_transcription.music import estimate_key, estimate_tempo, pitch_class_histogram
from piano_transcription.transcribe import notes_to_midi, transcribe


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    from piano_transcription.model import build_model, save_model

    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    save_model(build_model("tiny"), path)
    return path


@pytest.fixture(scope="module")
def piano_wav(tmp_path_factory):
    from piano_transcription.corpus.compose import performance_midi
    from piano_transcription.corpus.synth import render_fluidsynth

    path = tmp_path_factory.mktemp("audio") / "piece.wav"
    sf.write(path, render_fluidsynth(performance_midi(5, 8.0)), 16000)
    return path


def test_windows_cover_every_frame_once():
    for n in (10, 626, 627, 1300, 4001):
        starts = window_starts(n)
        covered = []
        for a, b, dst in stitch_ranges(starts, n):
            covered += list(range(dst, dst + b - a))
        assert covered == list(range(n))


def test_a_note_across_a_window_boundary_comes_out_once():
    from piano_transcription.decode import decode_notes

    n = 1500
    mel = np.zeros((n, 229), np.float32)
    mel[550:620, 40] = 1.0  # a "note" whose frames straddle the first window's kept edge (562)
    mel[550:552, 41] = 1.0  # its onset

    def fake_model(x):  # a position-independent "model": reads the note from the input itself
        frames = np.repeat(x[..., 40:41], 88, axis=-1)
        onsets = np.repeat(x[..., 41:42], 88, axis=-1)
        return {"frame": frames, "onset": onsets, "offset": 0 * frames, "velocity": 0.5 + 0 * frames}

    rolls = predict_windows(fake_model, mel)
    notes = decode_notes(rolls["frame"], rolls["onset"])
    notes = notes[notes[:, 2] == 21]  # every key sees the same input; look at one
    assert len(notes) == 1
    assert round(notes[0, 0] * 31.25) == 550 and round(notes[0, 1] * 31.25) == 620


def test_key_and_tempo_on_constructed_inputs():
    # A-minor scale material with tonic weight -> A minor; D major triads -> D major
    a_minor = make_notes([(i * 0.5, i * 0.5 + (1.0 if p in (57, 69) else 0.4), p, 80)
                          for i, p in enumerate([57, 59, 60, 62, 64, 65, 67, 69, 64, 60, 57, 69, 52, 57])])
    assert estimate_key(a_minor)[1] == "A minor"
    d_major = make_notes([(i, i + 0.9, p, 80) for i in range(8) for p in (62, 66, 69)])
    assert estimate_key(d_major)[1] == "D major"
    for bpm in (72.0, 100.0, 140.0):
        beat = 60.0 / bpm
        notes = make_notes([(k * beat, k * beat + 0.2, 60 + (k % 3), 80) for k in range(40)])
        assert estimate_tempo(notes) == pytest.approx(bpm, rel=0.03)
    assert pitch_class_histogram(d_major)[[2, 6, 9]].sum() == pytest.approx(1.0)


def test_midi_has_piano_tempo_key_and_source():
    notes = make_notes([(0.5 * k, 0.5 * k + 0.4, 62 + 4 * (k % 2), 70) for k in range(16)])
    pm = notes_to_midi(notes, source="x.wav")
    assert len(pm.instruments) == 1 and pm.instruments[0].program == 0
    assert len(pm.instruments[0].notes) == 16
    assert pm.get_tempo_changes()[1][0] == pytest.approx(120.0, rel=0.03)
    assert pm.key_signature_changes and "x.wav" in pm.text_events[0].text


def test_transcribe_api_with_samples_and_path(tiny_model_path, piano_wav):
    result = transcribe(piano_wav, model=tiny_model_path)
    assert result.rolls["frame"].shape == (1 + len(result.samples) // 512, 88)
    assert isinstance(result.midi, pretty_midi.PrettyMIDI)
    samples, _ = sf.read(piano_wav, dtype="float32")
    again = transcribe(samples, model=tiny_model_path)
    np.testing.assert_allclose(again.rolls["frame"], result.rolls["frame"], atol=1e-5)


def test_cli_end_to_end_and_bad_inputs(tiny_model_path, piano_wav, tmp_path, capsys):
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "corrupt.mp3").write_bytes(b"not audio at all" * 64)
    (bad / "empty.wav").write_bytes(b"")
    sf.write(bad / "silent.wav", np.zeros(16000, np.float32), 16000)
    sf.write(bad / "stereo44k.wav", np.stack([sf.read(piano_wav)[0]] * 2, 1), 44100)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([str(piano_wav), str(bad), "-o", str(out), "--model", str(tiny_model_path), "--plot", "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert "corrupt.mp3: " in err and "empty.wav: " in err
    assert len([line for line in err.splitlines() if line.startswith("piano-transcribe:")]) == 2
    for stem in ("piece", "silent", "stereo44k"):
        assert (out / f"{stem}.mid").exists() and (out / f"{stem}.png").exists()
    pretty_midi.PrettyMIDI(str(out / "piece.mid"))
    # never overwrite without --overwrite
    code = main([str(piano_wav), "-o", str(out), "--model", str(tiny_model_path), "-q"])
    assert code == 1 and "exists" in capsys.readouterr().err
    assert main([str(piano_wav), "-o", str(out), "--model", str(tiny_model_path), "-q", "--overwrite"]) == 0
    assert main([str(tmp_path / "missing.wav"), "-o", str(out), "--model", str(tiny_model_path), "-q"]) == 1
    assert main([str(piano_wav), "--model", str(tmp_path / "nope.keras")]) == 2


def test_cli_help_documents_options():
    out = subprocess.run([sys.executable, "-m", "piano_transcription.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for opt in ("--outdir", "--model", "--tflite", "--onset-threshold", "--frame-threshold", "--plot", "--overwrite"):
        assert opt in out.stdout
