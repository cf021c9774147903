"""Tacotron 2 speed: inference mel frames/s and real-time factor, and training steps/s, per preset.

    python benchmarks/tacotron2.py                   # CPU (2 threads) and CUDA when present
    python benchmarks/tacotron2.py --quick --json out.json

Models have random weights (speed does not depend on them). Inference decodes a fixed number of
steps: `gate_threshold` 1.1 can never be crossed by a sigmoid, so every item runs to
`max_decoder_steps` (the max-steps warning is expected and silenced); prenet dropout 0. Real-time
factor = seconds of audio produced per wall-clock second, at 22050 / 256 mel frames per second of
audio. Training: one optimizer step (forward, loss, backward, Adam) on a batch of 16 utterances of
~40 tokens and ~150 frames (lengths spread ±20 %, padded), as the Tacotron 2 task runs it (fp32;
no AMP). Each number is the median of several timed runs after a warm-up run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts.models.presets import tacotron2_preset  # noqa: E402
from tts.models.tacotron2 import Tacotron2, tacotron2_loss  # noqa: E402

PRESETS = ("nvidia", "small", "tiny")
FRAMES_PER_SECOND = 22050 / 256


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(function, device: torch.device, repeats: int) -> float:
    function()  # warm-up: allocator, oneDNN/cuDNN kernel selection
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _tokens(batch: int, n_tokens: int, n_symbols: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.randint(int(n_tokens * 0.8), int(n_tokens * 1.2) + 1, (batch,), generator=generator)
    lengths[0] = int(lengths.max())
    tokens = torch.randint(1, n_symbols, (batch, int(lengths.max())), generator=generator)
    tokens[torch.arange(tokens.shape[1])[None] >= lengths[:, None]] = 0
    return tokens, lengths


def bench_inference(preset: str, batch: int, device: torch.device, steps: int, repeats: int) -> dict:
    config = tacotron2_preset(preset)
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = Tacotron2(config).to(device).eval()
    tokens, lengths = _tokens(batch, 60, 148, generator)
    tokens, lengths = tokens.to(device), lengths.to(device)

    def run():
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.infer(tokens, lengths, gate_threshold=1.1, max_decoder_steps=steps, prenet_dropout=0.0)

    n_frames = int(run().mel_lengths.sum())  # every item runs all steps: batch · steps · r frames
    seconds = _median_seconds(run, device, repeats)
    frames_per_second = n_frames / seconds
    return {"preset": preset, "device": device.type, "batch": batch, "decoder_steps": steps,
            "frames_per_step": config.decoder.frames_per_step, "mel_frames": n_frames, "seconds": seconds,
            "frames_per_second": frames_per_second, "real_time_factor": frames_per_second / FRAMES_PER_SECOND}


def bench_training(preset: str, device: torch.device, repeats: int, batch: int = 16) -> dict:
    config = tacotron2_preset(preset)
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = Tacotron2(config).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    tokens, token_lengths = _tokens(batch, 40, 148, generator)
    r = config.decoder.frames_per_step
    mel_lengths = torch.randint(120, 181, (batch,), generator=generator)
    mel_lengths[0] = int(mel_lengths.max())
    mel = torch.randn(batch, config.audio.n_mels, int(mel_lengths.max()), generator=generator) - 5
    mel = mel.masked_fill(torch.arange(mel.shape[2])[None, None] >= mel_lengths[:, None, None], 0.0)
    tokens, token_lengths, mel, mel_lengths = (x.to(device) for x in (tokens, token_lengths, mel, mel_lengths))

    def step():
        output = model(tokens, token_lengths, mel, mel_lengths)
        loss, _ = tacotron2_loss(output, mel, mel_lengths, token_lengths, r, config.guided_attention)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    seconds = _median_seconds(step, device, repeats)
    return {"preset": preset, "device": device.type, "batch": batch,
            "mean_tokens": float(token_lengths.float().mean()), "mean_frames": float(mel_lengths.float().mean()),
            "seconds_per_step": seconds, "steps_per_second": 1 / seconds,
            "parameters": sum(p.numel() for p in model.parameters())}


def _header(args, devices) -> list[str]:
    lines = [f"torch {torch.__version__}, Python {platform.python_version()}, "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
             f"{args.threads} torch threads on CPU"]
    if any(d.type == "cuda" for d in devices):
        lines.append(f"CUDA: {torch.cuda.get_device_name(0)}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines.append(f"load average at start {load:.2f}" + (f"; note: {args.note}" if args.note else ""))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--quick", action="store_true", help="fewer decoder steps and repeats (a smoke run)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: CPU, and CUDA when present")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets")
    parser.add_argument("--note", default="", help="a line for the header (e.g. what else ran on the machine)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] if args.device in ("auto", "cpu") else []
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices.append(torch.device("cuda"))
    steps, repeats = (50, 2) if args.quick else (200, 5)
    presets = [name.strip() for name in args.presets.split(",") if name.strip()]
    header = _header(args, devices)
    print("\n".join(header))
    inference, training = [], []
    for device in devices:
        for preset in presets:
            for batch in (1, 8):
                inference.append(bench_inference(preset, batch, device, steps, repeats))
                print(_inference_row(inference[-1]), flush=True)
        for preset in presets:
            training.append(bench_training(preset, device, repeats))
            print(_training_row(training[-1]), flush=True)
    print()
    print(format_tables(inference, training))
    if args.json:
        args.json.write_text(json.dumps({"header": header, "quick": args.quick, "inference": inference,
                                         "training": training}, indent=2) + "\n", encoding="utf-8")
    return 0


def _inference_row(row: dict) -> str:
    return (f"| {row['preset']} | {row['device']} | {row['batch']} | {row['mel_frames']} | "
            f"{row['frames_per_second']:,.0f} | {row['real_time_factor']:.2f} |")


def _training_row(row: dict) -> str:
    return (f"| {row['preset']} | {row['device']} | {row['parameters'] / 1e6:.2f} M | {row['batch']} | "
            f"{row['seconds_per_step']:.3f} | {row['steps_per_second']:.2f} |")


def format_tables(inference: list[dict], training: list[dict]) -> str:
    """Markdown tables of the results."""
    lines = ["Inference (fixed decoder steps, prenet dropout 0):", "",
             "| preset | device | batch | mel frames | frames/s | real-time factor |",
             "|---|---|---|---|---|---|"]
    lines += [_inference_row(row) for row in inference]
    lines += ["", "Training (batch 16, ~40 tokens, ~150 frames, fp32):", "",
              "| preset | device | parameters | batch | s/step | steps/s |", "|---|---|---|---|---|---|"]
    lines += [_training_row(row) for row in training]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
