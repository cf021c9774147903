"""Speech engines for the synthetic corpus: Debian's flite, festival (HTS) and espeak-ng.

Each `Engine` knows its binary and Debian package, its voices (name → engine argument), how to
draw prosody for one clip from a seeded RNG, and the argv that speaks one sentence into a wav.
Engines run as subprocesses with the text as one argv element (never through a shell) and a
timeout; their output rate is whatever the engine writes (flite 16 kHz, festival HTS 32 kHz,
espeak-ng 22.05 kHz): the builder resamples.

- `flite` voices `slt rms awb kal16`; prosody = `duration_stretch` (speaking rate) and
  `int_f0_target_mean` (pitch, ±20% around the voice's own mean).
- `festival` voice `slt_hts` (CMU ARCTIC slt, HTS); prosody = the HTS engine's speed rate `-r`.
- `espeak-ng` voices `en_us en_gb en_us_f en_gb_f`; prosody = words per minute and pitch.
"""

from __future__ import annotations

import abc
import dataclasses
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

from tts.errors import EngineMissingError, UserError

__all__ = ["Engine", "ENGINES", "get_engine", "EngineFailedError"]

# An engine taking longer than this on one sentence of <= 40 words is stuck, not slow.
_TIMEOUT_S = 120


class EngineFailedError(UserError):
    """An installed engine exited with an error or timed out on a sentence."""


@dataclasses.dataclass(frozen=True)
class Engine(abc.ABC):
    """One speech engine: `name` is what `--engine` takes; `voices` maps voice names to engine arguments."""

    name: str
    binary: str
    package: str
    voices: dict[str, str]
    default_voices: tuple[str, ...]

    def check_installed(self) -> str:
        """The path of the engine's binary; `EngineMissingError` with the apt-get command if absent."""
        path = shutil.which(self.binary)
        if path is None:
            raise EngineMissingError(f"the {self.name} speech engine is not installed ({self.binary} not found "
                                     f"on PATH); install it with: apt-get install -y {self.package}")
        return path

    def check_voices(self, voices: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """The voices, checked against this engine's; unknown or repeated names are a `UserError`."""
        voices = tuple(voices)
        if not voices:
            raise UserError(f"no voices given; {self.name} voices: {', '.join(self.voices)}")
        unknown = [voice for voice in voices if voice not in self.voices]
        if unknown:
            raise UserError(f"unknown {self.name} voice {unknown[0]!r}; valid voices: {', '.join(self.voices)}")
        if len(set(voices)) != len(voices):
            raise UserError(f"voices listed twice: {', '.join(voices)}")
        return voices

    def draw_prosody(self, voice: str, rng: random.Random) -> dict[str, float]:
        """Prosody settings for one clip (empty = the voice's defaults); subclasses vary them."""
        return {}

    @abc.abstractmethod
    def command(self, voice: str, text: str, wav: Path, prosody: dict[str, float], workdir: Path) -> list[str]:
        """The argv (binary first) that speaks `text` into `wav`; `workdir` is a scratch folder."""

    def synthesize(self, voice: str, text: str, wav: Path, prosody: dict[str, float] | None = None) -> Path:
        """Speak `text` with `voice` into `wav` (the engine's own rate and format)."""
        binary = self.check_installed()
        with tempfile.TemporaryDirectory(prefix="voxflow-engine-") as workdir:
            argv = self.command(voice, text, Path(wav), prosody or {}, Path(workdir))
            try:
                result = subprocess.run([binary, *argv[1:]], capture_output=True, text=True, timeout=_TIMEOUT_S,
                                        stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise EngineFailedError(f"{self.name} took over {_TIMEOUT_S} s on {text!r}") from None
        if result.returncode != 0 or not Path(wav).is_file():
            detail = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
            raise EngineFailedError(f"{self.name} (voice {voice}) failed on {text!r}: {detail}")
        return Path(wav)


class _Flite(Engine):
    # Each voice's own mean F0 in Hz (measured with pyin on flite 2.2 output). The rms voice
    # ignores int_f0_target_mean (its F0 comes from its clustergen model), so only its rate varies.
    _F0_MEAN = {"slt": 170.0, "rms": 100.0, "awb": 125.0, "kal16": 105.0}

    def draw_prosody(self, voice: str, rng: random.Random) -> dict[str, float]:
        return {"duration_stretch": round(rng.uniform(0.85, 1.25), 3),
                "int_f0_target_mean": round(self._F0_MEAN[voice] * rng.uniform(0.8, 1.2), 1)}

    def command(self, voice: str, text: str, wav: Path, prosody: dict[str, float], workdir: Path) -> list[str]:
        # flite reads options only before -t/-o, so the --setf flags come first.
        settings = [arg for key, value in prosody.items() for arg in ("--setf", f"{key}={value}")]
        return [self.binary, "-voice", self.voices[voice], *settings, "-t", text, "-o", str(wav)]


class _Festival(Engine):
    _VOICE_DIR = Path("/usr/share/festival/voices/us/cmu_us_slt_arctic_hts")

    def check_installed(self) -> str:
        # text2wave comes with festival; the HTS voice is a separate package festival cannot do without.
        path = super().check_installed()
        if not self._VOICE_DIR.is_dir():
            raise EngineMissingError(f"the festival voice slt_hts is not installed ({self._VOICE_DIR} is missing); "
                                     f"install it with: apt-get install -y {self.package}")
        return path

    def draw_prosody(self, voice: str, rng: random.Random) -> dict[str, float]:
        # HTS's "-r" is a speed factor (> 1 is faster); festival's Duration_Stretch and the
        # half-tone shift "-fm" have no effect on HTS voices, so only the rate varies.
        return {"speed": round(1.0 / rng.uniform(0.85, 1.25), 3)}

    def command(self, voice: str, text: str, wav: Path, prosody: dict[str, float], workdir: Path) -> list[str]:
        text_file = workdir / "text.txt"
        text_file.write_text(text + "\n", encoding="utf-8")
        argv = [self.binary, "-eval", f"({self.voices[voice]})"]
        if "speed" in prosody:
            speed = float(prosody["speed"])
            argv += ["-eval", f"(set! hts_engine_params (append hts_engine_params (list '(\"-r\" {speed}))))"]
        return [*argv, str(text_file), "-o", str(wav)]


class _EspeakNG(Engine):
    def draw_prosody(self, voice: str, rng: random.Random) -> dict[str, float]:
        # Defaults are 175 words per minute and pitch 50 (of 0-99).
        return {"speed": round(175 / rng.uniform(0.85, 1.25)), "pitch": round(rng.uniform(35, 65))}

    def command(self, voice: str, text: str, wav: Path, prosody: dict[str, float], workdir: Path) -> list[str]:
        argv = [self.binary, "-v", self.voices[voice], "-w", str(wav)]
        if prosody:
            argv += ["-s", str(int(prosody["speed"])), "-p", str(int(prosody["pitch"]))]
        # "--" ends the options, so a sentence starting with "-" is still read as text.
        return [*argv, "--", text]


ENGINES: dict[str, Engine] = {
    "flite": _Flite("flite", "flite", "flite", {name: name for name in ("slt", "rms", "awb", "kal16")},
                    ("slt", "rms", "awb", "kal16")),
    "festival": _Festival("festival", "text2wave", "festival festvox-us-slt-hts",
                          {"slt_hts": "voice_cmu_us_slt_arctic_hts"}, ("slt_hts",)),
    "espeak-ng": _EspeakNG("espeak-ng", "espeak-ng", "espeak-ng",
                           {"en_us": "en-us", "en_gb": "en-gb", "en_us_f": "en-us+f3", "en_gb_f": "en-gb+f3"},
                           ("en_us", "en_gb")),
}


def get_engine(name: str) -> Engine:
    """The engine called `name`; an unknown name is a `UserError` listing the valid ones."""
    try:
        return ENGINES[name]
    except KeyError:
        raise UserError(f"unknown speech engine {name!r}; choose one of: {', '.join(ENGINES)}") from None
