"""The package boundaries of style.md: imports flow text → tts → vocoders, never back up.

- `text` imports nothing from voxflow, and not torch.
- `vocoders` may import from `tts` only its leaf modules (audio, config, errors).
- Only `tts.api` (and the surfaces above it: cli, demo) may import both model code and vocoders.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("text", "tts", "vocoders")
VOCODER_MAY_IMPORT = {"tts.audio", "tts.config", "tts.errors", "tts.checkpoint", "tts.legacy"}
# The surfaces, and the training engine (vocoders turn validation mels into audio for TensorBoard
# and train WaveGlow); models never import vocoders.
MAY_IMPORT_VOCODERS = ("tts.api", "tts.cli", "tts.train", "demo")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            yield module, path


@pytest.mark.parametrize("module, path", list(_modules()), ids=lambda value: str(value))
def test_module_respects_the_layering(module, path):
    imports = _imports(path)
    ours = {name for name in imports if name.split(".")[0] in PACKAGES}
    if module.startswith("text"):
        assert not {name for name in ours if not name.startswith("text")}, f"{module} imports {ours}"
        assert not any(name.split(".")[0] == "torch" for name in imports), f"{module} imports torch"
    elif module.startswith("vocoders"):
        from_tts = {name for name in ours if name.startswith("tts")}
        allowed = {name for name in from_tts if any(name == m or name.startswith(m + ".") for m in VOCODER_MAY_IMPORT)}
        assert from_tts == allowed, f"{module} imports {from_tts - allowed}"
    elif module.startswith("tts") and not module.startswith(MAY_IMPORT_VOCODERS):
        assert not {name for name in ours if name.startswith("vocoders")}, f"{module} imports vocoders"


def test_import_vocoders_alone_works():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", "import vocoders, vocoders.griffin_lim"], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
