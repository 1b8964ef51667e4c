"""The package as users install it: a wheel that carries the default model and the demo."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def wheel(built_once):
    def build(out):
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                        str(ROOT)], check=True, capture_output=True)

    return next(built_once("wheel", build).glob("piano_transcription-*.whl"))


def test_wheel_carries_models_and_demo(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("models/default.keras", "models/default.tflite", "models/default.fp16.tflite",
              "models/default.thresholds.json", "models/default.live.tflite", "models/default.live.thresholds.json",
              "models/causal.keras", "models/causal.tflite", "models/causal.thresholds.json",
              "demo/demo.flac", "demo/demo.mid"):
        assert f"piano_transcription/{f}" in names


def test_full_install_runs_the_tflite_export_by_default_and_keras_on_request():
    from piano_transcription.assets import DEFAULT_MODEL, DEFAULT_TFLITE
    from piano_transcription.predictor import load_predictor

    predictor = load_predictor()
    assert predictor.backend == "tflite" and predictor.path == DEFAULT_TFLITE
    keras = load_predictor(DEFAULT_MODEL)
    assert keras.backend == "keras" and keras.path == DEFAULT_MODEL


@pytest.mark.slow
def test_light_install_transcribes_the_demo_from_anywhere(wheel, tmp_path):
    """pip install 'piano-transcription[lite]' into a fresh environment (no TensorFlow), then the CLI in
    another folder: the default model is the shipped TFLite one, the demo is found inside the package."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[lite]"], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import importlib.util as u; "
                            "print(u.find_spec('tensorflow') is None, u.find_spec('keras') is None)"],
                           capture_output=True, text=True, cwd=work)
    assert check.stdout.split() == ["True", "True"]
    demo = subprocess.run([str(venv / "bin" / "piano-transcribe"), "demo", "-o", "out"], capture_output=True,
                          text=True, cwd=work)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "default.tflite (tflite)" in demo.stdout and (work / "out" / "demo.mid").exists()
    site_demo = subprocess.run([str(venv / "bin" / "python"), "-c",
                                "from piano_transcription.assets import DEMO_AUDIO; print(DEMO_AUDIO)"],
                               capture_output=True, text=True, cwd=work).stdout.strip()
    one = subprocess.run([str(venv / "bin" / "piano-transcribe"), site_demo, "-o", "midi", "-q"], capture_output=True,
                         text=True, cwd=work)
    assert one.returncode == 0, one.stderr[-2000:]
    assert (work / "midi" / "demo.mid").exists()
    # live transcription of a file needs neither sounddevice nor mido: the live TFLite export, lookahead mode
    live = subprocess.run([str(venv / "bin" / "piano-transcribe"), "live", "--input", site_demo, "--seconds", "4", "-q",
                           "-o", "take.mid"], capture_output=True, text=True, cwd=work)
    assert live.returncode == 0, live.stderr[-2000:]
    assert "default.live.tflite" in live.stderr and (work / "take.mid").exists()
    causal = subprocess.run([str(venv / "bin" / "piano-transcribe"), "live", "--input", site_demo, "--seconds", "4",
                             "--mode", "causal", "-q", "-o", "causal.mid"], capture_output=True, text=True, cwd=work)
    assert causal.returncode == 0, causal.stderr[-2000:]
    assert "causal.tflite" in causal.stderr and (work / "causal.mid").exists()
    no_device = subprocess.run([str(venv / "bin" / "piano-transcribe"), "live"], capture_output=True, text=True,
                               cwd=work)
    assert no_device.returncode == 2 and no_device.stderr.strip().startswith("piano-transcribe: live input needs")
