"""``python -m piano_transcription.corpus``: the corpus builder's command line."""

import sys

from .builder import main

sys.exit(main())
