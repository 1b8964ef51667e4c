"""Render the bundled demo: 30 s of a real performance (a MAESTRO validation piece, never trained on)
played by a real sampled grand (Headroom, Yamaha C3, Decca-tree microphones, through sfizz) in a real room
(the OpenAIR Genesis 6 studio live room), with its true notes and pedal as MIDI.

    .venv/bin/python scripts/make_demo.py [SHARED_DATA] [OUT_DIR]
"""

import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PIECE = "MIDI-Unprocessed_14_R1_2008_01-05_ORIG_MID--AUDIO_14_R1_2008_wav--4.midi"
START, SECONDS = 30.0, 30.0
PIANO = "pianos/headroom/Headroom Piano.sfz"
ROOM = "impulse_responses/Genesis_6_Studio_Live_Room.wav"


def main() -> None:
    import pretty_midi

    from piano_transcription.audio import normalize
    from piano_transcription.corpus.augment import load_impulse_response
    from piano_transcription.corpus.builder import excerpt_performance
    from piano_transcription.corpus.sfz import SfzPiano
    from piano_transcription.midi import read_performance

    data = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "data")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else ROOT / "piano_transcription" / "demo")
    keys, pedal = read_performance(data / "performance_midi" / "maestro" / "validation" / PIECE)
    sel, events, _ = excerpt_performance(keys, pedal, START, START + SECONDS)
    sel[:, 1] = np.minimum(sel[:, 1], SECONDS)  # keys still down at the end are released there
    events = [(t, v) for t, v in events if t < SECONDS] + [(SECONDS, 0)]
    dry = SfzPiano(data / PIANO).render(sel, events, SECONDS + 2.0)
    room = load_impulse_response(data / ROOM)

    wet = fftconvolve(dry, room)[: len(dry)]
    audio = normalize(0.6 * dry / np.max(np.abs(dry)) + 0.4 * wet / np.max(np.abs(wet))) * 0.9
    out.mkdir(parents=True, exist_ok=True)
    sf.write(out / "demo.flac", audio.astype(np.float32), 16000)
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(0, name="Piano")
    inst.notes = [pretty_midi.Note(int(v), int(p), float(s), float(e)) for s, e, p, v in sel]
    inst.control_changes = [pretty_midi.ControlChange(64, int(v), float(t)) for t, v in events]
    pm.instruments.append(inst)
    pm.write(str(out / "demo.mid"))
    print(f"wrote {out / 'demo.flac'} ({len(audio) / 16000:.1f} s) and {out / 'demo.mid'} ({len(sel)} notes)")


if __name__ == "__main__":
    main()
