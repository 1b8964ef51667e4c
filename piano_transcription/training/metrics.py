"""Frame and note metrics (per piece; the papers average per-piece scores over a collection).

* frame precision / recall / F1 over the ``[frames, 88]`` binary grid, and Dixon's accuracy
  ``tp / (tp + fp + fn)``;
* note metrics through mir_eval: onset only (50 ms), with offsets (offset within 20 % of the
  reference duration or 50 ms, whichever is larger), with offsets and velocity.
"""

from __future__ import annotations

import numpy as np

from ..midi import END, PITCH, START, VELOCITY


def frame_metrics(ref: np.ndarray, est: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1 and Dixon accuracy of binary rolls ``[frames, 88]`` (same shape)."""
    ref, est = np.asarray(ref) > 0, np.asarray(est) > 0
    n = min(len(ref), len(est))
    ref, est = ref[:n], est[:n]
    tp = float(np.sum(ref & est))
    fp = float(np.sum(~ref & est))
    fn = float(np.sum(ref & ~est))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    acc = tp / (tp + fp + fn) if tp + fp + fn else 0.0
    return {"frame_precision": p, "frame_recall": r, "frame_f1": f, "frame_accuracy": acc}


def _intervals_pitches(notes: np.ndarray):
    import mir_eval

    intervals = notes[:, [START, END]].astype(np.float64)
    intervals[:, 1] = np.maximum(intervals[:, 1], intervals[:, 0] + 1e-3)  # mir_eval needs positive lengths
    return intervals, mir_eval.util.midi_to_hz(notes[:, PITCH])


def note_metrics(ref: np.ndarray, est: np.ndarray, onset_tolerance: float = 0.05) -> dict[str, float]:
    """mir_eval note precision / recall / F1: onset only, with offset, and with offset and velocity."""
    import mir_eval

    out = {}
    names = ("note", "note_with_offset", "note_with_offset_velocity")
    if len(ref) == 0 or len(est) == 0:
        for name in names:
            for m in ("precision", "recall", "f1"):
                out[f"{name}_{m}"] = 0.0
        return out
    ri, rp = _intervals_pitches(ref)
    ei, ep = _intervals_pitches(est)
    scores = [
        mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, onset_tolerance=onset_tolerance,
                                                           offset_ratio=None),
        mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, onset_tolerance=onset_tolerance),
        mir_eval.transcription_velocity.precision_recall_f1_overlap(
            ri, rp, ref[:, VELOCITY], ei, ep, est[:, VELOCITY], onset_tolerance=onset_tolerance),
    ]
    for name, (p, r, f, _) in zip(names, scores):
        out.update({f"{name}_precision": p, f"{name}_recall": r, f"{name}_f1": f})
    return out


def pedal_metrics(ref_intervals: np.ndarray, est_intervals: np.ndarray, ref_frames: np.ndarray,
                  est_frames: np.ndarray, onset_tolerance: float = 0.05) -> dict[str, float]:
    """Sustain-pedal scores: pedal-onset precision / recall / F1 (a pedal press found within
    ``onset_tolerance`` s, each matched once, as mir_eval matches note onsets) and frame P/R/F1 of the
    pedal-down roll ``[frames]`` (the two measures Kong et al. 2021, Table III, report)."""
    import mir_eval

    ref_on = np.asarray(ref_intervals, np.float64).reshape(-1, 2)[:, 0]
    est_on = np.asarray(est_intervals, np.float64).reshape(-1, 2)[:, 0]
    matched = len(mir_eval.util.match_events(ref_on, est_on, onset_tolerance)) if len(ref_on) and len(est_on) else 0
    p = matched / len(est_on) if len(est_on) else 0.0
    r = matched / len(ref_on) if len(ref_on) else 0.0
    out = {"pedal_onset_precision": p, "pedal_onset_recall": r,
           "pedal_onset_f1": 2 * p * r / (p + r) if p + r else 0.0}
    frames = frame_metrics(np.asarray(ref_frames).reshape(-1, 1), np.asarray(est_frames).reshape(-1, 1))
    out.update({f"pedal_{k}": v for k, v in frames.items() if k != "frame_accuracy"})
    return out


def mean_metrics(per_piece: list[dict[str, float]]) -> dict[str, float]:
    """Average per-piece metric dicts (the papers' collection score)."""
    if not per_piece:
        return {}
    return {k: float(np.mean([m[k] for m in per_piece])) for k in per_piece[0]}


def roc_curve(labels: np.ndarray, scores: np.ndarray, max_points: int = 1000):
    """ROC of binary ``labels`` vs ``scores`` (any shape): ``(false positive rate, true positive rate, AUC)``."""
    labels = np.asarray(labels).ravel() > 0
    scores = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(-scores, kind="stable")
    labels, scores = labels[order], scores[order]
    distinct = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tps = np.cumsum(labels)[distinct]
    fps = (distinct + 1) - tps
    tpr = np.r_[0.0, tps / max(tps[-1], 1)]
    fpr = np.r_[0.0, fps / max(fps[-1], 1)]
    auc = float(np.trapezoid(tpr, fpr))
    step = max(1, len(fpr) // max_points)
    return fpr[::step], tpr[::step], auc


def threshold_sweep(labels: np.ndarray, scores: np.ndarray, thresholds=np.linspace(0.05, 0.95, 19)):
    """Precision, recall and F1 of ``scores >= t`` against binary ``labels`` for each threshold (a DataFrame)."""
    import pandas as pd

    labels = np.asarray(labels) > 0
    rows = []
    for t in thresholds:
        est = np.asarray(scores) >= t
        tp, fp, fn = np.sum(labels & est), np.sum(~labels & est), np.sum(labels & ~est)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        rows.append({"threshold": float(t), "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0})
    return pd.DataFrame(rows)
