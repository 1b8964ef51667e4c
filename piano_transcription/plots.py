"""Figures: spectrograms, label / probability rolls, notes over the spectrogram, pitch classes."""

from __future__ import annotations

import numpy as np

from .constants import FMAX, FMIN, FRAMES_PER_SECOND, MIN_MIDI_PITCH, N_KEYS, N_MELS


def _plt():
    import matplotlib.pyplot as plt

    return plt


def hz_to_mel(f) -> np.ndarray:
    """HTK mel value of frequencies in Hz."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, float) / 700.0)


def mel_bin_hz() -> np.ndarray:
    """Centre frequency (Hz) of each of the 229 HTK mel bins (30 Hz .. 8 kHz)."""
    centres = np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), N_MELS + 2)[1:-1]
    return 700.0 * (10 ** (centres / 2595.0) - 1.0)


def show_mel(mel: np.ndarray, ax=None, title: str = "log-mel spectrogram", colorbar: bool = True):
    """Draw a ``[frames, 229]`` log-mel spectrogram with time in seconds, the bins' frequencies in Hz on the
    left axis and a colour bar in dB."""
    plt = _plt()
    ax = ax or plt.gca()
    im = ax.imshow(mel.T, origin="lower", aspect="auto", cmap="magma",
                   extent=(0, len(mel) / FRAMES_PER_SECOND, 0, mel.shape[1]))
    hz = mel_bin_hz()
    ticks = [b for b in (50, 100, 200, 500, 1000, 2000, 4000, 8000) if hz[0] <= b <= hz[-1]]
    ax.set_yticks(np.interp(hz_to_mel(ticks), hz_to_mel(hz), np.arange(len(hz))) + 0.5, [f"{b:g}" for b in ticks])
    ax.set(title=title, xlabel="time (s)", ylabel="frequency (Hz, mel scale)")
    if colorbar:
        plt.colorbar(im, ax=ax, label="dB (power, ref 1)", pad=0.01)
    return im


def show_roll(roll: np.ndarray, ax=None, title: str = "", cmap: str = "Greys", vmax: float = 1.0,
              colorbar: str | None = "probability"):
    """Draw a ``[frames, 88]`` roll (labels or probabilities) with time in seconds and MIDI pitch, and a colour
    bar labelled ``colorbar`` (None: no bar)."""
    plt = _plt()
    ax = ax or plt.gca()
    im = ax.imshow(roll.T, origin="lower", aspect="auto", cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest",
                   extent=(0, len(roll) / FRAMES_PER_SECOND, MIN_MIDI_PITCH - 0.5, MIN_MIDI_PITCH + N_KEYS - 0.5))
    ax.set(title=title, xlabel="time (s)", ylabel="MIDI pitch")
    if colorbar:
        plt.colorbar(im, ax=ax, label=colorbar, pad=0.01)
    return im


def draw_notes(notes: np.ndarray, ax=None, color: str = "tab:cyan", alpha: float = 0.8, label: str | None = None):
    """Draw notes (start s, end s, pitch, velocity) as horizontal bars, opacity by velocity."""
    plt = _plt()
    ax = ax or plt.gca()
    for i, (s, e, p, v) in enumerate(notes):
        ax.add_patch(plt.Rectangle((s, p - 0.4), e - s, 0.8, color=color, alpha=alpha * (0.3 + 0.7 * v / 127),
                                   label=label if i == 0 else None, linewidth=0))
    if len(notes):
        ax.set_xlim(0, max(ax.get_xlim()[1], notes[:, 1].max()))
    return ax


def transcription_figure(rolls: dict, notes: np.ndarray, title: str = "", ref_notes: np.ndarray | None = None):
    """Onset and frame probability rolls over time, with the decoded notes drawn on the frame roll."""
    plt = _plt()
    fig, axes = plt.subplots(2, 1, figsize=(14, 8), sharex=True)
    show_roll(rolls["onset"], axes[0], f"{title} onset probabilities", cmap="Blues")
    show_roll(rolls["frame"], axes[1], "frame probabilities and decoded notes", cmap="Greys", vmax=2.0)
    if ref_notes is not None:
        draw_notes(ref_notes, axes[1], color="tab:green", alpha=0.5, label="reference")
    draw_notes(notes, axes[1], color="tab:red", alpha=0.7, label="transcribed")
    if len(notes) or ref_notes is not None:
        axes[1].legend(loc="upper right")
    fig.tight_layout()
    return fig


def pitch_class_figure(notes: np.ndarray, ax=None, title: str = "pitch classes (by duration)"):
    """Bar chart of the duration-weighted pitch-class histogram."""
    from .music import KEY_NAMES, pitch_class_histogram

    plt = _plt()
    ax = ax or plt.gca()
    ax.bar(KEY_NAMES, pitch_class_histogram(notes))
    ax.set(title=title, ylabel="share of sounding time")
    return ax


def save_figure(fig, path) -> None:
    """Save a figure as PNG atomically and close it."""
    from .io import atomic_path

    plt = _plt()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def model_diagram(model, ax=None):
    """A block diagram of the four stacks (layer names and output widths) of an Onsets-and-Frames model."""
    plt = _plt()
    ax = ax or plt.figure(figsize=(14, 7)).gca()
    columns = [("onsets", "onsets_lstm", "onsets_logits"), ("offsets", "offsets_lstm", "offsets_logits"),
               ("velocity", None, "velocity"), ("frame", None, "frame_activation_probs")]
    for c, (stack, lstm, head) in enumerate(columns):
        boxes = [f"conv0 {model.get_layer(stack + '_conv0').filters} + BN + ReLU",
                 f"conv1 {model.get_layer(stack + '_conv1').filters} + BN + ReLU, pool 1x2",
                 f"conv2 {model.get_layer(stack + '_conv2').filters} + BN + ReLU, pool 1x2",
                 f"dense {model.get_layer(stack + '_fc_end').units} + ReLU"]
        if lstm:
            boxes.append(f"BiLSTM {model.get_layer(lstm).forward_layer.units} x 2")
        boxes.append(f"dense 88 {'linear' if stack == 'velocity' else 'sigmoid'}")
        for r, text in enumerate(boxes):
            ax.text(c * 3.2, -r, text, ha="center", va="center", fontsize=9,
                    bbox=dict(boxstyle="round", fc=["#dbe9f6", "#e8dff5", "#fde2cf", "#d9f0d3"][c]))
        ax.text(c * 3.2, 1, stack, ha="center", fontsize=12, weight="bold")
    ax.text(7.9, -6.2, "concat [onset probs, activation probs, offset probs] (gradient stopped into onsets/offsets)"
            "\n-> BiLSTM -> dense 88 sigmoid = frame", ha="center", fontsize=9,
            bbox=dict(boxstyle="round", fc="#c7e9c0"))
    ax.text(4.8, 2, "mel [batch, frames, 229]", ha="center", fontsize=11)
    ax.set(xlim=(-1.8, 11.5), ylim=(-7, 2.6))
    ax.axis("off")
    return ax


def draw_notes_on_mel(notes: np.ndarray, ax=None, color: str = "cyan"):
    """Draw notes over a log-mel spectrogram drawn by :func:`show_mel`: each note as a line at the mel bin
    of its fundamental frequency (HTK mel scale, 229 bins from 30 Hz to 8 kHz)."""
    plt = _plt()
    ax = ax or plt.gca()
    hz = mel_bin_hz()
    for s, e, p, v in notes:
        f0 = 440.0 * 2 ** ((p - 69) / 12)
        y = np.interp(hz_to_mel(f0), hz_to_mel(hz), np.arange(len(hz))) + 0.5
        ax.plot([s, e], [y, y], color=color, lw=1.5, alpha=0.5 + 0.5 * v / 127)
    return ax
