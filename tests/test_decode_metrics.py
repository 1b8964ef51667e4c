import numpy as np
import pytest

from piano_transcription.constants import FRAMES_PER_SECOND as FPS
from piano_transcription.decode import decode_notes, velocity_to_midi
from piano_transcription.training.metrics import frame_metrics, mean_metrics, note_metrics
from piano_transcription.midi import make_notes


def empty(t=20):
    return np.zeros((t, 88)), np.zeros((t, 88))


def test_decoder_reonset_splits_a_sounding_note():
    f, o = empty()
    f[2:10, 0] = 0.9
    o[2:4, 0] = 0.9
    o[6, 0] = 0.9
    notes = decode_notes(f, o)
    assert (notes[:, :2] * FPS).round().tolist() == [[2, 6], [6, 10]]


def test_decoder_needs_an_onset_to_start_and_onsets_count_as_active():
    f, o = empty()
    f[2:6, 5] = 0.9  # frames without onset: no note
    o[10, 7] = 0.9  # onset without frames: a one-frame note
    f[12:15, 9] = 0.9
    o[13, 9] = 0.9  # the onset comes late: the note starts there
    notes = decode_notes(f, o)
    got = {int(p): ((s * FPS).round(), (e * FPS).round()) for s, e, p, _ in notes}
    assert 26 not in got
    assert got[28] == (10, 11)
    assert got[30] == (13, 15)


def test_decoder_tail_frames_close_at_the_end_and_velocity():
    f, o = empty()
    v = np.zeros((20, 88))
    f[15:, 3] = 0.9
    o[15, 3] = 0.9
    v[15, 3] = 0.5
    notes = decode_notes(f, o, v)
    assert notes[0, 1] * FPS == pytest.approx(20) and notes[0, 3] == 50  # 80 * 0.5 + 10
    assert velocity_to_midi(np.array([-1.0, 2.0])).tolist() == [10, 90]


def test_decoder_per_key_thresholds():
    f, o = empty()
    f[0:5, :2] = 0.6
    o[0, :2] = 0.6
    thresholds = np.full(88, 0.5)
    thresholds[1] = 0.7
    assert decode_notes(f, o, onset_threshold=thresholds)[:, 2].tolist() == [21]


def test_decoder_matches_magenta_oracle_when_available():
    pytest.importorskip("note_seq")
    from note_seq import sequences_lib

    rng = np.random.default_rng(0)
    f = rng.random((200, 88)) < 0.3
    o = rng.random((200, 88)) < 0.05
    seq = sequences_lib.pianoroll_to_note_sequence(f, FPS, 0, onset_predictions=o, min_midi_pitch=21)
    ref = sorted((round(n.start_time * FPS), round(n.end_time * FPS), n.pitch) for n in seq.notes)
    ours = sorted((round(s * FPS), round(e * FPS), int(p)) for s, e, p, _ in decode_notes(f * 1.0, o * 1.0))
    assert ours == ref


def test_frame_metrics_and_dixon_accuracy():
    ref = np.zeros((4, 88), bool)
    est = np.zeros((4, 88), bool)
    ref[0:2, 0] = True
    est[1:4, 0] = True
    m = frame_metrics(ref, est)  # tp 1, fp 2, fn 1
    assert m["frame_precision"] == pytest.approx(1 / 3) and m["frame_recall"] == pytest.approx(1 / 2)
    assert m["frame_accuracy"] == pytest.approx(1 / 4)
    assert m["frame_f1"] == pytest.approx(0.4)


def test_note_metrics_agree_with_mir_eval_by_hand():
    ref = make_notes([(1.0, 2.0, 60, 80), (2.0, 2.5, 64, 70), (3.0, 4.0, 67, 90)])
    est = make_notes([(1.03, 2.1, 60, 80),  # onset ok, offset within 20 %
                      (2.04, 3.5, 64, 70),  # onset ok, offset far off
                      (3.2, 4.0, 67, 90),  # onset 200 ms late: miss
                      (5.0, 6.0, 72, 60)])  # extra
    m = note_metrics(ref, est)
    assert m["note_precision"] == pytest.approx(2 / 4) and m["note_recall"] == pytest.approx(2 / 3)
    assert m["note_with_offset_precision"] == pytest.approx(1 / 4)
    assert m["note_with_offset_recall"] == pytest.approx(1 / 3)
    assert note_metrics(ref, ref)["note_with_offset_velocity_f1"] == pytest.approx(1.0)
    assert note_metrics(ref, make_notes([]))["note_f1"] == 0.0
    assert mean_metrics([{"a": 1.0}, {"a": 0.0}]) == {"a": 0.5}


def test_roc_auc_and_threshold_sweep():
    from piano_transcription.training.metrics import roc_curve, threshold_sweep

    labels = np.array([0, 0, 1, 1])
    fpr, tpr, auc = roc_curve(labels, np.array([0.1, 0.4, 0.35, 0.8]))
    assert auc == pytest.approx(0.75)  # sklearn's textbook example
    assert roc_curve(labels, np.array([0.1, 0.2, 0.8, 0.9]))[2] == pytest.approx(1.0)
    sweep = threshold_sweep(labels, np.array([0.1, 0.4, 0.35, 0.8]), thresholds=[0.3, 0.5])
    assert sweep["precision"].tolist() == pytest.approx([2 / 3, 1.0])
    assert sweep["recall"].tolist() == pytest.approx([1.0, 0.5])


def test_streaming_decoder_equals_the_whole_roll_decoder():
    from piano_transcription.decode import StreamingDecoder, decode_notes

    rng = np.random.default_rng(3)
    n = 400
    frame = (rng.random((n, 88)) < 0.3).astype(np.float32) * rng.random((n, 88))
    onset = (rng.random((n, 88)) < 0.05).astype(np.float32) * rng.random((n, 88))
    velocity = rng.random((n, 88)).astype(np.float32)
    onset_t = rng.uniform(0.2, 0.8, 88)
    offset = (rng.random((n, 88)) < 0.1).astype(np.float32)
    for offset_t in (None, 0.5):  # with the offset head ending notes too, and without
        whole = decode_notes(frame, onset, velocity, onset_t, 0.4, offset_probs=offset, offset_threshold=offset_t)
        dec = StreamingDecoder(onset_t, 0.4, offset_threshold=offset_t)
        parts = []
        for a, b in ((0, 7), (7, 150), (150, 151), (151, 400)):
            parts.append(dec.feed(frame[a:b], onset[a:b], velocity[a:b], offset_probs=offset[a:b]))
        parts.append(dec.finish())
        streamed = np.concatenate(parts)
        streamed = streamed[np.lexsort((streamed[:, 2], streamed[:, 0]))]
        assert len(whole) > 100
        np.testing.assert_allclose(streamed, whole)
    shorter = decode_notes(frame, onset, velocity, onset_t, 0.4, offset_probs=offset, offset_threshold=0.5)
    longer = decode_notes(frame, onset, velocity, onset_t, 0.4)
    assert (shorter[:, 1] - shorter[:, 0]).sum() < (longer[:, 1] - longer[:, 0]).sum()


def test_cleanup_merges_doubled_onsets_and_drops_short_notes():
    import pytest

    from piano_transcription.cleanup import Cleanup, clean_notes
    from piano_transcription.midi import make_notes

    notes = make_notes([(0.0, 0.5, 60, 70), (0.064, 0.9, 60, 90),  # a doubled onset of a held C4
                        (1.0, 1.2, 60, 70),  # a real repetition, 0.94 s later
                        (0.5, 0.532, 64, 40),  # a 32 ms ghost
                        (0.2, 0.6, 67, 80)])
    assert len(clean_notes(notes, "none")) == 5
    merged = clean_notes(notes, Cleanup(merge_within=0.1))
    c4 = merged[merged[:, 2] == 60]
    np.testing.assert_allclose(c4, [[0.0, 0.9, 60, 90], [1.0, 1.2, 60, 70]])
    cleaned = clean_notes(notes, Cleanup(min_note=0.05, merge_within=0.1))
    assert 64 not in cleaned[:, 2] and len(cleaned) == 3
    for bad in (-0.1, float("nan"), 5.0):
        with pytest.raises(ValueError):
            Cleanup(min_note=bad)
    with pytest.raises(ValueError, match="preset"):
        clean_notes(notes, "loud")


def test_a_detected_offset_ends_a_note_but_never_stops_one_starting():
    from piano_transcription.decode import StreamingDecoder, decode_notes

    frame = np.zeros((40, 88), np.float32)
    onset = np.zeros((40, 88), np.float32)
    offset = np.zeros((40, 88), np.float32)
    frame[5:30, 40] = 0.9
    onset[5:7, 40] = 0.9
    offset[5, 40] = 0.9  # the offset head also fires at the onset (a repeated note)
    offset[20, 40] = 0.9  # and where the note really ends, before the frames fall
    notes = decode_notes(frame, onset, None, 0.5, 0.5, offset, 0.5)
    np.testing.assert_allclose(notes[:, :3], [[5 / 31.25, 20 / 31.25, 61]])
    dec = StreamingDecoder(0.5, 0.5, offset_threshold=0.5)
    streamed = np.concatenate([dec.feed(frame, onset, None, offset_probs=offset), dec.finish()])
    np.testing.assert_allclose(streamed, notes)


def test_diagnosis_counts_each_kind_of_error():
    from piano_transcription.midi import make_notes
    from piano_transcription.training.diagnostics import add_up, diagnose, false_note_kind, format_diagnosis

    ref = make_notes([(0.0, 1.0, 30, 25), (0.0, 1.0, 60, 90), (2.0, 2.5, 70, 50), (3.0, 3.5, 100, 110)])
    est = make_notes([(0.01, 1.5, 30, 60),   # matched, 0.5 s too long
                      (0.02, 0.5, 60, 60),   # matched, 0.5 s too short
                      (0.5, 0.9, 60, 60),    # re-onset of the held 60: repeated
                      (0.3, 0.6, 42, 60),    # 30 + 12 sounding: octave
                      (2.1, 2.3, 71, 60),    # 70 sounding: semitone
                      (5.0, 5.2, 50, 60)])   # nothing near: other (70 and 100 are missed)
    d = diagnose(ref, est)
    assert d["velocity"]["20-39"] == [1, 1] and d["velocity"]["40-59"] == [0, 1] and d["velocity"]["100-127"] == [0, 1]
    assert d["register"]["21-42"] == [1, 1] and d["register"]["65-86"] == [0, 1] and d["register"]["87-108"] == [0, 1]
    assert d["false"] == {"repeated": 1, "octave": 1, "semitone": 1, "other": 1}
    f = d["frames"]
    assert f["too_long"] == round(1.5 * 31.25) - round(1.0 * 31.25) and f["too_short"] == round(31.25) - round(15.625)
    assert f["missed"] == 16 + 15 and sorted(np.round(d["ratios"], 2)) == [0.48, 1.49]
    assert false_note_kind(ref, est[-1]) == "other"
    total = add_up([d, d])
    assert total["false"]["octave"] == 2 and total["velocity"]["20-39"] == [2, 2]
    assert "octave 2" in format_diagnosis(total, "x")


def test_diagnosis_tells_why_true_notes_were_missed():
    from piano_transcription.midi import make_notes
    from piano_transcription.training.diagnostics import add_up, diagnose, format_diagnosis, missed_note_kind

    ref = make_notes([(1.0, 2.0, 30, 60), (3.0, 3.5, 40, 60), (5.0, 5.5, 60, 60), (7.0, 7.5, 64, 60),
                      (9.0, 9.5, 90, 60), (11.0, 11.5, 25, 60)])
    est = make_notes([(1.12, 2.0, 30, 60),   # 120 ms late: timing
                      (2.5, 4.0, 40, 60),    # already sounding at 3.0: the re-strike was not heard (held)
                      (5.01, 5.5, 72, 60),   # an octave up: octave
                      (7.02, 7.5, 65, 60),   # a semitone up: semitone
                      (11.03, 11.5, 25, 60)])  # matched, 30 ms late
    d = diagnose(ref, est)
    assert d["missed"]["21-42"] == {"timing": 1, "held": 1, "octave": 0, "semitone": 0, "none": 0}
    assert d["missed"]["43-64"] == {"timing": 0, "held": 0, "octave": 1, "semitone": 1, "none": 0}
    assert d["missed"]["87-108"]["none"] == 1 and missed_note_kind(est, ref[4]) == "none"
    assert np.allclose(d["onset_errors"]["21-42"], [0.03])
    total = add_up([d, d])
    assert total["missed"]["21-42"]["timing"] == 2 and len(total["onset_errors"]["21-42"]) == 2
    text = format_diagnosis(total, "x")
    assert "21-42: timing 2, held 2" in text and "21-42 +30" in text
