"""One input's output files, written together: the MIDI, and on request its piano-roll picture and its score.

All of an input's requested files are made in temporary files beside their targets and renamed into place only
when every one of them is complete (:func:`~piano_transcription.io.atomic_paths`): a score that cannot be made,
a missing plotting library or Ctrl-C leaves neither a lone ``.mid`` that a re-run would refuse as existing nor a
new ``.mid`` beside an older run's ``.png`` and ``.musicxml``.
"""

from __future__ import annotations

from pathlib import Path

from .io import atomic_paths

SUFFIXES = {"midi": ".mid", "plot": ".png", "musicxml": ".musicxml"}  # output kind -> file suffix


def requested_outputs(outdir: Path, name: str, plot: bool = False, musicxml: bool = False) -> dict[str, Path]:
    """``{kind: path}`` of an input's outputs in ``outdir`` under base name ``name``: always the MIDI."""
    kinds = ["midi"] + ["plot"] * plot + ["musicxml"] * musicxml
    return {kind: Path(outdir) / f"{name}{SUFFIXES[kind]}" for kind in kinds}


def write_outputs(result, paths: dict[str, Path], title: str = "", ref_notes=None) -> None:
    """Write a :class:`~piano_transcription.transcribe.Transcription` to every path of ``paths``
    (:func:`requested_outputs`), all of them or none: ValueError / ImportError / OSError say why none.
    ``title`` heads the picture, which also draws ``ref_notes`` (true notes ``[n, 4]``) when given."""
    from .midi import write_midi

    kinds = list(paths)
    with atomic_paths([paths[k] for k in kinds]) as temps:
        tmp = dict(zip(kinds, temps))
        if "musicxml" in tmp:
            try:
                result.write_musicxml(tmp["musicxml"])
            except ValueError as exc:
                raise ValueError(f"no score: {exc}; nothing written for this input (leave out --musicxml for "
                                 "its MIDI)") from None
        if "plot" in tmp:
            from .plots import save_figure, transcription_figure

            save_figure(transcription_figure(result.rolls, result.notes, title, ref_notes=ref_notes), tmp["plot"])
        write_midi(result.midi, tmp["midi"])
