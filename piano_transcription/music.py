"""Musical descriptors of a note list: tempo (beats per minute), beats and a tempo map, key (Krumhansl-Schmuckler)."""

from __future__ import annotations

import numpy as np

from .midi import END, PITCH, START, VELOCITY

KEY_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
# Krumhansl-Kessler probe-tone profiles (Krumhansl 1990), major and minor, starting at the tonic.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def pitch_class_histogram(notes: np.ndarray, weight_by_duration: bool = True) -> np.ndarray:
    """``[12]`` pitch-class weights (C = 0), by total duration or by note count; sums to 1 (zeros if empty)."""
    w = (notes[:, END] - notes[:, START]) if weight_by_duration else np.ones(len(notes))
    hist = np.bincount(notes[:, PITCH].astype(int) % 12, weights=w, minlength=12).astype(np.float64)
    total = hist.sum()
    return hist / total if total > 0 else hist


def estimate_key(notes: np.ndarray) -> tuple[int, str]:
    """Krumhansl-Schmuckler key: ``(pretty_midi key number, name)``; 0-11 major (C..B), 12-23 minor.

    Correlates the duration-weighted pitch-class histogram with the 24 rotated profiles.
    Returns ``(0, "C major")`` for an empty note list.
    """
    if len(notes) == 0:
        return 0, "C major"
    hist = pitch_class_histogram(notes)
    best, best_r = 0, -np.inf
    for mode, profile in ((0, MAJOR_PROFILE), (1, MINOR_PROFILE)):
        for tonic in range(12):
            r = np.corrcoef(hist, np.roll(profile, tonic))[0, 1]
            if r > best_r:
                best, best_r = mode * 12 + tonic, r
    name = f"{KEY_NAMES[best % 12]} {'major' if best < 12 else 'minor'}"
    return best, name


def estimate_tempo(notes: np.ndarray, min_bpm: float = 40.0, max_bpm: float = 200.0, fps: float = 100.0,
                   prior_bpm: float = 120.0, prior_octaves: float = 1.0) -> float:
    """Tempo (BPM) from note onsets: autocorrelation of the onset train, weighted by a log-normal
    prior around ``prior_bpm`` (as librosa's ``tempo`` does).  120.0 when there are too few notes."""
    onsets = np.unique(np.round(notes[:, START] * fps).astype(int)) if len(notes) else np.array([], int)
    if len(onsets) < 4:
        return prior_bpm
    train = np.zeros(onsets.max() + 1)
    train[onsets] = 1.0
    kernel = np.exp(-0.5 * (np.arange(-3, 4) / 1.5) ** 2)  # tolerate +-30 ms timing jitter
    train = np.convolve(train, kernel, mode="same")
    lags = np.arange(int(fps * 60 / max_bpm), int(fps * 60 / min_bpm) + 1)
    lags = lags[lags < len(train)]
    if len(lags) == 0:
        return prior_bpm
    ac = np.array([np.dot(train[:-lag], train[lag:]) for lag in lags]) / len(train)
    bpm = 60.0 * fps / lags
    prior = np.exp(-0.5 * (np.log2(bpm / prior_bpm) / prior_octaves) ** 2)
    return float(bpm[int(np.argmax(ac * prior))])


BEAT_FPS = 100.0  # frames per second of the onset envelope the beat tracker reads


def onset_envelope(notes: np.ndarray, fps: float = BEAT_FPS) -> np.ndarray:
    """Note onsets as an onset-strength signal ``[frames]`` at ``fps``: each onset adds its velocity (a chord
    counts more than a single note), smoothed over +-30 ms."""
    n = int(np.ceil((notes[:, END].max() if len(notes) else 0.0) * fps)) + int(fps)
    env = np.zeros(n)
    if len(notes):
        np.add.at(env, np.round(notes[:, START] * fps).astype(int), notes[:, VELOCITY] / 127.0)
    kernel = np.exp(-0.5 * (np.arange(-3, 4) / 1.5) ** 2)
    return np.convolve(env, kernel, mode="same")


def local_tempo(env: np.ndarray, fps: float, start_bpm: float, block_seconds: float = 8.0,
                hop_seconds: float = 4.0) -> np.ndarray:
    """Tempo (BPM) per envelope frame: librosa's tempo estimate on blocks of ``block_seconds`` every
    ``hop_seconds``, interpolated between block centres, so that memory stays bounded for long recordings (a
    whole-recording tempogram grows with its length: 7.8 GB for an hour, measured)."""
    import librosa

    hop = 512
    block, step = int(block_seconds * fps), int(hop_seconds * fps)
    starts = list(range(0, max(len(env) - block, 0) + 1, step)) or [0]
    centres, values = [], []
    for s in starts:
        part = env[s: s + block]
        values.append(float(librosa.feature.tempo(onset_envelope=part, sr=fps * hop, hop_length=hop,
                                                  start_bpm=start_bpm, ac_size=block_seconds / 2)[0]))
        centres.append(s + len(part) / 2)
    return np.interp(np.arange(len(env)), centres, values)


def track_beats(notes: np.ndarray, fps: float = BEAT_FPS, start_bpm: float | None = None) -> np.ndarray:
    """Beat times (s) of a note list: librosa's dynamic-programming beat tracker (Ellis 2007) on the onset
    envelope, following a tempo that may change (librosa's time-varying tempo estimate over 4 s windows).
    Empty when there are fewer than 8 onsets."""
    import librosa

    if len(np.unique(np.round(notes[:, START] * fps))) < 8:
        return np.zeros(0)
    env = onset_envelope(notes, fps)
    hop = 512
    sr = fps * hop  # librosa counts frames as sr / hop per second
    start = start_bpm or estimate_tempo(notes)
    tempo = local_tempo(env, fps, start)
    _, beats = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=hop, bpm=tempo, units="time",
                                       trim=False)
    return np.asarray(beats, np.float64)


def apply_tempo_map(pm, beats: np.ndarray) -> None:
    """Give a PrettyMIDI one quarter note per beat: tempo changes at every beat (``beats`` in s), the tempo
    before the first and after the last beat held from the neighbouring beats.  Note times in seconds do not
    change; only their positions in ticks (bars and beats in a DAW) do."""
    beats = np.asarray(beats, np.float64)
    if len(beats) < 2:
        return
    res = pm.resolution
    periods = np.diff(beats)
    scales = [(0, periods[0] / res)]
    first_tick = int(round(beats[0] / (periods[0] / res)))  # the ticks before the first beat, at its tempo
    scales += [(first_tick + i * res, p / res) for i, p in enumerate(periods)]
    pm._tick_scales = scales
    end = max([n.end for i in pm.instruments for n in i.notes] + [beats[-1]])
    pm._update_tick_to_time(int(first_tick + (len(periods) + (end - beats[-1]) / periods[-1] + 2) * res))
