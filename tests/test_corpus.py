"""The training-corpus builder: sources, labels, bad inputs named and skipped, resume."""

import json

import numpy as np
import pytest
import soundfile as sf

from piano_transcription.corpus.builder import build_corpus, midi_files, parse_mix
from piano_transcription.corpus.compose import performance_midi
from piano_transcription.corpus.sfz import SfzError, SfzPiano
from piano_transcription.corpus.synth import render_fluidsynth
from piano_transcription.training.maestro import load_shard
from piano_transcription.training.recordings import LabelError, read_tsv_notes

SR = 16000


def write_tsv(path, notes):
    with open(path, "w") as f:
        f.write("# onset,offset,note,velocity\n")
        for row in notes:
            f.write("\t".join(f"{v:.6f}" for v in row) + "\n")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A miniature of ../shared/data, with one bad input of each kind."""
    root = tmp_path_factory.mktemp("shared")
    for split, seeds in (("train", (1, 2)), ("validation", (3,))):
        folder = root / "performance_midi" / "maestro" / split
        folder.mkdir(parents=True)
        for s in seeds:
            performance_midi(s, duration=26.0).write(str(folder / f"piece{s}.midi"))
    (root / "performance_midi" / "maestro" / "train" / "corrupt.midi").write_bytes(b"MThd nonsense")
    maps = root / "maps" / "synth"
    maps.mkdir(parents=True)
    pm = performance_midi(4, duration=26.0)
    sf.write(maps / "good.flac", render_fluidsynth(pm), SR)
    write_tsv(maps / "good.tsv", read_midi_pm(pm))
    sf.write(maps / "shifted.flac", render_fluidsynth(pm), SR)
    write_tsv(maps / "shifted.tsv", read_midi_pm(pm) + [300.0, 300.0, 0, 0])  # labels of a longer recording
    (maps / "corrupt.flac").write_bytes(b"not audio at all")
    write_tsv(maps / "corrupt.tsv", read_midi_pm(pm))
    pianos = root / "pianos"
    (pianos / "good").mkdir(parents=True)
    t = np.arange(SR * 2) / SR
    sf.write(pianos / "good" / "sine.wav", (0.5 * np.sin(2 * np.pi * 261.63 * t) * np.exp(-t)).astype(np.float32), SR)
    (pianos / "good" / "piano.sfz").write_text("<region> sample=sine.wav lokey=21 hikey=108 pitch_keycenter=60 "
                                               "ampeg_release=0.2\n")
    (pianos / "broken").mkdir()
    (pianos / "broken" / "broken.sfz").write_text("<region> sample=missing.wav lokey=21 hikey=108\n")
    irs = root / "impulse_responses"
    irs.mkdir()
    ir = np.zeros(4000, np.float32)
    ir[200], ir[1200:] = 1.0, np.random.default_rng(0).normal(0, 0.01, 2800)
    sf.write(irs / "room.wav", ir, SR)
    (irs / "bad.wav").write_bytes(b"RIFF????WAVE")
    return root


def read_midi_pm(pm):
    from piano_transcription.midi import apply_sustain_pedal, make_notes, pedal_intervals

    inst = pm.instruments[0]
    notes = make_notes([(n.start, n.end, n.pitch, n.velocity) for n in inst.notes])
    pedal = [(c.time, c.value) for c in inst.control_changes if c.number == 64]
    return apply_sustain_pedal(notes, pedal_intervals(pedal, notes[:, 1].max()))


def test_tsv_reader_and_bad_tables(tmp_path):
    write_tsv(tmp_path / "a.tsv", [[0.5, 1.0, 60, 80], [0.2, 0.4, 64, 70]])
    notes = read_tsv_notes(tmp_path / "a.tsv")
    np.testing.assert_allclose(notes[:, 0], [0.2, 0.5])
    (tmp_path / "b.tsv").write_text("# header\n1\t2\t3\n")
    with pytest.raises(LabelError, match="4 columns"):
        read_tsv_notes(tmp_path / "b.tsv")
    write_tsv(tmp_path / "c.tsv", [[1.0, 0.5, 60, 80]])
    with pytest.raises(LabelError, match="ends before"):
        read_tsv_notes(tmp_path / "c.tsv")
    with pytest.raises(LabelError, match="cannot read"):
        read_tsv_notes(tmp_path / "missing.tsv")


def test_mix_is_parsed_and_checked():
    assert parse_mix("maps=1,sfz=3") == {"maps": 0.25, "sfz": 0.75}
    for bad in ("piano=1", "maps=x", "maps=0", "maps=-1,sfz=2"):
        with pytest.raises(ValueError):
            parse_mix(bad)


def test_sfz_piano_plays_keys_and_pedal(shared):
    piano = SfzPiano(shared / "pianos" / "good" / "piano.sfz")
    keys = np.array([[0.1, 0.3, 60, 100.0]])
    dry = piano.render(keys, [], 1.5)
    held = piano.render(keys, [(0.0, 127), (1.2, 0)], 1.5)
    assert len(dry) == len(held) == int(1.5 * SR)
    late = slice(int(0.8 * SR), int(1.1 * SR))  # after the key's release, before the pedal's
    assert np.sqrt(np.mean(held[late] ** 2)) > 10 * np.sqrt(np.mean(dry[late] ** 2))
    with pytest.raises(SfzError, match="broken.sfz"):
        SfzPiano(shared / "pianos" / "broken" / "broken.sfz")


def test_corpus_build_skips_bad_inputs_and_resumes(shared, tmp_path, capsys):
    from piano_transcription.corpus.sfz import find_instruments

    midi = shared / "performance_midi" / "maestro"
    splits = {"train": {"midi": midi_files(midi / "train"), "maps": shared / "maps" / "synth"},
              "validation": {"midi": midi_files(midi / "validation"), "maps": None}}
    out = tmp_path / "corpus"
    args = dict(splits=splits, out_dir=out, counts={"train": 6, "validation": 1},
                mix={"maps": 1, "sfz": 1, "fluidsynth": 1}, instruments=find_instruments(shared / "pianos"),
                impulse_responses=shared / "impulse_responses", per_shard=1, workers=2, progress=False)
    manifest = build_corpus(**args)
    err = capsys.readouterr().err
    for name in ("corrupt.midi", "shifted.tsv", "corrupt.flac", "broken.sfz", "bad.wav"):
        assert name in err and any(name in p for p in manifest["problems"])
    train = manifest["splits"]["train"]
    assert len(train) == 6 and {e["source"] for e in train.values()} == {"maps", "sfz", "fluidsynth"}
    assert all("good" in e["input"] or "piece" in e["input"] for e in train.values())
    for e in train.values():
        shard = load_shard(out / e["shard"])
        assert shard["mel"].shape == (1, 626, 229) and np.isfinite(shard["mel"]).all()
        assert shard["frames"].sum() > 0
        assert shard["pedal_mask"][0] == (0 if e["source"] == "maps" else 1)
        assert shard["keys_mask"][0] == (0 if e["source"] == "maps" else 1)
        if e["source"] == "sfz":
            assert shard["pedal"][0, :, 0].sum() > 0  # the composed performances use the pedal
            # keys are held for less time than the notes sound under the pedal, never outside them
            assert 0 < shard["keys"][0].sum() < shard["frames"][0].sum()
    # labels of a MAPS excerpt match its note table
    maps_entry = next(e for e in train.values() if e["source"] == "maps")
    assert maps_entry["input"].endswith("good.flac")
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    again = build_corpus(**args)
    assert again["splits"] == manifest["splits"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")} == stamp
    assert json.loads((out / "manifest.json").read_text())["splits"] == manifest["splits"]


def test_corpus_build_without_maps_or_pianos_still_finishes(shared, tmp_path, capsys):
    midi = shared / "performance_midi" / "maestro"
    splits = {"train": {"midi": midi_files(midi / "train"), "maps": shared / "no_such_maps"}}
    manifest = build_corpus(splits, tmp_path / "c", {"train": 2}, mix={"maps": 1, "sfz": 1, "fluidsynth": 1},
                            instruments=[], per_shard=1, workers=1, progress=False)
    err = capsys.readouterr().err
    assert "no_such_maps" in err and "no SFZ instruments" in err
    assert {e["source"] for e in manifest["splits"]["train"].values()} == {"fluidsynth"}
