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


def test_every_batch_of_a_recording_has_one_shape():
    shapes = []

    def fake_model(x):
        shapes.append(x.shape)
        return {"frame": np.repeat(x[..., :1], 88, axis=-1)}

    mel = np.random.default_rng(0).random((3000, 229)).astype(np.float32)  # 6 windows: batches of 4 and 2
    rolls = predict_windows(fake_model, mel, batch_size=4)
    assert shapes == [(4, 626, 229), (4, 626, 229)]  # the short last batch padded, its padding dropped
    np.testing.assert_array_equal(rolls["frame"][:, 0], mel[:, 0])
    shapes.clear()
    predict_windows(fake_model, mel[:700], batch_size=4)  # 2 windows: one batch of 2, no padding
    assert shapes == [(2, 626, 229)]


def test_keras_model_is_traced_once_and_xla_agrees(tiny_model_path):
    from piano_transcription.inference import _TRACED, keras_predictor, xla_pays
    from piano_transcription.model import load_model

    model = load_model(tiny_model_path)
    x = np.random.default_rng(1).normal(-40, 10, (2, 64, 229)).astype(np.float32)
    plain = keras_predictor(model)
    assert plain(x)["frame"].shape == (2, 64, 88)
    forward = _TRACED[model][False]
    plain(x)
    assert forward.experimental_get_tracing_count() == 1  # a second call, or a second predictor: no new trace
    keras_predictor(model)(x)
    assert forward.experimental_get_tracing_count() == 1
    a, b = plain(x), keras_predictor(model, jit_compile=True)(x)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-4)  # velocity: unbounded values
    assert not xla_pays(3)  # a short recording never waits for a compilation


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
    from piano_transcription.audio import AudioError

    result = transcribe(piano_wav, model=tiny_model_path, keep_rolls=True)
    samples, sr = sf.read(piano_wav, dtype="float32")
    assert result.rolls["frame"].shape == (1 + len(samples) // 512, 88)
    assert result.seconds == pytest.approx(len(samples) / sr)
    assert isinstance(result.midi, pretty_midi.PrettyMIDI)
    again = transcribe(samples, model=tiny_model_path, sample_rate=sr, keep_rolls=True)
    np.testing.assert_allclose(again.rolls["frame"], result.rolls["frame"], atol=1e-5)
    with pytest.raises(AudioError, match="sample rate"):
        transcribe(samples, model=tiny_model_path)


def test_samples_at_any_rate_and_channels_first(tiny_model_path, piano_wav):
    import soxr

    samples, sr = sf.read(piano_wav, dtype="float32")
    ref = transcribe(samples, model=tiny_model_path, sample_rate=sr, keep_rolls=True).rolls["frame"]
    x44 = soxr.resample(samples, sr, 44100)
    got = transcribe(x44, model=tiny_model_path, sample_rate=44100, keep_rolls=True).rolls["frame"]
    assert got.shape == ref.shape and np.mean(np.abs(got - ref)) < 0.02
    stereo = np.stack([samples, samples])  # [2, n], channels first
    first = transcribe(stereo, model=tiny_model_path, sample_rate=sr, keep_rolls=True).rolls["frame"]
    np.testing.assert_allclose(first, ref, atol=1e-5)


def test_thresholds_are_checked_and_a_loaded_model_keeps_its_own(tiny_model_path, piano_wav, tmp_path):
    import json
    import shutil

    from piano_transcription.model import load_model
    from piano_transcription.predictor import load_predictor

    for bad in (float("nan"), 2.0, -1.0, 0.0, 1.0):
        with pytest.raises(ValueError, match="between 0 and 1"):
            transcribe(piano_wav, model=tiny_model_path, onset_threshold=bad)
    for bad in ("nan", "2", "-1", "x"):
        with pytest.raises(SystemExit) as exc:
            main([str(piano_wav), "--onset-threshold", bad, "--model", str(tiny_model_path)])
        assert exc.value.code == 2
    model_path = tmp_path / "m.keras"
    shutil.copy(tiny_model_path, model_path)
    tuned = {"onset": [0.3] * 88, "frame": [0.7] * 88}
    (tmp_path / "m.thresholds.json").write_text(json.dumps(tuned))
    from_object = load_predictor(load_model(model_path))
    np.testing.assert_allclose(from_object.thresholds["onset"], 0.3)
    np.testing.assert_allclose(from_object.thresholds["frame"], 0.7)


def test_output_names_never_collide(tmp_path):
    from piano_transcription.cli import expand_inputs, output_names

    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    files = [tmp_path / "a" / "take.wav", tmp_path / "b" / "take.wav", tmp_path / "a" / "take.mp3",
             tmp_path / "a" / "solo.flac"]
    for f in files:
        f.touch()
    inputs = expand_inputs([str(f) for f in files] + [str(files[0])])  # the first given twice
    assert inputs == files
    names = output_names(inputs)
    assert len(set(names.values())) == 4 and names[files[3]] == "solo"
    assert names[files[2]] == "take.mp3" and {names[files[0]], names[files[1]]} == {"a-take.wav", "b-take.wav"}


def test_cli_writes_every_result_and_unicode_names(tiny_model_path, piano_wav, tmp_path, capsys):
    import shutil

    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    shutil.copy(piano_wav, tmp_path / "a" / "take.wav")
    shutil.copy(piano_wav, tmp_path / "b" / "take.wav")
    shutil.copy(piano_wav, tmp_path / "a" / "日本語.wav")
    shutil.copy(piano_wav, tmp_path / "b" / "🎹.wav")
    out = tmp_path / "out"
    code = main([str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "a" / "take.wav"), "-o", str(out),
                 "--model", str(tiny_model_path), "-q"])
    assert code == 0, capsys.readouterr().err
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))  # .transcribe.done.jsonl: the run's
    assert visible == sorted(["a-take.wav.mid", "b-take.wav.mid", "日本語.mid", "🎹.mid"])
    text = pretty_midi.PrettyMIDI(str(out / "日本語.mid")).text_events[0].text
    assert text.encode("latin-1").decode("utf-8") == "transcribed from 日本語.wav"


def test_audio_that_needs_a_warning(tiny_model_path, piano_wav, tmp_path):
    from piano_transcription.audio import AudioSource, AudioWarning

    samples, sr = sf.read(piano_wav, dtype="float32")
    with pytest.warns(AudioWarning, match="cancel"):
        src = AudioSource(np.stack([samples, -samples], 1), sr)
    np.testing.assert_allclose(src.read(), AudioSource(samples, sr).read(), atol=1e-6)
    with pytest.warns(AudioWarning, match="clipped"):
        AudioSource(np.clip(samples * 20, -1, 1), sr)
    short = tmp_path / "short.wav"
    sf.write(short, samples, sr, subtype="PCM_16")
    data = bytearray(short.read_bytes())
    short.write_bytes(bytes(data[: len(data) // 2]))  # the header still announces the whole length
    with pytest.warns(AudioWarning, match="header"):
        src = AudioSource(short)
    assert abs(src.n_samples - len(samples) / 2) < 200


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
    lines = [line for line in err.splitlines() if line.startswith("piano-transcribe:")]
    assert len([line for line in lines if "warning:" not in line]) == 2
    assert any("warning:" in line and "silent.wav" in line for line in lines)
    for stem in ("piece", "silent", "stereo44k"):
        assert (out / f"{stem}.mid").exists() and (out / f"{stem}.png").exists()
    pretty_midi.PrettyMIDI(str(out / "piece.mid"))
    # never overwrite without --overwrite
    code = main([str(piano_wav), "-o", str(out), "--model", str(tiny_model_path), "-q"])
    assert code == 1 and "exists" in capsys.readouterr().err
    assert main([str(piano_wav), "-o", str(out), "--model", str(tiny_model_path), "-q", "--overwrite"]) == 0
    assert main([str(tmp_path / "missing.wav"), "-o", str(out), "--model", str(tiny_model_path), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("missing.wav") == 1  # the path is named once
    assert main([str(piano_wav), "--model", str(tmp_path / "nope.keras")]) == 2
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK not really a zip")
    assert main([str(piano_wav), "--model", str(corrupt)]) == 2
    assert "not a readable Keras model" in capsys.readouterr().err


def test_opus_files_are_found_in_folders(tmp_path):
    from piano_transcription.cli import expand_inputs

    (tmp_path / "x.opus").touch()
    (tmp_path / "notes.txt").touch()
    assert [p.name for p in expand_inputs([str(tmp_path)])] == ["x.opus"]


def test_subcommands_fail_in_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["prepare", str(tmp_path / "empty"), str(tmp_path / "out")]) == 2
    assert main(["train", str(tmp_path / "empty"), str(tmp_path / "run"), "--steps", "1"]) == 2
    assert not (tmp_path / "run").exists()
    (tmp_path / "junk.keras").write_text("junk")
    assert main(["export-tflite", str(tmp_path / "junk.keras"), "-o", str(tmp_path / "x.tflite")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 3 and "Traceback" not in err


def test_cli_help_documents_options():
    out = subprocess.run([sys.executable, "-m", "piano_transcription.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for opt in ("--outdir", "--model", "--tflite", "--onset-threshold", "--frame-threshold", "--plot", "--overwrite"):
        assert opt in out.stdout


def test_cleanup_options_are_checked_and_applied(tiny_model_path, piano_wav, tmp_path):
    from piano_transcription.cleanup import Cleanup

    for bad in (["--min-note", "-1"], ["--merge-within", "x"], ["--preset", "loud"]):
        with pytest.raises(SystemExit) as exc:
            main([str(piano_wav), "--model", str(tiny_model_path), *bad])
        assert exc.value.code == 2
    loose = transcribe(piano_wav, model=tiny_model_path, onset_threshold=0.3, frame_threshold=0.3)
    strict = transcribe(piano_wav, model=tiny_model_path, onset_threshold=0.3, frame_threshold=0.3,
                        cleanup=Cleanup(min_note=0.5))
    assert np.all(strict.notes[:, 1] - strict.notes[:, 0] >= 0.5 - 1e-9)
    assert len(strict.notes) <= len(loose.notes)


def test_transcribe_applies_the_cleanup(piano_wav):
    """With a stand-in model whose rolls hold a 32 ms ghost and a doubled onset, the clean-up removes both."""
    from piano_transcription.cleanup import Cleanup
    from piano_transcription.predictor import Predictor

    class Fixed(Predictor):
        backend = "test"

        def __init__(self):
            super().__init__(None)

        def stream(self, source, progress=False):
            n = 1 + source.n_samples // 512
            frame, onset = np.zeros((n, 88), np.float32), np.zeros((n, 88), np.float32)
            frame[10:60, 39] = onset[10:12, 39] = onset[13, 39] = 1.0  # C4 held, onset fired again 3 frames later
            frame[80, 50] = onset[80, 50] = 1.0  # a one-frame ghost
            yield {"frame": frame, "onset": onset, "offset": 0 * frame, "velocity": 0.5 + 0 * frame}

    raw = transcribe(piano_wav, Fixed())
    assert len(raw.notes) == 3
    clean = transcribe(piano_wav, Fixed(), cleanup=Cleanup(min_note=0.05, merge_within=0.15))
    assert len(clean.notes) == 1 and clean.notes[0, 2] == 60


def tempo_change_performance(seed: int = 0):
    """Chords on every beat, 16 s at 90 BPM then 16 s at 140 BPM, a softer eighth note after every beat.  (With
    eighths after every other beat only, the half tempo autocorrelates as strongly as the beat: measured 0.513 vs
    0.500 for 70 vs 140 BPM after transcription, a tie decided by noise.)"""
    from piano_transcription.midi import make_notes

    rng = np.random.default_rng(seed)
    first = np.arange(0, 16, 60 / 90)
    change = first[-1] + 60 / 90
    beats = np.r_[first, change + np.arange(0, 16, 60 / 140)]
    rows = []
    for i, b in enumerate(beats):
        period = 60 / 90 if b < change else 60 / 140
        rows.append((b + rng.normal(0, 0.008), b + 0.3, 48 + 12 * (i % 4 == 0), 90 if i % 4 == 0 else 70))
        rows.append((b + rng.normal(0, 0.008), b + 0.2, 64 + i % 5, 60))
        rows.append((b + period / 2, b + period, 67, 45))
    return make_notes(rows), change


def test_tempo_map_follows_tempo_changes_and_keeps_note_times(tmp_path):
    from piano_transcription.music import apply_tempo_map, track_beats

    notes, change = tempo_change_performance()
    beats = track_beats(notes)
    before, after = np.diff(beats[beats < change - 1]), np.diff(beats[beats > change + 1])
    assert 60 / np.median(before) == pytest.approx(90, rel=0.04)
    assert 60 / np.median(after) == pytest.approx(140, rel=0.04)
    pm = notes_to_midi(notes)
    pm.write(str(tmp_path / "t.mid"))
    back = pretty_midi.PrettyMIDI(str(tmp_path / "t.mid"))
    got = np.array(sorted(n.start for n in back.instruments[0].notes))
    np.testing.assert_allclose(got, np.sort(notes[:, 0]), atol=0.003)  # seconds as transcribed (tick rounding)
    times, bpm = back.get_tempo_changes()
    assert len(bpm) > 10 and np.median(bpm[times < change - 1]) == pytest.approx(90, rel=0.05)
    assert np.median(bpm[times > change + 1]) == pytest.approx(140, rel=0.05)
    constant = notes_to_midi(notes, tempo_map=False)
    assert len(constant.get_tempo_changes()[1]) == 1
    apply_tempo_map(constant, np.array([1.0]))  # too few beats: left as it is
    assert len(constant.get_tempo_changes()[1]) == 1


@pytest.mark.slow
def test_beat_tracker_agrees_with_librosa(librosa):
    """Our numpy dynamic program finds the beats librosa's (numba) beat tracker finds, on a jittered performance
    whose tempo drifts."""
    from piano_transcription.midi import make_notes
    from piano_transcription.music import beat_track, envelope_tempo, estimate_tempo, local_tempo, onset_envelope

    rng = np.random.default_rng(0)
    t = np.cumsum(rng.choice([0.25, 0.5, 0.5, 0.75], 300) * np.linspace(1.0, 1.3, 300))
    notes = make_notes([(s + rng.normal(0, 0.01), s + 0.4, 60 + rng.integers(-12, 12), 70 + rng.integers(-20, 20))
                        for s in t])
    env = onset_envelope(notes)
    tempo = local_tempo(env, 100.0, estimate_tempo(notes))
    ours = beat_track(env, 100.0, tempo)
    _, theirs = librosa.beat.beat_track(onset_envelope=env, sr=100 * 512, hop_length=512, bpm=tempo, trim=False)
    assert abs(len(ours) - len(theirs)) <= 2
    assert np.mean(np.abs(ours[:, None] - theirs[None, :]).min(axis=1) <= 1) >= 0.95
    # and the tempo estimate of each block is librosa's
    for s in range(0, len(env) - 800, 400):
        want = librosa.feature.tempo(onset_envelope=env[s:s + 800], sr=100 * 512, hop_length=512,
                                     start_bpm=120.0, ac_size=4.0)[0]
        assert envelope_tempo(env[s:s + 800], 100.0, 120.0, window=400) == pytest.approx(want, rel=0.02)


def test_tempo_map_of_a_rendered_performance(tmp_path):
    """The same performance rendered with FluidSynth and transcribed by the shipped model."""
    from piano_transcription.corpus.synth import render_fluidsynth
    from piano_transcription.midi import notes_to_pretty_midi

    notes, change = tempo_change_performance(1)
    wav = tmp_path / "tempo.wav"
    sf.write(wav, render_fluidsynth(notes_to_pretty_midi(notes)), 16000)
    result = transcribe(wav)
    times, bpm = result.midi.get_tempo_changes()
    assert np.median(bpm[(times > 2) & (times < change - 1)]) == pytest.approx(90, rel=0.05)
    assert np.median(bpm[times > change + 2]) == pytest.approx(140, rel=0.05)


def test_rough_edges_of_the_other_subcommands(tmp_path, capsys, monkeypatch):
    import zipfile

    import piano_transcription.cli as cli
    from piano_transcription.corpus.synthetic import build_synthetic_maestro

    maestro = build_synthetic_maestro(tmp_path / "m", {"train": 2, "validation": 0, "test": 0}, duration=8.0, seed=3)
    wav = sorted(maestro.rglob("*.wav"))[0]
    wav.write_bytes(b"RIFF broken")
    assert main(["prepare", str(maestro), str(tmp_path / "p"), "--workers", "1"]) == 1  # a piece failed
    assert wav.name in capsys.readouterr().err
    bad_zip = tmp_path / "maestro_checkpoint.zip"
    with zipfile.ZipFile(bad_zip, "w") as z:
        z.writestr("readme.txt", "no checkpoint here")
    assert main(["magenta-to-keras", str(bad_zip), "-o", str(tmp_path / "m.keras")]) == 2
    err = capsys.readouterr().err
    assert str(bad_zip) in err and "magenta_ckpt_" not in err and "/tmp" not in err.replace(str(tmp_path), "")

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run_transcription", interrupted)
    assert main(["x.wav"]) == 130
    assert capsys.readouterr().err.strip() == "piano-transcribe: interrupted"


def score_performance(seed: int = 0):
    """Eight bars of 4/4 (right hand in eighths, left-hand chords in quarters) and a performance of them: tempo
    drifting from 100 to 88 BPM, onsets jittered by 10 ms. Returns ``(events, notes)``: the score as
    (bar from 1, beat from 0, pitch) and the performed notes (s)."""
    from piano_transcription.midi import make_notes

    rng = np.random.default_rng(seed)
    events = []
    for bar in range(8):
        for e in range(8):
            events.append((bar, e * 0.5, 0.5, 72 + [0, 2, 4, 5, 7, 5, 4, 2][e] + bar % 2))
        for b in range(4):
            for p in (48, 52, 55):
                events.append((bar, float(b), 1.0, p + (bar % 2) * 2))

    def time_at(x):  # seconds at beat x under the drifting tempo
        xs = np.linspace(0, x, 200)
        return np.trapezoid(60.0 / (100.0 - 12.0 * xs / 32.0), xs)

    rows = [(0.5 + time_at(bar * 4 + beat) + rng.normal(0, 0.01), 0.48 + time_at(bar * 4 + beat + dur), p, 80)
            for bar, beat, dur, p in events]
    return [(p, bar + 1, beat) for bar, beat, dur, p in events], make_notes(rows)


def score_matches(path, events) -> float:
    """Share of the score's notes found in a MusicXML file with the same pitch, bar and beat."""
    from collections import Counter

    import music21

    got = Counter()
    for n in music21.converter.parse(str(path)).recurse().notes:
        if n.tie is not None and n.tie.type in ("stop", "continue"):
            continue  # the continuation of a tied note is not a new note
        for pitch in n.pitches:
            got[(pitch.midi, n.measureNumber, round(float(n.offset) * 12) / 12)] += 1
    want = Counter(events)
    return sum((got & want).values()) / sum(want.values())


def test_score_of_performed_notes_keeps_pitch_bar_and_beat(tmp_path):
    from piano_transcription.music import track_beats
    from piano_transcription.score import quantize, split_hands, write_musicxml

    events, notes = score_performance()
    write_musicxml(notes, track_beats(notes), tmp_path / "s.musicxml")
    assert score_matches(tmp_path / "s.musicxml", events) >= 0.95
    np.testing.assert_allclose(quantize(np.array([0.26, 0.32, 0.68, 1.02])), [0.25, 1 / 3, 2 / 3, 1.0])
    left = split_hands(notes)
    assert np.all(left[notes[:, 2] < 60]) and not np.any(left[notes[:, 2] >= 72])


def accented_performance(beats_per_bar: int, pickup: int, bars: int = 10, seed: int = 0):
    """A piece whose bars are marked only by accents: a long bass note on each downbeat, short off-beat chords, a
    melody note on every beat, after ``pickup`` beats of melody alone; performed at 110 -> 100 BPM with 10 ms
    jitter.  Returns ``(events, notes)`` as :func:`score_performance`, bars counted as in the score (the pickup
    bar is bar 1)."""
    from piano_transcription.midi import make_notes

    rng = np.random.default_rng(seed)
    m = beats_per_bar
    first = 2 if pickup else 1
    events = [(first - 1, m - pickup + i, 1.0, 76 + i) for i in range(pickup)]
    for bar in range(bars):
        for b in range(m):
            events.append((first + bar, b, 1.0, 72 + (bar * m + b) % 7))
            if b == 0:
                events.append((first + bar, 0, float(m), 36 + bar % 5))
            else:
                events += [(first + bar, b, 0.5, p) for p in (55, 59)]
    total = bars * m + pickup

    def time_at(x):  # seconds at beat x (from the first note) under the drifting tempo
        xs = np.linspace(0, x, 200)
        return np.trapezoid(60.0 / (110.0 - 10.0 * xs / total), xs)

    def beat_of(bar, beat):
        return (bar - first) * m + beat + pickup

    rows = [(0.5 + time_at(beat_of(bar, beat)) + rng.normal(0, 0.01), 0.48 + time_at(beat_of(bar, beat) + dur), p,
             100 if beat == 0 and p < 48 else 70) for bar, beat, dur, p in events]
    return [(p, bar, beat) for bar, beat, dur, p in events], make_notes(rows)


@pytest.mark.parametrize("beats_per_bar,pickup", [(3, 0), (3, 1), (4, 2)])
def test_time_signature_and_downbeats_from_accents(tmp_path, beats_per_bar, pickup):
    import music21

    from piano_transcription.music import estimate_meter, track_beats
    from piano_transcription.score import downbeat_beats, write_musicxml

    events, notes = accented_performance(beats_per_bar, pickup)
    beats = track_beats(notes)
    m, first = estimate_meter(notes, downbeat_beats(notes, beats))
    assert (m, first) == (beats_per_bar, pickup)
    write_musicxml(notes, beats, tmp_path / "s.musicxml")
    signatures = {ts.ratioString for ts in music21.converter.parse(str(tmp_path / "s.musicxml")).recurse()
                  .getElementsByClass("TimeSignature")}
    assert signatures == {f"{beats_per_bar}/4"}
    assert score_matches(tmp_path / "s.musicxml", events) >= 0.9


def test_a_melody_over_its_accompaniment_gets_its_own_voice(tmp_path):
    """Right hand: a melody in half notes over an accompaniment in eighths; the melody is voice 1 of the treble
    staff, no voice holds two notes at once, and every note keeps its bar and beat."""
    import music21

    from piano_transcription.midi import make_notes
    from piano_transcription.music import track_beats
    from piano_transcription.score import write_musicxml

    rng = np.random.default_rng(2)
    events = []
    for bar in range(8):
        for h in range(2):
            events.append((bar + 1, 2.0 * h, 2.0, 79 + (bar * 2 + h) % 5))
        for e in range(8):
            events.append((bar + 1, e * 0.5, 0.5, (64, 67, 72, 67)[e % 4]))
        events.append((bar + 1, 0.0, 4.0, 43 + bar % 3))
    rows = [(0.5 + ((bar - 1) * 4 + beat) * 0.5 + rng.normal(0, 0.008), 0.48 + ((bar - 1) * 4 + beat + dur) * 0.5, p,
             90 if dur > 1 else 60) for bar, beat, dur, p in events]
    notes = make_notes(rows)
    write_musicxml(notes, track_beats(notes), tmp_path / "v.musicxml")
    assert score_matches(tmp_path / "v.musicxml", [(p, bar, beat) for bar, beat, dur, p in events]) >= 0.9
    treble = music21.converter.parse(str(tmp_path / "v.musicxml")).parts[0]
    melody = {p for _, _, dur, p in events if dur == 2.0}
    for m in treble.getElementsByClass("Measure"):
        assert len(m.voices) == 2
        upper = {p.midi for n in m.voices[0].notes for p in n.pitches}
        assert upper and upper <= melody
        for v in m.voices:
            spans = sorted((float(n.offset), float(n.offset + n.quarterLength)) for n in v.notes)
            assert all(a[1] <= b[0] + 1e-6 for a, b in zip(spans, spans[1:]))


def test_no_accents_keep_four_four_from_the_first_beat():
    from piano_transcription.music import estimate_meter, track_beats
    from piano_transcription.score import downbeat_beats

    for seed in (0, 1):  # chords on every beat, equal weight; the bass alternates every bar
        _, notes = score_performance(seed)
        assert estimate_meter(notes, downbeat_beats(notes, track_beats(notes))) == (4, 0)


@pytest.mark.slow
def test_score_round_trip_through_audio(tmp_path):
    """Score -> performed MIDI (jitter, tempo drift) -> FluidSynth audio -> transcription (shipped model) ->
    MusicXML: the share of the score's notes that come back with the right pitch, bar and beat."""
    from piano_transcription.corpus.synth import render_fluidsynth
    from piano_transcription.midi import notes_to_pretty_midi

    events, notes = score_performance(1)
    wav = tmp_path / "performance.wav"
    sf.write(wav, render_fluidsynth(notes_to_pretty_midi(notes)), 16000)
    code = main([str(wav), "-o", str(tmp_path / "out"), "--musicxml", "-q"])
    assert code == 0
    share = score_matches(tmp_path / "out" / "performance.musicxml", events)
    print(f"score round trip: {share:.3f} of the notes with the right pitch, bar and beat")
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "out" / "performance.mid"))
    assert share >= 0.9, (f"{len(pm.instruments[0].notes)} notes transcribed of {len(notes)}, first tempi "
                          f"{pm.get_tempo_changes()[1][:4].round(1).tolist()}, {len(pm.get_beats())} beats")


def test_tune_thresholds_writes_them_beside_the_model(prepared, tiny_model_path, tmp_path):
    import json
    import shutil

    model = tmp_path / "m.keras"
    shutil.copy(tiny_model_path, model)
    assert main(["tune-thresholds", str(model), str(prepared)]) == 0
    tuned = json.loads((tmp_path / "m.thresholds.json").read_text())
    assert len(tuned["onset"]) == len(tuned["frame"]) == 88


def test_parallel_windows_write_the_same_midi(tmp_path):
    """``--parallel-windows 2`` (two interpreters, windows side by side) writes the MIDI of one interpreter, on a
    recording of several windows; a count below 1 is refused before any work."""
    from piano_transcription.assets import DEMO_AUDIO

    audio, sr = sf.read(DEMO_AUDIO, dtype="float32")
    sf.write(tmp_path / "long.wav", np.concatenate([audio, audio]), sr)  # 60 s: 4 windows of 20 s
    outs = {}
    for n in ("1", "2"):
        assert main([str(tmp_path / "long.wav"), "-o", str(tmp_path / n), "-q", "--parallel-windows", n]) == 0
        outs[n] = (tmp_path / n / "long.mid").read_bytes()
    assert outs["1"] == outs["2"]
    with pytest.raises(SystemExit):
        main([str(tmp_path / "long.wav"), "-o", str(tmp_path / "0"), "--parallel-windows", "0"])
    assert not (tmp_path / "0").exists()
