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


# -- no unpickling of untrusted data (style.md §5) ------------------------------------------------
#
# Our files are safetensors + JSON; NVIDIA's `.pt` files go through `tts.legacy`'s restricted
# unpickler only. This scan finds, through import aliases, every call that could unpickle: the
# pickle family (and pickle.Unpickler subclasses), torch.load without weights_only=True (the one
# exception: tts/legacy.py handing torch.load its restricted pickle module), torch.jit.load, and
# numpy.load without allow_pickle=False.

SCANNED = ("text", "tts", "vocoders", "demo", "benchmarks")
_UNPICKLERS = {f"{module}.{name}" for module in ("pickle", "_pickle", "cPickle", "dill", "cloudpickle")
               for name in ("load", "loads", "Unpickler")} | {
    "joblib.load", "marshal.load", "marshal.loads", "shelve.open", "pandas.read_pickle", "torch.jit.load",
    "torch.package.PackageImporter"}
_TORCH_LOADS = {"torch.load", "torch.serialization.load"}
_RESTRICTED = ("tts/legacy.py", "_restricted_pickle_module")  # the file, and the pickle module it must pass


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name → dotted name it was imported as (`np` → `numpy`, `load` → `torch.load`)."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:  # `import a.b` binds `a`; `import a.b as c` binds `c` to `a.b`
                top = alias.name.split(".")[0]
                aliases[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([aliases.get(node.id, node.id), *reversed(parts)])


def _keyword_is(call: ast.Call, name: str, value) -> bool:
    return any(keyword.arg == name and isinstance(keyword.value, ast.Constant) and keyword.value.value is value
               for keyword in call.keywords)


def _restricted_torch_load(call: ast.Call) -> bool:
    return any(keyword.arg == "pickle_module" and isinstance(keyword.value, ast.Call)
               and _dotted(keyword.value.func, {}) == _RESTRICTED[1] for keyword in call.keywords)


def unpickling_calls(source: str, relative_path: str) -> list[str]:
    """`line: what` for every way `source` could unpickle untrusted data."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and relative_path != _RESTRICTED[0]:
            found += [f"{node.lineno}: class {node.name} subclasses {name}" for base in node.bases
                      if (name := _dotted(base, aliases)) in _UNPICKLERS]
        if not isinstance(node, ast.Call) or (name := _dotted(node.func, aliases)) is None:
            continue
        if name in _UNPICKLERS:
            found.append(f"{node.lineno}: {name}(...)")
        elif name in _TORCH_LOADS and not _keyword_is(node, "weights_only", True) and not (
                relative_path == _RESTRICTED[0] and _restricted_torch_load(node)):
            found.append(f"{node.lineno}: {name}(...) without weights_only=True")
        elif name == "numpy.load" and not _keyword_is(node, "allow_pickle", False):
            found.append(f"{node.lineno}: numpy.load(...) without allow_pickle=False")
    return found


def test_no_module_unpickles_untrusted_data():
    found = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            source = path.read_text(encoding="utf-8")
            found += [f"{relative}:{problem}" for problem in unpickling_calls(source, relative)]
    assert found == [], "load through safetensors, or tts.legacy for NVIDIA .pt files:\n" + "\n".join(found)
    assert unpickling_calls((ROOT / _RESTRICTED[0]).read_text(encoding="utf-8"), "elsewhere.py"), \
        "the scan no longer sees tts/legacy.py's restricted torch.load and Unpickler subclass"


@pytest.mark.parametrize("source", [
    "import pickle\npickle.load(f)",
    "import pickle as p\np.loads(b)",
    "from pickle import loads\nloads(b)",
    "from pickle import Unpickler as U\nU(f).load()",
    "import pickle\nclass Mine(pickle.Unpickler):\n    pass",
    "import torch\ntorch.load(path)",
    "import torch\ntorch.load(path, weights_only=False)",
    "from torch import load\nload(path, map_location='cpu')",
    "import torch.serialization\ntorch.serialization.load(path)",
    "import torch\ntorch.jit.load(path)",
    "import numpy as np\nnp.load(path)",
    "import numpy\nnumpy.load(path, allow_pickle=True)",
    "import joblib\njoblib.load(path)",
    "import torch\ntorch.load(path, pickle_module=_restricted_pickle_module(path), weights_only=False)",
])
def test_the_scan_finds_unpickling(source):
    assert unpickling_calls(source, "tts/example.py")


@pytest.mark.parametrize("source", [
    "import torch\ntorch.load(path, weights_only=True)",
    "import numpy as np\nnp.load(path, allow_pickle=False)",
    "from safetensors.torch import load_file\nload_file(path)",
    "import json\njson.loads(text)",
    "loads = None\nloads(b)",  # not imported from pickle
])
def test_the_scan_passes_safe_loads(source):
    assert unpickling_calls(source, "tts/example.py") == []
