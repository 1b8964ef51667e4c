"""Musical descriptors of a note list: tempo (beats per minute), beats and a tempo map, key (Krumhansl-Schmuckler)."""

from __future__ import annotations

import numpy as np

from .midi import END, PITCH, START, VELOCITY

KEY_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]  # pitch classes (plots)
# Key names by their signature, as a MIDI key-signature event stores it: [mode][sharps (+) or flats (-)].
_SHARP_TONICS = {0: ["C", "G", "D", "A", "E", "B", "F#", "C#"], 1: ["A", "E", "B", "F#", "C#", "G#", "D#", "A#"]}
_FLAT_TONICS = {0: ["C", "F", "Bb", "Eb", "Ab", "Db", "Gb", "Cb"], 1: ["A", "D", "G", "C", "F", "Bb", "Eb", "Ab"]}
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
    return best, key_name(best)


def key_name(key_number: int) -> str:
    """``"Db major"`` for pretty_midi key number 1: the spelling with the fewer accidentals, which is the one its
    MIDI key signature stores (5 flats, not C#'s 7 sharps; the 6-accidental keys as stored: F# major, D# minor),
    so that the printed key, the MIDI and the score agree."""
    from pretty_midi.utilities import key_number_to_mode_accidentals

    mode, accidentals = key_number_to_mode_accidentals(int(key_number))
    tonic = (_SHARP_TONICS if accidentals >= 0 else _FLAT_TONICS)[mode][abs(accidentals)]
    return f"{tonic} {'minor' if mode else 'major'}"


TEMPOGRAM_HOP = 4  # frames between the stretches of envelope_tempo's tempogram (librosa: 1)


def envelope_tempo(env: np.ndarray, fps: float, prior_bpm: float = 120.0, prior_octaves: float = 1.0,
                   min_bpm: float = 40.0, max_bpm: float = 200.0, window: int | None = None) -> float:
    """Tempo (BPM) of an onset-strength signal ``[frames]`` at ``fps``: the lag of its strongest
    autocorrelation, weighted by a log-normal prior around ``prior_bpm`` (``prior_octaves`` wide), as
    librosa's ``tempo`` does.  With ``window`` (frames), the autocorrelation is librosa's tempogram instead:
    the mean over centred, Hann-windowed stretches of that length (every ``TEMPOGRAM_HOP`` frames), each
    normalised by its energy; the window's taper favours the shorter of two related periods.
    ``prior_bpm`` when the signal is too short or silent."""
    lags = np.arange(int(fps * 60 / max_bpm), int(fps * 60 / min_bpm) + 1)
    lags = lags[lags < (window or len(env))]
    if len(lags) == 0 or not np.any(env) or (window and len(env) < window):
        return prior_bpm
    if window:
        padded = np.pad(env, window // 2, mode="linear_ramp")  # centred stretches, as librosa pads them
        frames = np.lib.stride_tricks.sliding_window_view(padded, window)[:len(env):TEMPOGRAM_HOP]
        spectrum = np.fft.rfft(frames * np.hanning(window + 1)[:-1], n=2 * window, axis=1)
        acs = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :window]
        ac = (acs / (acs.max(axis=1, keepdims=True) + 1e-10)).mean(axis=0)[lags]
    else:
        ac = np.array([np.dot(env[:-lag], env[lag:]) for lag in lags]) / len(env)
    bpm = 60.0 * fps / lags
    prior = np.exp(-0.5 * (np.log2(bpm / prior_bpm) / prior_octaves) ** 2)
    return float(bpm[int(np.argmax(ac * prior))])


BEAT_FPS = 100.0  # frames per second of the onset envelope the tempo estimate and the beat tracker read


def estimate_tempo(notes: np.ndarray, min_bpm: float = 40.0, max_bpm: float = 200.0, fps: float = BEAT_FPS,
                   prior_bpm: float = 120.0, prior_octaves: float = 1.0) -> float:
    """Tempo (BPM) from note onsets: :func:`envelope_tempo` of the beat tracker's :func:`onset_envelope` (each
    onset weighted by its velocity, so that chords and accents -- which mark the beats -- outweigh the notes
    between them).  Counting each onset time once instead let a run of eighth notes double the tempo of a
    transcription (187.5 instead of 93.75 BPM in the score round-trip test).  120.0 when there are fewer than
    four distinct onsets."""
    if len(notes) == 0 or len(np.unique(np.round(notes[:, START] * fps))) < 4:
        return prior_bpm
    return envelope_tempo(onset_envelope(notes, fps), fps, prior_bpm, prior_octaves, min_bpm, max_bpm)


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
    """Tempo (BPM) per envelope frame: :func:`envelope_tempo` (tempogram of 4 s stretches) of blocks of
    ``block_seconds`` every ``hop_seconds`` (prior around ``start_bpm``), interpolated between block centres.  Memory stays bounded for long recordings
    (librosa's whole-recording tempogram grows with the length: 7.8 GB for an hour, measured), and the blocks
    cost milliseconds (librosa's ``tempo`` per block took 4.3 s for 10 minutes)."""
    block, step = int(block_seconds * fps), int(hop_seconds * fps)
    starts = list(range(0, max(len(env) - block, 0) + 1, step)) or [0]
    centres = [s + len(env[s: s + block]) / 2 for s in starts]
    window = min(block // 2, len(env))  # 4 s stretches, as librosa's ac_size
    values = [envelope_tempo(env[s: s + block], fps, start_bpm, window=window) for s in starts]
    return np.interp(np.arange(len(env)), centres, values)


BEAT_TIGHTNESS = 100.0  # how strongly beat spacing is held to the local tempo (librosa's default)


def beat_track(env: np.ndarray, fps: float, bpm: np.ndarray, tightness: float = BEAT_TIGHTNESS) -> np.ndarray:
    """Beat frames of an onset-strength signal ``env`` ``[frames]`` at ``fps`` following the tempo ``bpm`` (one
    value per frame): Ellis's (2007) dynamic program as librosa's ``beat_track`` runs it (onsets normalised by
    their standard deviation and smoothed by a Gaussian of 1/32 beat; each frame's best predecessor between
    half a beat and two beats back, penalised by ``tightness`` x the squared log ratio of the spacing to the
    beat period; the path back from the last strong local maximum), in numpy: frames are solved a block at a
    time, since no frame depends on the half beat before it.  This avoids compiling librosa's numba kernels,
    which cost 4 s at the start of every transcription (measured)."""
    n = len(env)
    fpb = np.broadcast_to(np.round(fps * 60.0 / np.asarray(bpm, np.float64)), (n,)).astype(np.int64)
    if n == 0 or not np.any(env):
        return np.zeros(0, np.int64)
    onsets = env / (env.std(ddof=1) + 1e-10)
    period = int(np.median(fpb))
    window = np.exp(-0.5 * (np.arange(-period, period + 1) * 32.0 / period) ** 2)
    local = np.convolve(onsets, window, mode="same")
    cumscore = np.zeros(n)
    backlink = np.full(n, -1, np.int64)
    shortest = max(int(np.round(fpb.min() / 2)), 1)
    lags = np.arange(1, 2 * int(fpb.max()) + 1)
    for k in range(0, n, shortest):
        i = np.arange(k, min(k + shortest, n))
        f = fpb[i][:, None]
        loc = i[:, None] - lags[None, :]
        ok = (lags >= np.round(f / 2)) & (lags <= 2 * f) & (loc >= 0)
        score = np.where(ok, cumscore[np.maximum(loc, 0)] - tightness * (np.log(lags) - np.log(f)) ** 2, -np.inf)
        best = np.argmax(score, axis=1)
        found = np.isfinite(score[np.arange(len(i)), best])
        cumscore[i] = local[i] + np.where(found, score[np.arange(len(i)), best], 0.0)
        backlink[i] = np.where(found, loc[np.arange(len(i)), best], -1)
    first = int(np.argmax(local >= 0.01 * local.max()))
    backlink[:first] = -1  # no beat before the first onset of any strength
    peaks = np.r_[False, (cumscore[1:-1] > cumscore[:-2]) & (cumscore[1:-1] >= cumscore[2:]), False] if n > 2 \
        else np.ones(n, bool)
    strong = np.flatnonzero(peaks & (cumscore >= 0.5 * np.median(cumscore[peaks]))) if peaks.any() else [n - 1]
    beats, i = [], int(strong[-1])
    while i >= 0:
        beats.append(i)
        i = int(backlink[i])
    beats = np.array(beats[::-1], np.int64)
    nonzero = np.flatnonzero(local > 0)
    return beats[(beats >= nonzero[0]) & (beats <= nonzero[-1])]


def track_beats(notes: np.ndarray, fps: float = BEAT_FPS, start_bpm: float | None = None) -> np.ndarray:
    """Beat times (s) of a note list: :func:`beat_track` on the onset envelope, following a tempo that may
    change (:func:`local_tempo` over 8 s blocks).  Empty when there are fewer than 8 onsets."""
    if len(np.unique(np.round(notes[:, START] * fps))) < 8:
        return np.zeros(0)
    env = onset_envelope(notes, fps)
    tempo = local_tempo(env, fps, start_bpm or estimate_tempo(notes))
    return beat_track(env, fps, tempo) / fps


METERS = (4, 3)  # beats per bar considered by estimate_meter, the first preferred on a tie
METER_MIN_GAP = 0.75  # z-score units: weaker downbeat patterns keep 4/4 from the first beat (0.5 let -60 dB of
# noise flip the bar of the score round-trip piece: a wrong phase reached 0.56; clear accents score 1.4-2.0)
METER_MARGIN = 0.1  # z-score units by which 3/4 must beat 4/4


def beat_accents(notes: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """An accent per beat ``[len(beats)]``: how strongly the notes that start at the beat (within a quarter of
    its period) mark it as a downbeat, as the sum of three z-scored features: the notes' summed velocity x
    length in beats (long, loud chords start bars), the depth of the lowest note (bass notes fall on
    downbeats) and the number of notes (chord onsets)."""
    beats = np.asarray(beats, np.float64)
    period = np.diff(beats).mean() if len(beats) > 1 else 0.5
    weight = np.zeros(len(beats))
    bass = np.zeros(len(beats))
    count = np.zeros(len(beats))
    if len(notes) and len(beats):
        idx = np.clip(np.searchsorted(beats, notes[:, START]), 1, len(beats) - 1)
        idx = np.where(np.abs(notes[:, START] - beats[idx - 1]) < np.abs(notes[:, START] - beats[idx]), idx - 1, idx)
        near = np.abs(notes[:, START] - beats[idx]) < period / 4
        length = np.minimum((notes[:, END] - notes[:, START]) / period, 4.0)
        np.add.at(weight, idx[near], notes[near, VELOCITY] / 127.0 * length[near])
        np.add.at(count, idx[near], 1.0)
        lowest = np.full(len(beats), np.inf)
        np.minimum.at(lowest, idx[near], notes[near, PITCH])
        has = np.isfinite(lowest)
        if has.any():
            bass[has] = 108.0 - lowest[has]
            bass[~has] = bass[has].min()  # a beat without notes has no bass, not the lowest bass of all

    def z(x):  # z-scores, clipped so that one odd beat (silence before the music) does not set the scale
        return np.clip((x - x.mean()) / x.std(), -3, 3) if x.std() > 0 else np.zeros_like(x)

    return z(weight) + z(bass) + z(count)


def estimate_meter(notes: np.ndarray, beats: np.ndarray) -> tuple[int, int]:
    """``(beats per bar, index of the first downbeat in beats)`` from the accents of the beats
    (:func:`beat_accents`).  For each meter (4 or 3 beats) and phase, the mean accent of the beats at that
    phase; a meter's downbeat is its strongest phase, and its clarity the gap between that phase and the next
    strongest one (a real downbeat stands out from every other beat of the bar, a pattern that repeats every
    two bars does not).  Without a clear downbeat (gap under :data:`METER_MIN_GAP`) or with fewer than eight
    beats: ``(4, 0)``.  3/4 must beat 4/4 by :data:`METER_MARGIN` (4/4 is the common default)."""
    if len(beats) < 8:
        return 4, 0
    accents = beat_accents(notes, beats)
    best = {}
    for m in METERS:
        phase = np.array([accents[p::m].mean() for p in range(m)])
        order = np.argsort(phase)[::-1]
        best[m] = (phase[order[0]] - phase[order[1]], int(order[0]))
    m = 3 if best[3][0] > best[4][0] + METER_MARGIN else 4
    return (m, best[m][1]) if best[m][0] >= METER_MIN_GAP else (4, 0)


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
