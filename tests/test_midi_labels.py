import numpy as np
import pretty_midi
import pytest

from piano_transcription.constants import FRAMES_PER_SECOND
from piano_transcription.training.labels import notes_to_rolls
from piano_transcription.midi import MidiError, apply_sustain_pedal, make_notes, pedal_intervals, read_midi


def write(tmp_path, notes, pedal=(), name="a.mid", program=0, drums=()):
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program)
    for s, e, p, v in notes:
        inst.notes.append(pretty_midi.Note(v, p, s, e))
    for t, v in pedal:
        inst.control_changes.append(pretty_midi.ControlChange(64, v, t))
    pm.instruments.append(inst)
    if drums:
        d = pretty_midi.Instrument(0, is_drum=True)
        d.notes += [pretty_midi.Note(100, p, s, e) for s, e, p in drums]
        pm.instruments.append(d)
    path = tmp_path / name
    pm.write(str(path))
    return path


def test_sustain_extends_until_pedal_up():
    notes = make_notes([(0.0, 0.5, 60, 80)])
    out = apply_sustain_pedal(notes, pedal_intervals([(0.2, 100), (2.0, 0)], end_time=3.0))
    assert out[0, 1] == pytest.approx(2.0)


def test_pedal_already_down_at_note_on():
    notes = make_notes([(1.0, 1.2, 60, 80), (3.0, 3.5, 62, 80)])
    out = apply_sustain_pedal(notes, pedal_intervals([(0.5, 127), (2.5, 0)], end_time=4.0))
    assert out[0, 1] == pytest.approx(2.5)  # released under the pedal: held to pedal-up
    assert out[1, 1] == pytest.approx(3.5)  # after the pedal: unchanged


def test_restrike_under_pedal_ends_previous_note():
    notes = make_notes([(0.0, 0.3, 60, 80), (1.0, 1.3, 60, 90), (0.0, 0.3, 64, 80)])
    out = apply_sustain_pedal(notes, pedal_intervals([(0.1, 127), (3.0, 0)], end_time=4.0))
    c = out[out[:, 2] == 60]
    assert c[0, 1] == pytest.approx(1.0)  # cut by the re-strike
    assert c[1, 1] == pytest.approx(3.0)  # the second one is held to pedal-up
    assert out[out[:, 2] == 64][0, 1] == pytest.approx(3.0)


def test_pedal_never_released_lasts_to_the_end(tmp_path):
    path = write(tmp_path, [(0.0, 0.5, 60, 80), (4.0, 5.0, 72, 80)], pedal=[(0.1, 127)])
    notes = read_midi(path)
    assert notes[0, 1] == pytest.approx(5.0, abs=1e-3)  # the last event of the file
    raw = read_midi(path, apply_sustain=False)
    assert raw[0, 1] == pytest.approx(0.5, abs=1e-3)


def test_note_released_exactly_at_pedal_up_is_not_extended():
    out = apply_sustain_pedal(make_notes([(0.0, 1.0, 60, 80)]), np.array([[0.5, 1.0]]))
    assert out[0, 1] == pytest.approx(1.0)


def test_read_midi_merges_tracks_drops_drums_and_out_of_range(tmp_path):
    pm = pretty_midi.PrettyMIDI()
    for prog, pitch in ((0, 60), (1, 64)):
        inst = pretty_midi.Instrument(prog)
        inst.notes.append(pretty_midi.Note(80, pitch, 0.0, 1.0))
        pm.instruments.append(inst)
    pm.instruments[0].notes.append(pretty_midi.Note(80, 10, 0.0, 1.0))  # below A0
    path = tmp_path / "m.mid"
    pm.write(str(path))
    with pytest.warns(UserWarning, match="outside the piano range"):
        notes = read_midi(path)
    assert sorted(notes[:, 2].tolist()) == [60, 64]


def test_midi_errors(tmp_path):
    with pytest.raises(MidiError, match="no such file"):
        read_midi(tmp_path / "missing.mid")
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd garbage")
    with pytest.raises(MidiError, match="cannot read"):
        read_midi(bad)
    with pytest.raises(MidiError, match="no notes"):
        read_midi(write(tmp_path, [], drums=[(0.0, 1.0, 36)], name="drums.mid"))


def test_rolls_follow_magenta_conventions():
    fps = FRAMES_PER_SECOND
    notes = make_notes([(0.1, 0.5, 21, 64), (0.5, 1.0, 108, 127)])
    r = notes_to_rolls(notes)
    assert r.frames.shape == (int(1.0 * fps + 1), 88)
    # frames: int(start*fps) .. ceil(end*fps) - 1
    assert np.flatnonzero(r.frames[:, 0]).tolist() == list(range(int(0.1 * fps), int(np.ceil(0.5 * fps))))
    # onsets: 32 ms from the onset -> two frames
    assert np.flatnonzero(r.onsets[:, 0]).tolist() == [3, 4]
    assert np.flatnonzero(r.onsets[:, 87]).tolist() == [15, 16]
    # offsets: 32 ms after the note end (the last note: clipped to total_time - 32 ms)
    assert np.flatnonzero(r.offsets[:, 0]).tolist() == [15, 16]
    assert np.flatnonzero(r.offsets[:, 87]).tolist() == [30, 31]
    # velocities on the onset frames, divided by the piece's maximum
    assert r.velocities[3, 0] == pytest.approx(64 / 127)
    assert r.velocities[15, 87] == pytest.approx(1.0)
    assert r.velocities[5, 0] == 0.0
    assert notes_to_rolls(notes, n_frames=100).frames.shape == (100, 88)


def test_rolls_agree_with_magenta_oracle_when_available():
    pytest.importorskip("note_seq")
    from note_seq import sequences_lib
    from note_seq.protobuf import music_pb2

    rng = np.random.default_rng(1)
    seq = music_pb2.NoteSequence()
    rows = []
    for _ in range(60):
        s = float(rng.uniform(0, 10))
        e = s + float(rng.uniform(0.05, 2))
        p, v = int(rng.integers(21, 109)), int(rng.integers(1, 128))
        seq.notes.add(start_time=s, end_time=e, pitch=p, velocity=v)
        rows.append((s, e, p, v))
    seq.total_time = max(r[1] for r in rows)
    ref = sequences_lib.sequence_to_pianoroll(seq, FRAMES_PER_SECOND, 21, 108, max_velocity=max(r[3] for r in rows),
                                              onset_mode="length_ms", onset_length_ms=32, offset_length_ms=32)
    ours = notes_to_rolls(make_notes(rows))
    np.testing.assert_array_equal(ours.frames, ref.active)
    np.testing.assert_array_equal(ours.onsets, ref.onsets)
    np.testing.assert_array_equal(ours.offsets, ref.offsets)


def test_sustain_agrees_with_magenta_oracle_when_available():
    pytest.importorskip("note_seq")
    from note_seq import sequences_lib
    from note_seq.protobuf import music_pb2

    rng = np.random.default_rng(4)
    seq = music_pb2.NoteSequence()
    rows, pedal = [], []
    for _ in range(200):
        s = float(np.round(rng.uniform(0, 30), 3))
        e = float(np.round(s + rng.uniform(0.05, 1.5), 3))
        p, v = int(rng.integers(40, 80)), int(rng.integers(1, 128))
        seq.notes.add(start_time=s, end_time=e, pitch=p, velocity=v)
        rows.append((s, e, p, v))
    t = 0.0
    while t < 30:
        t += float(np.round(rng.uniform(0.3, 3), 3))
        value = 127 if len(pedal) % 2 == 0 else 0
        pedal.append((t, value))
        seq.control_changes.add(time=t, control_number=64, control_value=value)
    seq.total_time = max(r[1] for r in rows)
    ref = sequences_lib.apply_sustain_control_changes(seq)
    ours = apply_sustain_pedal(make_notes(rows), pedal_intervals(pedal, end_time=max(seq.total_time, t)))
    want = sorted((round(n.start_time, 4), round(n.end_time, 4), n.pitch) for n in ref.notes)
    got = sorted((round(s, 4), round(e, 4), int(p)) for s, e, p, _ in ours)
    assert got == want
