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
    ticks = [b for b in (100, 200, 500, 1000, 2000, 4000, 8000) if hz[0] <= b <= hz[-1]]
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


def displayable(text: str) -> str:
    """``text`` with each character that matplotlib's font lacks (a Japanese or emoji file name under DejaVu
    Sans) shown as ``?``: matplotlib would draw an empty box and warn once per missing glyph."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    try:
        charmap = FT2Font(font_manager.findfont(font_manager.FontProperties())).get_charmap()
    except (OSError, RuntimeError, ValueError):
        return text
    return "".join(c if c.isspace() or ord(c) in charmap else "?" for c in text)


def transcription_figure(rolls: dict, notes: np.ndarray, title: str = "", ref_notes: np.ndarray | None = None):
    """Onset and frame probability rolls over time, with the decoded notes drawn on the frame roll."""
    plt = _plt()
    fig, axes = plt.subplots(2, 1, figsize=(14, 8), sharex=True)
    show_roll(rolls["onset"], axes[0], f"{displayable(title)} onset probabilities", cmap="Blues")
    from matplotlib.colors import LinearSegmentedColormap

    light_greys = LinearSegmentedColormap.from_list("light_greys", plt.get_cmap("Greys")(np.linspace(0, 0.5, 256)))
    show_roll(rolls["frame"], axes[1], "frame probabilities and decoded notes", cmap=light_greys)  # notes stay legible
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
    """A block diagram of an Onsets-and-Frames model with arrows: the four stacks (layer sizes read from
    ``model``), the stop-gradient concatenation feeding the frame BiLSTM, and the pedal head if present."""
    plt = _plt()
    ax = ax or plt.figure(figsize=(15, 9)).gca()
    colours = {"onsets": "#dbe9f6", "offsets": "#e8dff5", "frame": "#d9f0d3", "velocity": "#fde2cf", "pedal": "#f6e8b1"}
    arrow = dict(arrowstyle="->", color="0.35", lw=1.2)

    def box(x, y, text, colour):
        ax.text(x, y, text, ha="center", va="center", fontsize=9, bbox=dict(boxstyle="round", fc=colour, ec="0.5"))

    def link(x0, y0, x1, y1):
        ax.annotate("", xy=(x1, y1 + 0.28), xytext=(x0, y0 - 0.28), arrowprops=arrow)

    columns = {"onsets": (0.0, "onsets_lstm", "onset probs"), "offsets": (3.4, "offsets_lstm", "offset probs"),
               "frame": (6.8, None, "activation probs"), "velocity": (10.2, None, "velocity (linear)")}
    box(5.1, 1.6, "log-mel input  [batch, frames, 229]", "white")
    ax.text(12.4, 1.6, "conv: 3x3 kernels (time x frequency)\npool: max over 2 mel bins", fontsize=8, ha="right",
            color="0.3")
    ends = {}
    for stack, (x, lstm, out) in columns.items():
        rows = [f"conv {model.get_layer(stack + '_conv0').filters} + BN + ReLU",
                f"conv {model.get_layer(stack + '_conv1').filters} + BN + ReLU + pool",
                f"conv {model.get_layer(stack + '_conv2').filters} + BN + ReLU + pool",
                f"dense {model.get_layer(stack + '_fc_end').units} + ReLU"]
        if lstm:
            rows.append(f"BiLSTM {model.get_layer(lstm).forward_layer.units} x 2")
        rows.append(f"dense 88 -> {out}")
        ax.annotate("", xy=(x, 0.28), xytext=(5.1, 1.3), arrowprops=arrow)
        ax.text(x, 0.75, stack, ha="center", fontsize=11, weight="bold")
        for r, text in enumerate(rows):
            box(x, -r, text, colours[stack])
            if r:
                link(x, -(r - 1), x, -r)
        ends[stack] = (x, -(len(rows) - 1))
    cy = -6.6
    box(3.4, cy, "concatenate [onset probs | activation probs | offset probs]\n"
                 "(stop-gradient into the onset and offset stacks)", colours["frame"])
    for stack in ("onsets", "offsets", "frame"):
        x, y = ends[stack]
        ax.annotate("", xy=(3.4 + (x - 3.4) * 0.35, cy + 0.4), xytext=(x, y - 0.28), arrowprops=arrow)
    units = model.get_layer("frame_lstm").forward_layer.units
    box(3.4, cy - 1.3, f"BiLSTM {units} x 2", colours["frame"])
    link(3.4, cy - 0.2, 3.4, cy - 1.3)
    box(3.4, cy - 2.3, "dense 88 sigmoid -> frame (output)", colours["frame"])
    link(3.4, cy - 1.3, 3.4, cy - 2.3)
    for stack, name in (("onsets", "onset"), ("offsets", "offset"), ("velocity", "velocity")):
        x, y = ends[stack]
        ax.text(x + (1.15 if stack != "velocity" else 0), y - 0.55, f"-> {name} (output)", fontsize=8,
                ha="center", color="0.25")
    if "pedal_lstm" in [layer.name for layer in model.layers]:
        x = 10.2
        box(x, cy - 1.3, f"BiLSTM {model.get_layer('pedal_lstm').forward_layer.units} x 2", colours["pedal"])
        box(x, cy - 2.3, "dense 3 sigmoid -> pedal (output)", colours["pedal"])
        ax.annotate("", xy=(x, cy - 1.0), xytext=(6.8, -3.28), arrowprops=dict(arrow, ls="--"))
        ax.text(9.0, cy + 0.3, "frame stack's dense features", fontsize=8, color="0.25")
        link(x, cy - 1.3, x, cy - 2.3)
    ax.set(xlim=(-2.3, 12.6), ylim=(cy - 2.9, 2.1))
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
