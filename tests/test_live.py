"""Live transcription without a microphone: the file-fed path, the device path with a stand-in stream, the MIDI
sink with an in-memory port, a real virtual MIDI port where the machine has one, and the bad cases."""

import os
import signal
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from piano_transcription.assets import DEFAULT_LIVE_TFLITE, DEFAULT_TFLITE, DEMO_AUDIO
from piano_transcription.live import LiveTranscriber, events_to_notes
from piano_transcription.live.cli import run_live
from piano_transcription.live.transcriber import HALF_WINDOW, HOP_FRAMES, LOOKAHEAD_FRAMES

CLIP_SECONDS = 8.0
FPS = 31.25


def note_f1(ref, est) -> float:
    from piano_transcription.training.metrics import note_metrics

    return note_metrics(ref, est)["note_f1"]


@pytest.fixture(scope="module")
def clip():
    """The first 8 s of the demo (16 kHz mono, the demo's own rate) and the same audio at 44.1 kHz stereo."""
    import soxr

    audio, sr = sf.read(str(DEMO_AUDIO), dtype="float32", frames=int(CLIP_SECONDS * 16000))
    assert sr == 16000 and audio.ndim == 1
    stereo = soxr.resample(audio, 16000, 44100).astype(np.float32)
    return audio, np.stack([stereo, 0.8 * stereo], axis=1)


@pytest.fixture(scope="module")
def live_model():
    from piano_transcription.predictor import load_predictor

    return load_predictor(DEFAULT_LIVE_TFLITE)


@pytest.fixture(scope="module")
def file_take(clip, live_model):
    """The clip through the live path in 1024-sample blocks: (transcriber, events)."""
    audio, _ = clip
    lt = LiveTranscriber(live_model, 16000)
    events = list(lt.run(audio[i:i + 1024] for i in range(0, len(audio), 1024)))
    return lt, events


def write_clip(path, clip44):
    sf.write(str(path), clip44, 44100, subtype="PCM_16")
    return path


def test_decoder_reports_the_notes_it_begins():
    from piano_transcription.decode import StreamingDecoder, decode_notes

    rng = np.random.default_rng(3)
    frame = rng.random((300, 88)) ** 3
    onset = rng.random((300, 88)) ** 8
    velocity = rng.random((300, 88))
    dec, begun = StreamingDecoder(0.5, 0.3), []
    for a in range(0, 300, 37):
        dec.feed(frame[a:a + 37], onset[a:a + 37], velocity[a:a + 37])
        begun.append(dec.begun)
    begun = np.concatenate(begun)
    whole = decode_notes(frame, onset, velocity, 0.5, 0.3)
    assert len(whole) > 20
    order = np.lexsort((begun[:, 1], begun[:, 0]))
    np.testing.assert_allclose(begun[order], whole[:, [0, 2, 3]])


def test_live_events_match_offline_on_the_audio_clock(clip, live_model, file_take):
    from piano_transcription.predictor import load_predictor
    from piano_transcription.transcribe import transcribe

    audio, stereo = clip
    lt, events = file_take
    notes = lt.notes
    assert len(notes) > 20
    np.testing.assert_allclose(events_to_notes(events), notes)  # the events carry the whole take
    offline = transcribe(audio, load_predictor(DEFAULT_TFLITE), sample_rate=16000).notes
    assert note_f1(offline, notes) > 0.95
    on = [e for e in events if e.kind == "on"]
    decided = np.array([e.decided_at for e in on])
    lag = decided - np.array([e.time for e in on])
    assert np.all(np.diff([e.decided_at for e in events]) >= 0)  # emitted in the order decided
    streamed = decided < CLIP_SECONDS  # the rest were decided by finish(), at the end of the audio
    assert lag[streamed].min() >= HALF_WINDOW / 16000  # never decided before the audio that shows it
    block = 1024 / 16000
    assert lag[streamed].max() <= (HOP_FRAMES + LOOKAHEAD_FRAMES) / FPS + HALF_WINDOW / 16000 + block + 1e-6
    for pitch in {e.pitch for e in events}:  # per key: on, off, on, off...; a re-struck key ends its note first
        kinds = [e.kind for e in events if e.pitch == pitch]
        assert kinds == ["on", "off"] * (len(kinds) // 2)
    # another block size and another rate (44.1 kHz stereo, resampled as a stream): the same notes
    other = LiveTranscriber(live_model, 16000)
    list(other.run(audio[i:i + 333] for i in range(0, len(audio), 333)))
    np.testing.assert_array_equal(other.notes, notes)
    resampled = LiveTranscriber(live_model, 44100)
    list(resampled.run(stereo[i:i + 700] for i in range(0, len(stereo), 700)))
    assert resampled.time == pytest.approx(CLIP_SECONDS)
    assert note_f1(notes, resampled.notes) > 0.97


def test_cli_input_file_writes_the_take_and_never_overwrites(tmp_path, clip, live_model, file_take, capsys):
    import pretty_midi

    wav = write_clip(tmp_path / "played.wav", clip[1])
    take, rec = tmp_path / "take.mid", tmp_path / "take.wav"
    argv = ["--input", str(wav), "-o", str(take), "--record", str(rec), "--model", str(DEFAULT_LIVE_TFLITE)]
    assert run_live(argv) == 0
    out = capsys.readouterr().out
    assert out.count(" vel ") >= 20 and out.strip().endswith("notes")  # the scrolling note list
    pm = pretty_midi.PrettyMIDI(str(take))
    notes = np.array([(n.start, n.end, n.pitch, n.velocity) for n in pm.instruments[0].notes])
    assert note_f1(file_take[0].notes, notes) > 0.97
    assert pm.key_signature_changes and pm.get_tempo_changes()[0].size >= 1
    recorded, sr = sf.read(str(rec), dtype="float32")
    assert sr == 44100 and recorded.shape == clip[1].shape
    assert np.max(np.abs(recorded - clip[1])) < 1e-3
    before = take.read_bytes()
    assert run_live(argv) == 2  # existing files are kept
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("piano-transcribe: ") and "--overwrite" in err[0]
    assert take.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


class MemoryPort:
    """An in-memory MIDI output port: what a sink sent."""

    def __init__(self):
        self.messages = []

    def send(self, message):
        self.messages.append(message)


def fake_sounddevice(blocks=(), devices=None, rate=44100, interrupt=True):
    """A stand-in for the sounddevice module: ``query_devices``, ``default`` and an ``InputStream`` whose thread plays
    ``blocks`` into the callback as fast as they come, then presses Ctrl-C (SIGINT) when ``interrupt``."""
    if devices is None:
        devices = [{"name": "Built-in Output", "max_input_channels": 0, "default_samplerate": 48000.0},
                   {"name": "Fake USB Mic", "max_input_channels": 2, "default_samplerate": float(rate)}]

    class Stream:
        opened = []

        def __init__(self, device, channels, samplerate, blocksize, dtype, callback):
            self.kw = dict(device=device, channels=channels, samplerate=samplerate, blocksize=blocksize)
            self.callback = callback
            Stream.opened.append(self)
            self.thread = threading.Thread(target=self.play, daemon=True)

        def play(self):
            for b in blocks:
                self.callback(b[:, :self.kw["channels"]], len(b), None, None)
            if interrupt:
                time.sleep(0.05)
                os.kill(os.getpid(), signal.SIGINT)

        def __enter__(self):
            self.thread.start()
            return self

        def __exit__(self, *exc):
            self.thread.join(timeout=10)

    class SD:
        InputStream = Stream

        class default:
            device = [1, 0]

        @staticmethod
        def query_devices():
            return devices

    return SD


def test_device_path_with_a_stand_in_stream_loses_nothing_at_ctrl_c(tmp_path, clip, file_take, capsys):
    stereo = clip[1]
    blocks = [stereo[i:i + 512] for i in range(0, len(stereo), 512)]
    sd = fake_sounddevice(blocks)
    port = MemoryPort()
    take, rec = tmp_path / "take.mid", tmp_path / "take.wav"
    status = run_live(["--device", "usb mic", "--channels", "2", "-o", str(take), "--record", str(rec), "-q",
                       "--model", str(DEFAULT_LIVE_TFLITE)], audio_backend=sd, midi_port=port)
    assert status == 0, capsys.readouterr().err
    stream = sd.InputStream.opened[-1]
    assert stream.kw == dict(device=1, channels=2, samplerate=44100, blocksize=512)
    recorded, sr = sf.read(str(rec), dtype="float32")
    assert sr == 44100 and len(recorded) == len(stereo)  # every block played before Ctrl-C was kept
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(take))
    notes = np.array([(n.start, n.end, n.pitch, n.velocity) for n in pm.instruments[0].notes])
    assert note_f1(file_take[0].notes, notes) > 0.97
    # the MIDI port got every note: a note_on and then its note_off per note
    kinds = [(m.type, m.note) for m in port.messages]
    assert sum(k == "note_on" for k, _ in kinds) == len(notes) == sum(k == "note_off" for k, _ in kinds)
    for pitch in {p for _, p in kinds}:
        seq = [k for k, p in kinds if p == pitch]
        assert seq == ["note_on", "note_off"] * (len(seq) // 2)


def test_dropped_audio_is_counted_and_the_clock_kept(clip, live_model):
    from piano_transcription.live.session import run_take
    from piano_transcription.live.sources import DeviceSource

    stereo = clip[1][: 2 * 44100]
    blocks = [stereo[i:i + 512] for i in range(0, len(stereo), 512)]

    class Burst:  # a device that delivers everything at once, before the consumer reads anything
        def __init__(self, callback, **kw):
            self.callback = callback

        def __enter__(self):
            for b in blocks:
                self.callback(b[:, :1], len(b), None, None)
            source.stop.set()
            return self

        def __exit__(self, *exc):
            pass

    sd = fake_sounddevice()
    sd.InputStream = Burst
    source = DeviceSource(None, backend=sd, max_backlog=0.1)
    warnings = []
    lt = LiveTranscriber(live_model, source.sample_rate)
    result = run_take(source, lt, warn=warnings.append)
    kept = source.queue.maxsize
    assert result.dropped_blocks == len(blocks) - kept > 0
    assert lt.time == pytest.approx(len(stereo) / 44100)  # dropped audio became silence of the same length
    assert warnings and f"{len(blocks) - kept} audio blocks" in warnings[-1]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("piano-transcribe: "), err
    return err[0]


def test_bad_cases_are_one_line(tmp_path, capsys, monkeypatch):
    none = fake_sounddevice(devices=[{"name": "HDMI", "max_input_channels": 0, "default_samplerate": 48000.0}])
    assert run_live(["-q"], audio_backend=none) == 2
    assert "no audio input device" in one_error_line(capsys)
    assert run_live(["--device", "piano", "-q"], audio_backend=fake_sounddevice()) == 2
    line = one_error_line(capsys)
    assert "unknown input device 'piano'" in line and "Fake USB Mic" in line and "HDMI" not in line
    assert run_live(["--device", "7", "-q"], audio_backend=fake_sounddevice()) == 2
    assert "no input device number 7" in one_error_line(capsys)
    assert run_live(["--input", str(tmp_path / "missing.wav")]) == 2
    assert "no such file" in one_error_line(capsys)
    assert run_live(["--input", str(tmp_path), "--window", "0"]) == 2
    assert "--window" in one_error_line(capsys)
    assert run_live(["--realtime"]) == 2
    one_error_line(capsys)

    import mido

    def no_subsystem():
        raise SystemError("MidiOutAlsa::initialize: error creating ALSA sequencer client object.")

    monkeypatch.setattr(mido, "get_output_names", no_subsystem)
    assert run_live(["--midi-port", "Synth", "--input", str(DEMO_AUDIO)]) == 2
    assert "no MIDI subsystem" in one_error_line(capsys)
    monkeypatch.setattr(mido, "get_output_names", lambda: ["Midi Through:Midi Through Port-0 14:0"])
    assert run_live(["--midi-port", "Synth", "--input", str(DEMO_AUDIO)]) == 2
    assert "Midi Through" in one_error_line(capsys)


def test_virtual_midi_port_where_the_system_has_one(file_take):
    rtmidi = pytest.importorskip("rtmidi")
    try:
        rtmidi.MidiOut().open_virtual_port("piano-transcribe-probe").close_port()
    except Exception as exc:  # noqa: BLE001 - rtmidi's SystemError subclasses
        pytest.skip(f"no virtual MIDI ports on this machine ({exc})")
    import mido

    from piano_transcription.live.sinks import MidiPortSink, open_midi_port

    port = open_midi_port(virtual="piano-transcribe-test")
    names = [n for n in mido.get_input_names() if "piano-transcribe-test" in n]
    with mido.open_input(names[0]) as inport:
        sink = MidiPortSink(port)
        events = file_take[1]
        sink.send(events)
        time.sleep(0.2)
        received = list(inport.iter_pending())
        sink.close()
    assert [(m.type, m.note) for m in received] == [("note_on" if e.kind == "on" else "note_off", e.pitch)
                                                    for e in events]


def test_no_midi_subsystem_refuses_the_port_in_one_line(tmp_path, capfd):
    rtmidi = pytest.importorskip("rtmidi")
    try:
        rtmidi.MidiOut().close_port()
        pytest.skip("this machine has a MIDI subsystem")
    except Exception:  # noqa: BLE001 - rtmidi's SystemError: no ALSA sequencer, as here
        pass
    capfd.readouterr()
    take = tmp_path / "take.mid"
    assert run_live(["--virtual-port", "--input", str(DEMO_AUDIO), "-o", str(take)]) == 2
    err = capfd.readouterr().err.strip().splitlines()  # file descriptor 2: ALSA's own lines would show here
    assert len(err) == 1 and err[0].startswith("piano-transcribe: no MIDI subsystem"), err
    assert not take.exists()


def test_causal_stream_equals_the_whole_sequence_model():
    """The causal mode's block-by-block frames (carried LSTM states, 3 frames of convolution context) are the
    whole-sequence model's on the same log-mel."""
    import keras

    from piano_transcription.audio import log_mel
    from piano_transcription.live.causal import CausalFrames, load_causal
    from piano_transcription.model import build_model

    keras.utils.set_random_seed(4)
    model = build_model("tiny_causal")
    rng = np.random.default_rng(5)
    audio = (0.3 * rng.standard_normal(16000 * 3)).astype(np.float32)
    audio[:600] *= 3.0  # the loudest bin in frame 0: the running dB floor is the whole clip's from the start
    predictor = load_causal(model)
    frames = CausalFrames(predictor, block=3, gain=1.0)
    chunks = [c for i in range(0, len(audio), 700) for c in frames.feed(audio[i:i + 700])] + frames.finish()
    whole = model(log_mel(audio)[None], training=False)
    for name in ("onset", "offset", "frame", "velocity"):
        streamed = np.concatenate([c[name] for c in chunks])
        np.testing.assert_allclose(streamed, np.asarray(whole[name])[0], atol=2e-5)
    with pytest.raises(ValueError, match="not a causal model"):
        load_causal(build_model("tiny"))


def test_causal_model_starts_as_the_forward_half_of_the_bidirectional_one():
    import keras

    from piano_transcription.model import build_model, is_causal
    from piano_transcription.training.causal import causal_from_bidirectional

    keras.utils.set_random_seed(6)
    source = build_model("tiny")
    model = causal_from_bidirectional(source, "tiny_causal")
    assert is_causal(model) and not is_causal(source)
    x = np.random.default_rng(7).normal(-40, 15, (1, 40, 229)).astype(np.float32)
    features = keras.Model(source.inputs, source.get_layer("onsets_lstm").input)(x)
    forward = np.asarray(source.get_layer("onsets_lstm").forward_layer(features))[0]
    kernel, bias = source.get_layer("onsets_logits").get_weights()
    want = 1 / (1 + np.exp(-(forward @ kernel[:forward.shape[1]] + bias)))
    np.testing.assert_allclose(np.asarray(model(x, training=False)["onset"])[0], want, atol=1e-5)
    later = x.copy()
    later[0, 30:] += 20.0  # a causal model's early frames do not depend on later audio (the convs reach 3 frames)
    np.testing.assert_allclose(np.asarray(model(later, training=False)["frame"])[0, :27],
                               np.asarray(model(x, training=False)["frame"])[0, :27], atol=1e-6)


def test_causal_mode_keras_and_its_tflite_step_model(tmp_path, clip, file_take, capsys):
    """The shipped causal model through the CLI (Keras) and its TFLite step model (the light install's) on the clip:
    notes decided within 3 frames + 64 ms + one block of their onset, and the two backends agree."""
    from piano_transcription.assets import DEFAULT_CAUSAL, DEFAULT_CAUSAL_TFLITE
    from piano_transcription.live.causal import BLOCK_FRAMES, CONV_REACH

    wav = tmp_path / "played.wav"
    sf.write(str(wav), clip[0], 16000, subtype="FLOAT")
    take = tmp_path / "take.mid"
    assert run_live(["--input", str(wav), "--mode", "causal", "-o", str(take), "-q"]) == 0
    assert f"causal mode ({DEFAULT_CAUSAL.name})" in capsys.readouterr().err
    import pretty_midi

    keras_notes = np.array([(n.start, n.end, n.pitch, n.velocity)
                            for n in pretty_midi.PrettyMIDI(str(take)).instruments[0].notes])
    assert note_f1(file_take[0].notes, keras_notes) > 0.8  # the causal model against the lookahead mode
    lite = LiveTranscriber(DEFAULT_CAUSAL_TFLITE, 16000, mode="causal")
    events = list(lite.run(clip[0][i:i + 512] for i in range(0, len(clip[0]), 512)))
    assert lite.predictor.backend == "tflite"
    # float16 weights, and the stream's first and last 3 frames padded with silence instead of the convolutions' zeros
    assert note_f1(keras_notes, lite.notes) > 0.9
    lag = np.array([e.decided_at - e.time for e in events if e.kind == "on" and e.decided_at < CLIP_SECONDS])
    assert lag.min() >= HALF_WINDOW / 16000
    assert lag.max() <= (CONV_REACH + BLOCK_FRAMES) / FPS + HALF_WINDOW / 16000 + 512 / 16000 + 1e-6
    assert run_live(["--input", str(wav), "--mode", "causal", "--model", str(DEFAULT_LIVE_TFLITE)]) == 2
    assert "not a causal model" in one_error_line(capsys)
