"""WaveGlow inference speed: the reference path beside the optimized one, on the same weights.

    python benchmarks/vocoder.py                         # CPU (2 threads) and CUDA when present
    python benchmarks/vocoder.py --quick --json out.json

Times `WaveGlow.inverse(mel, z)` (upsampler + all flows; the noise is drawn beforehand) under
`torch.inference_mode` for the published 256-channel size (`nvidia`) and the `small` preset, with
random weights (speed does not depend on them; the `end` layers get small random values so the
couplings are not the identity) and random mels of 1 s and 10 s of 22050 Hz audio.

- CPU, fp32: "reference" = `prepare_for_inference(fast=False)` (plain PyTorch, weight norm folded);
  "optimized" = `prepare_for_inference(fast=True)` (the time-major coupling plan,
  `vocoders/waveglow_inference.py`). The two alternate run by run, so load on a shared machine hits
  both alike; `max abs diff` is the largest sample difference between their outputs.
- CUDA (when present): fp32, tf32, bf16 and fp16 (the whole model cast), each with the reference
  kernels (VOXFLOW_KERNELS=reference) and with the Triton kernels ("auto" picks them on CUDA).

Columns: median wall time of `--runs` timed runs after `--warmup` runs; kHz = output samples per
second / 1000; RTF (real-time factor) = wall-clock seconds per second of audio (< 1: faster than
real time) and its inverse "× real time" = seconds of audio per wall-clock second;
speed-up against the reference row of the same case; peak memory above the level before the call
(CPU: the process's peak RSS after malloc_trim, reset through /proc/self/clear_refs, on the first
timed run; CUDA: max_memory_allocated).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vocoders.waveglow import WaveGlow, WaveGlowConfig  # noqa: E402

SAMPLE_RATE = 22050
CUDA_DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


@contextlib.contextmanager
def _peak_memory(device: torch.device, result: dict):
    """Peak memory (MiB) above the level at entry, into result["peak_mib"] (None where unmeasurable)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        yield
        torch.cuda.synchronize(device)
        result["peak_mib"] = (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so RSS counts live memory only
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM (peak RSS) to the current RSS
        base = _rss_kib("VmRSS")
    except OSError:
        base = None
    yield
    result["peak_mib"] = None if base is None else (_rss_kib("VmHWM") - base) / 1024


def _model(preset: str) -> WaveGlow:
    torch.manual_seed(0)
    model = WaveGlow(WaveGlowConfig.preset(preset))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".end." in name:
                parameter.normal_(0.0, 0.02)
    return model


def _paths(device: torch.device):
    """(label, dtype, setup) for each path; setup(model) prepares it and returns a context for the runs."""
    if device.type == "cpu":
        return [("reference", torch.float32, lambda model: model.prepare_for_inference(fast=False)),
                ("optimized", torch.float32, lambda model: model.prepare_for_inference(fast=True))]
    paths = []
    for precision, dtype in CUDA_DTYPES.items():
        for kernels in ("reference", "triton"):
            paths.append((f"{precision} {kernels}", dtype, (precision, kernels)))
    return paths


def _prepare_cuda(model: WaveGlow, setting: tuple[str, str]) -> None:
    precision, kernels = setting
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    os.environ["VOXFLOW_KERNELS"] = "reference" if kernels == "reference" else ""
    model.prepare_for_inference()


def _time(model: WaveGlow, mel: torch.Tensor, z: torch.Tensor, device: torch.device) -> tuple[float, torch.Tensor]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    audio = model.inverse(mel, z)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, audio


def bench_case(preset: str, seconds: float, device: torch.device, runs: int, warmup: int) -> list[dict]:
    """All paths of one (preset, duration, device) case; the paths' runs are interleaved."""
    model = _model(preset).to(device)
    hop = model.config.audio.hop_length
    n_frames = round(seconds * SAMPLE_RATE / hop)
    generator = torch.Generator().manual_seed(0)
    mel_cpu = torch.randn(1, model.config.audio.n_mels, n_frames, generator=generator)
    z_cpu = 0.6 * model.draw_noise(mel_cpu, generator)
    rows = []
    for label, dtype, setup in _paths(device):
        rows.append({"preset": preset, "seconds": n_frames * hop / SAMPLE_RATE, "device": device.type,
                     "path": label, "dtype": str(dtype).removeprefix("torch."), "times": [], "setup": setup,
                     "model": _model(preset).to(device, dtype) if dtype != torch.float32 else None})
    with torch.inference_mode():
        for repeat in range(warmup + runs):
            for row in rows:
                current = model if row["model"] is None else row["model"]
                row["setup"](current) if device.type == "cpu" else _prepare_cuda(current, row["setup"])
                dtype = next(current.parameters()).dtype
                mel, z = mel_cpu.to(device, dtype), z_cpu.to(device, dtype)
                with _peak_memory(device, row) if repeat == warmup else contextlib.nullcontext():
                    elapsed, audio = _time(current, mel, z, device)
                if repeat >= warmup:
                    row["times"].append(elapsed)
                row["audio"] = audio.float().cpu()
    os.environ.pop("VOXFLOW_KERNELS", None)
    first = rows[0]
    for row in rows:
        median = statistics.median(row["times"])
        row.update(median_s=median, khz=row["audio"].shape[-1] / median / 1000, rtf=median / row["seconds"],
                   x_real_time=row["seconds"] / median,
                   speedup=statistics.median(first["times"]) / median,
                   max_abs_diff=(row["audio"] - first["audio"]).abs().max().item())
    for row in rows:
        for key in ("setup", "model", "audio"):
            row.pop(key)
    return rows


def _table(rows: list[dict]) -> str:
    lines = ["| preset | audio s | device | path | median s | kHz | RTF | × real time | speed-up | peak MiB "
             "| max abs diff |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        peak = "—" if row.get("peak_mib") is None else f"{row['peak_mib']:.0f}"
        lines.append(f"| {row['preset']} | {row['seconds']:.2f} | {row['device']} | {row['path']} | "
                     f"{row['median_s']:.3f} | {row['khz']:.1f} | {row['rtf']:.2f} | {row['x_real_time']:.2f} | "
                     f"{row['speedup']:.2f}× | {peak} | {row['max_abs_diff']:.1e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--quick", action="store_true",
                        help="1 warm-up + 3 runs, and the published size at 1 s only (a CPU run in minutes)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per path (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: CPU, plus CUDA when present")
    parser.add_argument("--presets", default="nvidia,small", help="comma-separated presets")
    parser.add_argument("--seconds", default="1,10", help="comma-separated audio durations")
    parser.add_argument("--note", default="", help="a line for the header (e.g. what else ran on the machine)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = 3 if args.quick else args.runs
    devices = [torch.device("cpu")] if args.device in ("auto", "cpu") else []
    if args.device in ("auto", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    rows = []
    for device in devices:
        for preset in args.presets.split(","):
            for seconds in map(float, args.seconds.split(",")):
                if args.quick and preset == "nvidia" and seconds > 1 and device.type == "cpu":
                    continue
                rows.extend(bench_case(preset, seconds, device, runs, args.warmup))
                print(_table(rows[-len(_paths(device)):]).splitlines()[-1], file=sys.stderr, flush=True)
    header = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "torch": torch.__version__, "threads": args.threads, "cpu": platform.processor() or platform.machine(),
              "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "runs": runs,
              "warmup": args.warmup, "note": args.note, "command": " ".join(sys.argv)}
    print(f"# WaveGlow inference, {header['date']}, torch {header['torch']}, {args.threads} threads, "
          f"median of {runs} after {args.warmup} warm-up{' — ' + args.note if args.note else ''}")
    print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps({"header": header, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
