"""The README's score picture: the bundled demo transcribed by the shipped model with key-release note ends
(``--durations keys``: the readable form for a score), engraved by verovio.

    .venv/bin/python scripts/make_score_picture.py [OUT.svg]
"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from piano_transcription.assets import DEMO_AUDIO
    from piano_transcription.score import musicxml_svg
    from piano_transcription.transcribe import transcribe

    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "demo_score.svg")
    result = transcribe(DEMO_AUDIO, durations="keys")
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "demo.musicxml"
        result.write_musicxml(xml)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(musicxml_svg(xml))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
