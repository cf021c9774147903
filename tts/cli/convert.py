"""`voxflow convert`: an NVIDIA `.pt` checkpoint (or a voxflow one) → a self-describing `.safetensors`.

Mel generators (Tacotron 2 ...) go through `tts.loading.read_model` / `save_model`; WaveGlow vocoders
through `vocoders.load_vocoder` / `save_vocoder`. Which one a file holds is read from its tensor
names (NVIDIA files, through the restricted unpickler: nothing pickled runs) or its `kind`
metadata (voxflow files, e.g. to store one in float16 with `--half`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tts.errors import UserError

__all__ = ["register", "run"]

_EPILOG = """examples:
  voxflow convert tacotron2_statedict.pt -o tacotron2.safetensors
  voxflow convert waveglow_256channels_universal_v5.pt -o waveglow.safetensors
  voxflow convert waveglow_256channels_universal_v5.pt -o waveglow_fp16.safetensors --half
  voxflow convert runs/lj/model.safetensors -o lj_fp16.safetensors --half --force

The output holds the weights and, in its metadata, the model kind and full config (audio params,
symbol set, dimensions), so `voxflow say --model/--vocoder` and `tts.load_model` /
`vocoders.load_vocoder` load it with no NVIDIA code. WaveGlow is stored with its weight norm folded
(as NVIDIA's `remove_weightnorm` does; the outputs are identical).
"""

_WAVEGLOW_PREFIXES = ("WN.", "convinv.", "upsample.", "flows.")


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser("convert", help="convert an NVIDIA .pt checkpoint to .safetensors",
                                   epilog=_EPILOG, formatter_class=formatter_class,
                                   description="Convert an NVIDIA Tacotron 2 or WaveGlow checkpoint (or a voxflow "
                                               "one) into a self-describing voxflow .safetensors file.")
    parser.add_argument("source", type=Path, metavar="SRC", help="NVIDIA .pt file or voxflow .safetensors")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DST", help="output .safetensors file")
    parser.add_argument("--half", action="store_true", help="store floating-point weights as float16 (half the size)")
    parser.add_argument("--force", action="store_true", help="overwrite DST if it exists")
    parser.set_defaults(func=run)


def _is_waveglow(path: Path) -> bool:
    from tts.checkpoint import is_safetensors, read_checkpoint
    from tts.legacy import read_legacy_checkpoint

    if is_safetensors(path):
        return read_checkpoint(path).kind == "waveglow"
    return any(key.startswith(_WAVEGLOW_PREFIXES) for key in read_legacy_checkpoint(path).state_dict)


def _convert_waveglow(source: Path, output: Path, half: bool) -> tuple[str, str, int]:
    import vocoders

    model = vocoders.load_vocoder(source).model
    vocoders.save_vocoder(output, model, half=half)
    config = model.config
    summary = (f"{config.n_flows} flows, {config.wn_channels} channels, {config.wn_layers} WaveNet layers, "
               f"{config.audio.n_mels} mels, {config.audio.sample_rate} Hz, hop {config.audio.hop_length}"
               + (", glow_old coupling" if config.alternate_halves else ""))
    return "waveglow", summary, sum(parameter.numel() for parameter in model.parameters())


def _convert_mel_generator(source: Path, output: Path, half: bool) -> tuple[str, str, int]:
    from tts.loading import read_model, save_model

    loaded = read_model(source)
    save_model(output, loaded.model, speakers=loaded.speakers, half=half)
    config = loaded.model.config
    parts = [f"symbol set {config.text.symbol_set}", f"{config.audio.n_mels} mels",
             f"{config.audio.sample_rate} Hz"]
    if getattr(config, "n_speakers", 0):
        parts.append(f"{config.n_speakers} speakers")
    if getattr(config, "gst", None) is not None:
        parts.append("GST")
    return loaded.kind, ", ".join(parts), sum(parameter.numel() for parameter in loaded.model.parameters())


def run(args: argparse.Namespace) -> int:
    source, output = args.source, args.output
    if not source.is_file():
        raise UserError(f"{source}: no such file")
    if output.suffix != ".safetensors":
        raise UserError(f"{output}: the output must end in .safetensors")
    if output.exists() and not args.force:
        raise UserError(f"{output} already exists; pass --force to overwrite it")
    if output.resolve() == source.resolve():
        raise UserError(f"{output}: the output must differ from the source")
    convert = _convert_waveglow if _is_waveglow(source) else _convert_mel_generator
    kind, summary, n_parameters = convert(source, output, args.half)
    size = output.stat().st_size / 1e6
    print(f"wrote {output}: {kind} ({summary}); {n_parameters:,} parameters, "
          f"{'float16' if args.half else 'float32'}, {size:.1f} MB")
    return 0
