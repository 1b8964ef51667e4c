"""Files that ship inside the package: the default model (Keras, TFLite float32 and float16, with their
thresholds and model card; its live-window TFLite export), the live low-latency model and the demo recording with its true notes."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
MODELS_DIR = PACKAGE_DIR / "models"
DEFAULT_MODEL = MODELS_DIR / "default.keras"
DEFAULT_TFLITE = MODELS_DIR / "default.tflite"
DEFAULT_TFLITE_FP16 = MODELS_DIR / "default.fp16.tflite"
DEFAULT_LIVE_TFLITE = MODELS_DIR / "default.live.tflite"  # the same model exported for live windows (lookahead mode)
DEFAULT_CAUSAL = MODELS_DIR / "causal.keras"  # the live low-latency model (forward-only LSTMs)
DEFAULT_CAUSAL_TFLITE = MODELS_DIR / "causal.tflite"  # its TFLite step model (the light install's)
DEMO_DIR = PACKAGE_DIR / "demo"
DEMO_AUDIO = DEMO_DIR / "demo.flac"
DEMO_MIDI = DEMO_DIR / "demo.mid"
