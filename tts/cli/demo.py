"""`voxflow demo`: serve the Gradio page (`demo/app.py`) with the bundled voice and/or checkpoints."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tts.errors import UserError

__all__ = ["register", "run", "parse_voices"]

_EPILOG = """examples:
  voxflow demo                                          # the bundled voices on http://127.0.0.1:7860
  voxflow demo --model mellotron=mellotron.safetensors --vocoder waveglow.safetensors
  voxflow demo --model a=flowtron.safetensors --model b=voice.safetensors --vocoder b=waveglow.safetensors
  voxflow demo --host 0.0.0.0 --port 8080                # reachable from other machines: think first

--vocoder NAME=PATH pairs a vocoder with the model of that name; a plain PATH pairs with the
--model in the same position. Models without a vocoder use Griffin-Lim. Needs gradio
(pip install 'voxflow[demo]').
"""

log = logging.getLogger(__name__)


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser("demo", help="serve the web demo (Gradio) on this machine", epilog=_EPILOG,
                                   formatter_class=formatter_class,
                                   description="Serve voxflow studio: speak, style transfer, singing and "
                                               "interpolation in a web page.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port to serve on (default 7860)")
    parser.add_argument("--model", action="append", default=[], metavar="[NAME=]PATH",
                        help="a mel-generator checkpoint to offer (repeatable); NAME defaults to the file's stem")
    parser.add_argument("--vocoder", action="append", default=[], metavar="[NAME=]PATH",
                        help="a vocoder for a --model (repeatable)")
    parser.set_defaults(func=run)


def _split(value: str, option: str) -> tuple[str | None, Path]:
    name, _, path = value.rpartition("=")
    if not path:
        raise UserError(f"{option} {value!r}: expected PATH or NAME=PATH")
    return (name or None), Path(path)


def parse_voices(models: list[str], vocoders: list[str]) -> dict[str, tuple[Path, Path | None]]:
    """--model / --vocoder values → name → (model path, vocoder path or None), files checked."""
    voices: dict[str, tuple[Path, Path | None]] = {}
    for value in models:
        name, path = _split(value, "--model")
        name = name or path.stem
        if name in voices:
            raise UserError(f"--model {value!r}: the name {name!r} is used twice; write NAME=PATH")
        voices[name] = (path, None)
    names = list(voices)
    for index, value in enumerate(vocoders):
        name, path = _split(value, "--vocoder")
        if name is None:
            if index >= len(names):
                raise UserError(f"--vocoder {value}: no --model in position {index + 1} to pair it with")
            name = names[index]
        if name not in voices:
            raise UserError(f"--vocoder {value}: no --model named {name!r} (models: {', '.join(names) or 'none'})")
        voices[name] = (voices[name][0], path)
    for name, (model, vocoder) in voices.items():
        for option, path in (("--model", model), ("--vocoder", vocoder)):
            if path is not None and str(path) != "griffin_lim" and not path.is_file():
                raise UserError(f"{option} {path}: no such file")
    return voices


def _import_app():
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError("the demo needs gradio: pip install 'voxflow[demo]'") from None
    from demo import app

    return app


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: expected 1..65535")
    voices = parse_voices(args.model, args.vocoder)
    from tts.api import Synthesizer, bundled_voices

    loaded: dict[str, object] = {}
    for index, name in enumerate(bundled_voices()):
        loaded["default voice" if index == 0 else f"default {name}"] = Synthesizer.from_pretrained(name)
    if not loaded:
        if not voices:
            Synthesizer.from_pretrained()  # raises the error that says no voice is installed
        log.info("no bundled voice; serving only the --model voices")
    for name, (model, vocoder) in voices.items():
        loaded[name] = Synthesizer.from_pretrained(model, vocoder=vocoder)
    app_module = _import_app()
    app = app_module.build_app(loaded)
    print(f"voxflow demo: serving {', '.join(loaded)} on http://{args.host}:{args.port} (Ctrl+C stops)",
          file=sys.stderr)
    app_module.launch(app, host=args.host, port=args.port)
    return 0
