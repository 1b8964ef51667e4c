"""Live transcription: a microphone, an audio interface or a file played in real time, to MIDI as it plays.

:class:`~piano_transcription.live.transcriber.LiveTranscriber` is the API (audio blocks in, note events out, on
the audio's sample clock); ``sources`` (audio input device, file), ``sinks`` (MIDI port, terminal, the take's MIDI
and WAV files), ``session`` (the loop between them), ``causal`` (the low-latency model) and ``cli``
(``piano-transcribe live``) build on it.  sounddevice and mido are imported only where a device or a port is used.
"""

from .transcriber import LiveTranscriber, NoteEvent, events_to_notes

__all__ = ["LiveTranscriber", "NoteEvent", "events_to_notes"]
