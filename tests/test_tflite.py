import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from piano_transcription.tflite import (STEP_SAMPLES, WINDOW_FRAMES, WINDOW_SAMPLES, TFLiteModel, TFLiteModelError,
                                        export_tflite)


@pytest.fixture(scope="session")
def exported(built_once):
    """A tiny model with non-trivial batch-norm statistics, and its float32 and quantized TFLite exports."""
    from piano_transcription.model import build_model, load_model, save_model

    def build(folder):
        import keras

        keras.utils.set_random_seed(1)
        model = build_model("tiny")
        # give the BatchNorm statistics non-trivial values, so that inference really uses them
        for layer in model.layers:
            if "bn" in layer.name:
                beta, mean, var = layer.get_weights()
                layer.set_weights([beta + 0.1, mean + 0.05, var * 1.5])
        save_model(model, folder / "m.keras")
        export_tflite(model, folder / "m.tflite", frames=WINDOW_FRAMES)  # Magenta's contract
        export_tflite(model, folder / "q.tflite", quantize=True, frames=WINDOW_FRAMES)
        export_tflite(model, folder / "long.tflite")  # the default: 626-frame windows

    d = built_once("tflite", build)
    return load_model(d / "m.keras"), d / "m.tflite", d / "q.tflite"


def test_in_graph_mel_matches_librosa(librosa):
    import tensorflow as tf

    from piano_transcription.audio import mel_filters
    from piano_transcription.tflite import mel_front_end

    rng = np.random.default_rng(0)
    t = np.arange(WINDOW_SAMPLES) / 16000
    x = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    ours = mel_front_end(tf.constant(x[None]), tf.constant(mel_filters().T.astype(np.float32))).numpy()[0]
    spec = np.abs(librosa.stft(x, n_fft=2048, hop_length=512, center=False)) ** 2
    ref = librosa.power_to_db(mel_filters() @ spec, ref=1.0, top_db=80.0).T
    assert ours.shape == (WINDOW_FRAMES, 229) == ref.shape
    assert np.max(np.abs(ours - ref)) < 0.01  # dB


def test_exported_model_matches_keras_on_the_same_windows(exported):
    import tensorflow as tf

    from piano_transcription.tflite import raw_audio_model

    model, path, qpath = exported
    lite = TFLiteModel(path)
    x = np.random.default_rng(2).normal(0, 0.2, WINDOW_SAMPLES).astype(np.float32)
    ref = {k: np.asarray(v)[0] for k, v in raw_audio_model(model)(tf.constant(x)).items()}
    assert tuple(lite.input["shape"]) == (WINDOW_SAMPLES,)  # as Magenta's onsets_frames_wavinput.tflite
    out = lite.run_window(x)
    for name in ("frame_logits", "onset_logits", "offset_logits", "velocity_values"):
        assert out[name].shape == (32, 88)
        np.testing.assert_allclose(out[name], ref[name], atol=1e-4)
    assert os.path.getsize(qpath) < os.path.getsize(path)
    q = TFLiteModel(qpath).run_window(x)
    assert np.corrcoef(q["frame_logits"].ravel(), out["frame_logits"].ravel())[0, 1] > 0.95


def test_windowed_inference_frame_count_and_alignment(exported):
    _, path, _ = exported
    lite = TFLiteModel(path)
    for n in (1000, STEP_SAMPLES, 3 * STEP_SAMPLES + 123):
        rolls = lite.predict(np.zeros(n, np.float32))
        assert all(r.shape == (1 + n // 512, 88) for r in rolls.values())
        assert 0 <= rolls["frame"].min() and rolls["frame"].max() <= 1


def test_long_windows_give_the_keras_rolls(exported):
    """Our default export (626-frame windows, read overlapping as in the Keras path) gives the Keras model's
    rolls on a recording of several windows, the seams included."""
    from piano_transcription.audio import AudioSource
    from piano_transcription.inference import MARGIN_FRAMES
    from piano_transcription.predictor import KerasPredictor, TFLitePredictor
    from piano_transcription.tflite import window_samples

    model, path, _ = exported
    lite = TFLitePredictor(path.with_name("long.tflite"))
    assert tuple(lite.lite.input["shape"]) == (window_samples(626),) and lite.lite.margin == MARGIN_FRAMES
    x = np.random.default_rng(3).normal(0, 0.1, 16000 * 45).astype(np.float32)  # 45 s: 3 windows
    x *= np.repeat(np.random.default_rng(4).uniform(0.05, 1, 45), 16000)  # a level that changes each second
    ours = lite.predict(AudioSource(x, 16000))
    ref = KerasPredictor(model).predict(AudioSource(x, 16000))
    assert set(ours) == set(ref)
    for name in ref:
        assert ours[name].shape == ref[name].shape == (1 + len(x) // 512, ref[name].shape[1])
        # TFLite's fused LSTM kernel rounds a little differently over 626 steps (this random model's largest
        # difference: 0.007; on the shipped model's real_dev transcriptions: -0.001 note F1)
        np.testing.assert_allclose(ours[name], ref[name], atol=1e-2)
        assert np.mean(np.abs(ours[name] - ref[name])) < 2e-4, name


def test_windows_side_by_side_give_one_interpreters_rolls(exported):
    """Several single-threaded interpreters, each running every n-th window at once, give the rolls of one
    interpreter bit for bit and in order, for any number of them (fewer or more than the windows)."""
    from piano_transcription.tflite import TFLiteModel, parallelism

    _, path, _ = exported
    x = np.random.default_rng(5).normal(0, 0.1, 16000 * 75).astype(np.float32)  # 5 windows of 20 s
    one = TFLiteModel(path.with_name("long.tflite"), num_threads=1)
    assert one.n_interpreters == 1
    ref = one.predict(x)
    for n in (2, 3, 8):
        many = TFLiteModel(path.with_name("long.tflite"), interpreters=n)
        rolls = many.predict(x)
        assert len(many._interpreters) == min(n, 5)
        for name in ref:
            np.testing.assert_array_equal(rolls[name], ref[name])
    assert parallelism(num_threads=3) == (1, 3)  # an explicit thread count: one interpreter
    assert parallelism()[0] == 1 and parallelism(interpreters=2, num_threads=1) == (2, 1)
    with pytest.raises(ValueError, match="at least 1"):
        parallelism(interpreters=0)


def test_exports_use_the_fused_lstm_kernel(exported):
    """No WHILE loop of per-step subgraphs in the file (Keras 3's LSTM): one fused op per direction."""
    model, path, _ = exported
    lite = TFLiteModel(path.with_name("long.tflite"))
    ops = [d["op_name"] for d in lite.interpreter._get_ops_details()]
    assert "WHILE" not in ops and ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 2 * sum(
        type(layer).__name__ == "Bidirectional" for layer in model.layers)


def test_a_note_across_tflite_windows_comes_out_once():
    from piano_transcription.decode import decode_notes

    class Fake(TFLiteModel):  # the stitching only: outputs say "note on" for frames 20..50
        def __init__(self):
            self.k = 0

        def run_window(self, window):
            frames = np.arange(self.k * 32, self.k * 32 + 32)
            self.k += 1
            on = ((frames >= 20) & (frames < 50))[:, None] * np.ones((1, 88))
            onset = ((frames >= 20) & (frames < 22))[:, None] * np.ones((1, 88))
            return {"frame_logits": 20 * on - 10, "onset_logits": 20 * onset - 10, "offset_logits": -10 + 0 * on,
                    "velocity_values": 0 * on}

    rolls = Fake().predict(np.zeros(3 * STEP_SAMPLES, np.float32))
    notes = decode_notes(rolls["frame"], rolls["onset"])
    assert len(notes[notes[:, 2] == 60]) == 1


def test_bad_model_files(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(TFLiteModelError):
        TFLiteModel(bad)
    with pytest.raises(FileNotFoundError):
        TFLiteModel(tmp_path / "missing.tflite")


def test_wrong_signature_is_rejected(tmp_path):
    import keras
    import tensorflow as tf

    inp = keras.Input(shape=(100,), batch_size=1)
    m = keras.Model(inp, keras.layers.Dense(3)(inp))
    path = tmp_path / "other.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(m).convert())
    with pytest.raises(TFLiteModelError, match="17920"):
        TFLiteModel(path)


def test_light_path_runs_without_tensorflow_and_librosa(exported, tmp_path):
    """The CLI with --tflite in a subprocess where importing tensorflow or librosa fails."""
    import soundfile as sf

    _, path, _ = exported
    wav = tmp_path / "a.wav"
    sf.write(wav, np.random.default_rng(0).normal(0, 0.1, 40000).astype(np.float32), 16000)
    blocker = tmp_path / "block"
    blocker.mkdir()
    for mod in ("tensorflow", "librosa", "keras"):
        (blocker / f"{mod}.py").write_text(f"raise ImportError('{mod} is blocked in this test')\n")
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(blocker)!r})
        from piano_transcription.cli import main
        rc = main([{str(wav)!r}, "--tflite", {str(path)!r}, "-o", {str(tmp_path / 'out')!r}, "-q"])
        assert "tensorflow" not in sys.modules or sys.modules["tensorflow"] is None
        sys.exit(rc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out" / "a.mid").exists()


def test_pedal_and_key_heads_are_exported(tmp_path):
    import soundfile as sf

    from piano_transcription.model import build_model
    from piano_transcription.predictor import load_predictor
    from piano_transcription.transcribe import transcribe

    path = export_tflite(build_model("tiny_keys"), tmp_path / "p.tflite")
    lite = TFLiteModel(path)
    assert lite.has_pedal and lite.has_keys
    out = lite.run_window(np.zeros(lite.input["shape"], np.float32))
    assert out["pedal_logits"].shape == (626, 3) and out["keys_logits"].shape == (626, 88)
    wav = tmp_path / "a.wav"
    sf.write(wav, np.random.default_rng(0).normal(0, 0.1, 40000).astype(np.float32), 16000)
    predictor = load_predictor(path)
    assert predictor.backend == "tflite" and predictor.has_pedal and predictor.has_keys
    result = transcribe(wav, predictor, keep_rolls=True, durations="keys")
    assert result.rolls["pedal"].shape == (1 + 40000 // 512, 3) and result.pedal.shape[1] == 2
    assert result.rolls["keys"].shape == (1 + 40000 // 512, 88)
