"""`voxflow say`: text in, speech out, with the bundled voice or any checkpoint (`tts.api.Synthesizer`).

The text and the options are checked by the API (`tts.inputs`); a mistake exits 1 with one line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tts.errors import UserError
from tts.inputs import InputLimits

__all__ = ["register", "run", "read_text_argument"]

_EPILOG = """examples:
  voxflow say "Hello, world." -o hello.wav
  voxflow say "Hello, world." -o hello.wav --speaker slt --style reference.wav   # another voice, its style
  voxflow say "Hello, world." -o hello.wav --model flowtron.safetensors --sigma 0.5  # a Flowtron, sampled
  echo "Read from standard input." | voxflow say - -o stdin.flac
  voxflow say --text-file chapter.txt -o chapter.wav --model voice.safetensors --vocoder waveglow.safetensors
"""

_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def register(subparsers, formatter_class) -> None:
    from tts.api import bundled_voices

    installed = ", ".join(bundled_voices()) or "none in this build"
    parser = subparsers.add_parser("say", help="speak text into an audio file", epilog=_EPILOG,
                                   formatter_class=formatter_class,
                                   description="Synthesize speech from text with a voice (mel generator + vocoder).")
    parser.add_argument("text", nargs="?", help="the text to speak, or - to read standard input")
    parser.add_argument("--text-file", type=Path, help="read the text from this UTF-8 file")
    parser.add_argument("-o", "--output", type=Path, default=Path("say.wav"), help="output .wav, .flac or .ogg")
    parser.add_argument("--model", type=Path, help="mel-generator checkpoint (voxflow .safetensors or NVIDIA .pt), "
                                                   f"or a bundled voice by name (installed: {installed}; the first "
                                                   "is the default)")
    parser.add_argument("--vocoder", type=Path, help="vocoder checkpoint; Griffin-Lim when omitted")
    parser.add_argument("--speaker", help="speaker name or id, for multi-speaker models")
    parser.add_argument("--style", type=Path, help="reference audio whose speaking style to copy")
    parser.add_argument("--sigma", type=float, help="sampling temperature of flow models")
    parser.add_argument("--seed", type=int, help="random seed, for repeatable output")
    parser.add_argument("--denoise", type=float, metavar="STRENGTH", help="WaveGlow denoiser strength, e.g. 0.01")
    parser.add_argument("--max-chars", type=int, default=InputLimits.max_text_chars, metavar="N",
                        help=f"refuse longer text (default {InputLimits.max_text_chars}: about an hour of speech)")
    parser.set_defaults(func=run)


def read_text_argument(text: str | None, text_file: Path | None, max_chars: int = InputLimits.max_text_chars) -> str:
    """The text from the positional argument, `-` (stdin) or `--text-file`; empty is an error, and so
    is text that is not UTF-8 or over `max_chars` characters (checked before a huge file is read whole)."""
    if text is not None and text_file is not None:
        raise UserError("give the text either as an argument or with --text-file, not both")
    if text_file is not None:
        if not text_file.is_file():
            raise UserError(f"{text_file}: no such text file" + (" (a directory)" if text_file.is_dir() else ""))
        with text_file.open("rb") as stream:
            text = _read_text(stream, str(text_file), max_chars)
    elif text == "-":
        text = _read_text(getattr(sys.stdin, "buffer", sys.stdin), "standard input", max_chars)
    if text is None or not text.strip():
        raise UserError("no text to say: pass it as an argument, with - for standard input, or with --text-file")
    return text.strip()


def _read_text(stream, source: str, max_chars: int) -> str:
    """UTF-8 text from a binary stream, reading no more than `max_chars` characters can take."""
    limit = 4 * max_chars  # UTF-8 takes at most 4 bytes a character
    data = stream.read(limit + 1)
    if isinstance(data, str):  # a text stream (stdin replaced, e.g. in tests)
        return data
    if len(data) > limit:
        raise UserError(f"{source}: over {limit} bytes, more text than --max-chars {max_chars} allows")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{source}: not UTF-8 text (byte {error.start})") from None


def run(args: argparse.Namespace) -> int:
    limits = InputLimits(max_text_chars=args.max_chars)  # first: it refuses a --max-chars that is not positive
    text = read_text_argument(args.text, args.text_file, limits.max_text_chars)
    if args.output.suffix.lower() not in _AUDIO_SUFFIXES:
        raise UserError(f"{args.output}: unsupported output format; use one of {', '.join(_AUDIO_SUFFIXES)}")
    from tts.api import BUNDLED_VOICES, Synthesizer

    bundled = args.model is not None and str(args.model) in BUNDLED_VOICES and not args.model.exists()
    for option, path in (("--model", None if bundled else args.model), ("--vocoder", args.vocoder),
                         ("--style", args.style)):
        if path is not None and str(path) != "griffin_lim" and not path.is_file():
            raise UserError(f"{option} {path}: no such file")

    synthesizer = Synthesizer.from_pretrained(args.model, vocoder=args.vocoder, limits=limits)
    result = synthesizer.synthesize(text, speaker=args.speaker, style=args.style, sigma=args.sigma, seed=args.seed,
                                    denoise=args.denoise)
    result.save(args.output)
    print(f"{args.output}: {result.duration:.2f} s of speech at {result.sample_rate} Hz", file=sys.stderr)
    return 0
