import json
import warnings

import numpy as np
import pandas as pd
import pytest

from piano_transcription.constants import SEGMENT_FRAMES, SEGMENT_MIN_SECONDS, SEGMENT_SECONDS
from piano_transcription.training.maestro import (DatasetError, find_split_points, load_shard, missing_files, piece_examples,
                                         prepare_dataset, read_manifest, read_metadata)
from piano_transcription.midi import make_notes

SHARED_META = "../shared/data/maestro_metadata"


def test_read_metadata_csv_and_both_json_layouts(tmp_path):
    rows = [dict(canonical_composer="A", canonical_title="T", split="train", year=2018,
                 midi_filename="2018/a.midi", audio_filename="2018/a.wav", duration=10.0),
            dict(canonical_composer="B", canonical_title="U", split="test", year=2018,
                 midi_filename="2018/b.midi", audio_filename="2018/b.wav", duration=12.0)]
    pd.DataFrame(rows).to_csv(tmp_path / "maestro-v2.0.0.csv", index=False)
    csv = read_metadata(tmp_path / "maestro-v2.0.0.csv")
    (tmp_path / "v1.json").write_text(json.dumps(rows))  # v1/v2: list of records
    v3 = {k: {str(i): r[k] for i, r in enumerate(rows)} for k in rows[0]}  # v3: column -> {row: value}
    (tmp_path / "v3.json").write_text(json.dumps(v3))
    for df in (csv, read_metadata(tmp_path / "v1.json"), read_metadata(tmp_path / "v3.json")):
        assert df["split"].tolist() == ["train", "test"]
        assert df["audio_filename"].tolist() == ["2018/a.wav", "2018/b.wav"]
    assert sorted(missing_files(csv, tmp_path)) == ["2018/a.midi", "2018/a.wav", "2018/b.midi", "2018/b.wav"]


def test_bad_metadata(tmp_path):
    pd.DataFrame([dict(split="nope", midi_filename="a", audio_filename="b")]).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DatasetError, match="unknown split"):
        read_metadata(tmp_path / "x.csv")
    with pytest.raises(DatasetError, match="no such folder"):
        read_metadata(tmp_path / "missing")


@pytest.mark.skipif(not __import__("os").path.isdir(SHARED_META), reason="reference data only on dev machines")
def test_real_maestro_metadata_v2_v3():
    for version in ("v2.0.0", "v3.0.0"):
        df = read_metadata(f"{SHARED_META}/maestro-{version}")
        assert set(df["split"]) == {"train", "validation", "test"} and len(df) > 1000


def test_split_points_prefer_silence_and_respect_lengths():
    sr = 1000
    samples = np.ones(60 * sr, np.float32)
    # continuous notes except silent gaps at 12-13 s and 30-31 s
    notes = make_notes([(0, 12, 60, 80), (13, 30, 62, 80), (31, 60, 64, 80)])
    points = find_split_points(notes, samples, sr)
    assert points[0] == 0 and points[-1] == 60
    assert 12 <= points[1] <= 13 and 30 <= points[2] <= 31
    lengths = np.diff(points)
    assert np.all(lengths[:-1] >= SEGMENT_MIN_SECONDS) and np.all(lengths <= SEGMENT_SECONDS + 1e-9)


def test_split_points_fall_back_to_quietest_audio():
    sr = 1000
    samples = np.ones(30 * sr, np.float32)
    samples[int(14.0 * sr): int(14.2 * sr)] = 0.0  # a quiet spot while a note sounds
    notes = make_notes([(0, 30, 60, 80)])
    points = find_split_points(notes, samples, sr)
    assert abs(points[1] - 14.1) < 0.15


def test_segments_and_onsets_before_segment(synthetic_maestro):
    df = read_metadata(synthetic_maestro)
    row = df[df.split == "train"].iloc[0]
    examples = piece_examples(synthetic_maestro / row.audio_filename, synthetic_maestro / row.midi_filename, "train")
    assert len(examples) >= 2
    for e in examples:
        assert e.mel.shape == (SEGMENT_FRAMES, 229) and e.rolls.frames.shape == (SEGMENT_FRAMES, 88)
        assert e.length <= SEGMENT_FRAMES
        assert not e.rolls.frames[e.length:].any()  # padding is silent
        # an onset is only where a note starts inside the segment: an onset frame is a frame
        # where the note is active, and never at frame 0 for a note that was already sounding.
        assert np.all(e.rolls.frames[e.rolls.onsets > 0] > 0)
    test_row = df[df.split == "test"].iloc[0]
    whole = piece_examples(synthetic_maestro / test_row.audio_filename, synthetic_maestro / test_row.midi_filename,
                           "test")
    assert len(whole) == 1 and len(whole[0].mel) == whole[0].length > SEGMENT_FRAMES


def test_note_started_before_segment_is_not_an_onset(tmp_path):
    import pretty_midi
    import soundfile as sf

    # one long note from 0 to 30 s; a second note at 25 s; the cut falls between 5 and 20 s
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes += [pretty_midi.Note(80, 48, 0.01, 30.0), pretty_midi.Note(80, 72, 25.0, 26.0)]
    pm.instruments.append(inst)
    pm.write(str(tmp_path / "a.midi"))
    sf.write(tmp_path / "a.wav", np.random.default_rng(0).normal(0, 0.1, 16000 * 30).astype(np.float32), 16000)
    segs = piece_examples(tmp_path / "a.wav", tmp_path / "a.midi", "train")
    key = 48 - 21
    assert segs[0].rolls.onsets[:, key].sum() == 2
    for s in segs[1:]:
        assert s.rolls.frames[0, key] == 1 and s.rolls.onsets[:, key].sum() == 0


def test_prepare_dataset_writes_shards_and_resumes(synthetic_maestro, prepared, tmp_path):
    manifest = read_manifest(prepared)
    assert {s: len(v) for s, v in manifest["splits"].items()} == {"train": 4, "validation": 1, "test": 1}
    entry = next(iter(manifest["splits"]["train"].values()))
    shard = load_shard(prepared / entry["shard"])
    assert shard["mel"].shape[1:] == (SEGMENT_FRAMES, 229) and shard["frames"].shape[-1] == 88
    with np.load(prepared / entry["shard"]) as raw:
        assert raw["mel"].dtype == np.float16 and raw["frames"].dtype == np.uint8
    # resumable: a second run skips everything (files untouched)
    mtimes = {p: p.stat().st_mtime_ns for p in prepared.rglob("*.npz")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepare_dataset(synthetic_maestro, prepared, workers=1, progress=False)
    assert {p: p.stat().st_mtime_ns for p in prepared.rglob("*.npz")} == mtimes


def test_prepare_reports_missing_files(synthetic_maestro, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(synthetic_maestro, copy)
    victim = next(copy.rglob("*test*.wav"))
    victim.unlink()
    with pytest.warns(UserWarning, match="missing"):
        m = prepare_dataset(copy, tmp_path / "out", workers=2, splits=("test",), progress=False)
    assert m["splits"]["test"] == {}


def test_download_fails_clearly_offline(tmp_path, monkeypatch):
    from piano_transcription.io import DownloadError, download

    with pytest.raises(DownloadError, match="offline|cannot download|failed"):
        download("http://127.0.0.1:9/maestro.zip", tmp_path / "m.zip", timeout=2, progress=False)
    assert not (tmp_path / "m.zip").exists()
