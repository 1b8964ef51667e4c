"""``python -m piano_transcription.corpus``: the corpus builder's command line."""

from .builder import main

main()
