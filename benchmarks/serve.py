"""Load test of the web demo: concurrent requests through gradio_client to `voxflow demo` on 127.0.0.1.

    python benchmarks/serve.py                                # a tiny random-weight voice, 40 requests, 4 at a time
    python benchmarks/serve.py --model voice.safetensors --vocoder waveglow.safetensors --requests 100
    python benchmarks/serve.py --requests 12 --transfer --hostile --json serve.json

Starts `python -m tts.cli demo` (the real server, its default guards and queue) in a subprocess on a
free port, waits for the page, then sends `--requests` requests to the /speak endpoint (and, with
`--transfer`, every third one to /transfer with an uploaded reference clip) from `--concurrency`
client threads, each with its own `gradio_client.Client`. Each request has a `--timeout`; no new
request starts after `--time-limit` seconds (those are counted as skipped). With `--hostile`, every
fifth request is a hostile one (NUL in the text, text over the demo's limit, a negative seed, an upload
of random bytes named .wav) that must be refused with the guard's message: "refused as expected"
counts them, and a hostile request that succeeds or fails otherwise is an error.

Without `--model` the voice is a tiny randomly initialised Mellotron written to a temporary folder,
so this runs anywhere: its audio is noise that never stops by itself, so every request decodes the
demo's full step budget (a worst case for the voice's size), and the timings measure the serving path
(queue, text and audio checks, decoding, Griffin-Lim, plots, file transfer), not a real voice.

Columns: latency of successful requests (submit → result, client side) p50/p90/p99/max, throughput
= successful requests per wall-clock second of the load phase; the server's RSS after start-up and
its peak RSS (VmHWM from /proc/PID/status: the whole run, start-up included) and CPU seconds.
The demo queue runs one job at a time (`Limits`), so latency grows with the concurrency while the
throughput stays that of one worker.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEAK_TEXTS = ("The quick brown fox jumps over the lazy dog.", "Would you like a cup of tea before the train leaves?",
               "I never said she stole my money.", "Hello there, how are you today?")
# (label, a substring the refusal must contain) for each hostile request `_hostile_request` makes
HOSTILE = (("NUL in the text", "control character U+0000"), ("text over the limit", "the demo takes at most"),
           ("negative seed", "seed: expected an integer"), ("random bytes as .wav", "not a readable audio file"))


def tiny_voice(folder: Path) -> Path:
    """A tiny randomly initialised Mellotron (GST, two speakers), saved as a voxflow checkpoint."""
    import torch

    from tts.loading import save_model
    from tts.models.mellotron import Mellotron, mellotron_preset

    torch.manual_seed(0)
    return save_model(folder / "tiny.safetensors", Mellotron(mellotron_preset("tiny").replace(n_speakers=2)),
                      speakers=("rms", "slt"))


def reference_clip(folder: Path) -> tuple[Path, Path]:
    """A 2 s vowel-like clip (220 Hz with vibrato and harmonics) and 30 kB of random bytes named .wav."""
    import soundfile

    time_s = np.arange(2 * 22050) / 22050
    phase = 2 * np.pi * np.cumsum(220 * (1 + 0.03 * np.sin(2 * np.pi * 5 * time_s))) / 22050
    audio = sum(np.sin(k * phase) / k for k in range(1, 6)) * 0.2 * np.hanning(len(time_s))
    clip, noise = folder / "reference.wav", folder / "noise.wav"
    soundfile.write(clip, audio.astype(np.float32), 22050, subtype="PCM_16")
    noise.write_bytes(np.random.default_rng(0).bytes(30_000))
    return clip, noise


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: Path, vocoder: Path | None, threads: int, startup_timeout: float,
                 log: Path) -> tuple[subprocess.Popen, str]:
    """`voxflow demo --model voice=MODEL [--vocoder voice=VOCODER]` on a free port, its output going to
    `log` → the process and its URL."""
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, "-m", "tts.cli", "demo", "--port", str(port), "--model", f"voice={model}"]
    command += ["--vocoder", f"voice={vocoder}"] if vocoder is not None else []
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the demo exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.5)
    process.terminate()
    raise SystemExit(f"the demo did not answer on {url} within {startup_timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _proc_status(pid: int, field: str) -> int | None:
    """A kB field of /proc/PID/status (VmRSS, VmHWM), or None where /proc is not there."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return None


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def _requests(args, voice_name: str, clip: Path, noise: Path) -> list[tuple[str, str, tuple]]:
    """(kind, api_name, arguments) for each request: speak, transfer and hostile ones, interleaved."""
    from gradio_client import handle_file

    made = []
    for index in range(args.requests):
        text, seed = SPEAK_TEXTS[index % len(SPEAK_TEXTS)], index + 1
        if args.hostile and index % 5 == 4:
            label = HOSTILE[(index // 5) % len(HOSTILE)][0]
            bad = {"NUL in the text": ("/speak", ("Hello\x00there", voice_name, "rms", 0.6, 0, seed)),
                   "text over the limit": ("/speak", ("a" * 600, voice_name, "rms", 0.6, 0, seed)),
                   # (NaN cannot be sent: gradio_client's JSON refuses it before it leaves the client)
                   "negative seed": ("/speak", (text, voice_name, "rms", 0.6, 0, -5)),
                   "random bytes as .wav": ("/transfer", (handle_file(str(noise)), text, ["GST style"], 0, text,
                                                          voice_name, "rms", seed))}[label]
            made.append((f"hostile: {label}", *bad))
        elif args.transfer and index % 3 == 2:
            made.append(("transfer", "/transfer", (handle_file(str(clip)), "", ["GST style", "pitch"], 0, text,
                                                   voice_name, "rms", seed)))
        else:
            made.append(("speak", "/speak", (text, voice_name, "rms", 0.6, 0, seed)))
    return made


def run_load(url: str, requests: list, concurrency: int, timeout: float, time_limit: float) -> tuple[list, float]:
    """Send the requests from `concurrency` threads; → one outcome dict per request, and the wall time."""
    from gradio_client import Client

    local = threading.local()
    deadline = time.monotonic() + time_limit

    def send(request) -> dict:
        kind, api_name, arguments = request
        if time.monotonic() > deadline:
            return {"kind": kind, "outcome": "skipped"}
        if not hasattr(local, "client"):
            local.client = Client(url, verbose=False)
        start = time.perf_counter()
        job = local.client.submit(*arguments, api_name=api_name)
        try:
            job.result(timeout=timeout)
            outcome, message = "ok", ""
        except concurrent.futures.TimeoutError:
            job.cancel()
            outcome, message = "error", f"no answer within {timeout:.0f} s"
        except Exception as error:  # the server's message, as gradio_client raises it
            outcome, message = "refused", (str(error).strip().splitlines() or [type(error).__name__])[0]
        latency = time.perf_counter() - start
        if kind.startswith("hostile"):
            expected = dict(HOSTILE)[kind.removeprefix("hostile: ")]
            outcome = "refused as expected" if outcome == "refused" and expected in message else "error"
            message = message or "a hostile request succeeded"
        elif outcome == "refused":
            outcome = "error"
        return {"kind": kind, "outcome": outcome, "latency_s": latency, "message": message}

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        outcomes = list(pool.map(send, requests))
    return outcomes, time.perf_counter() - start


def summarize(outcomes: list[dict], wall_s: float) -> dict:
    latencies = np.array([o["latency_s"] for o in outcomes if o["outcome"] == "ok"])
    errors = [f"{o['kind']}: {o['message']}" for o in outcomes if o["outcome"] == "error"]
    summary = {"requests": len(outcomes), "ok": int(latencies.size), "errors": len(errors),
               "refused_as_expected": sum(o["outcome"] == "refused as expected" for o in outcomes),
               "skipped": sum(o["outcome"] == "skipped" for o in outcomes), "first_errors": errors[:5],
               "wall_s": wall_s, "throughput_rps": latencies.size / wall_s if wall_s else 0.0}
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100)):
        summary[f"latency_{name}_s"] = float(np.percentile(latencies, q)) if latencies.size else None
    return summary


def _table(summary: dict, server: dict) -> str:
    def seconds(value):
        return f"{value:.2f}" if value is not None else "-"

    def mib(kib):
        return f"{kib / 1024:.0f}" if kib is not None else "-"

    return "\n".join([
        "| requests | ok | errors | refused (expected) | skipped | p50 s | p90 s | p99 s | max s | req/s "
        "| server RSS start / peak MiB | server CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {summary['requests']} | {summary['ok']} | {summary['errors']} | {summary['refused_as_expected']} "
        f"| {summary['skipped']} | {seconds(summary['latency_p50_s'])} | {seconds(summary['latency_p90_s'])} "
        f"| {seconds(summary['latency_p99_s'])} | {seconds(summary['latency_max_s'])} "
        f"| {summary['throughput_rps']:.2f} | {mib(server['rss_start_kib'])} / {mib(server['rss_peak_kib'])} "
        f"| {seconds(server['cpu_s'])} |"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="mel-generator checkpoint (default: a tiny random voice)")
    parser.add_argument("--vocoder", type=Path, help="vocoder checkpoint for --model (default: Griffin-Lim)")
    parser.add_argument("--requests", type=int, default=40, help="requests to send (default 40)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one request may take (default 120)")
    parser.add_argument("--time-limit", type=float, default=600.0,
                        help="no request starts after this many seconds of load (default 600)")
    parser.add_argument("--transfer", action="store_true", help="every third request is a style transfer")
    parser.add_argument("--hostile", action="store_true", help="every fifth request is hostile and must be refused")
    parser.add_argument("--threads", type=int, default=1, help="the server's torch threads (default 1)")
    parser.add_argument("--note", default="", help="a line for the header (e.g. what else ran on the machine)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.timeout <= 0 or args.time_limit <= 0:
        parser.error("--requests, --concurrency, --timeout and --time-limit must be positive")

    voice, outcomes, wall_s, server = serve_and_load(args)
    summary = summarize(outcomes, wall_s)
    header = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "voice": voice,
              "requests": args.requests, "concurrency": args.concurrency, "timeout_s": args.timeout,
              "time_limit_s": args.time_limit, "transfer": args.transfer, "hostile": args.hostile,
              "server_threads": args.threads, "cpu": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "note": args.note, "command": " ".join(sys.argv)}
    print(f"# voxflow demo under load, {header['date']}: {voice}; {args.requests} requests, {args.concurrency} at "
          f"a time{', style transfer' if args.transfer else ''}{', hostile' if args.hostile else ''}; server "
          f"{args.threads} thread(s), {header['cpus']} CPUs{' — ' + args.note if args.note else ''}")
    print(_table(summary, server))
    for error in summary["first_errors"]:
        print(f"error: {error}")
    if server["log_tail"]:
        print(f"the server died during the run; the end of its output:\n{server['log_tail']}")
    if args.json:
        args.json.write_text(json.dumps({"header": header, "summary": summary, "server": server,
                                         "requests": outcomes}, indent=1) + "\n")
    return 0 if summary["errors"] == 0 and not server["log_tail"] else 1


def serve_and_load(args: argparse.Namespace) -> tuple[str, list[dict], float, dict]:
    """Start the server, run the load, stop the server → the voice's description, the outcomes, the
    load's wall time and the server's memory and CPU figures (and its output's end if it died)."""
    with tempfile.TemporaryDirectory(prefix="voxflow-serve-") as folder:
        if args.model is None:
            model, voice = tiny_voice(Path(folder)), "a tiny randomly initialised Mellotron (random weights: noise)"
        else:
            model, voice = args.model, f"{args.model}" + (f" + {args.vocoder}" if args.vocoder else "")
        clip, noise = reference_clip(Path(folder))
        log = Path(folder) / "server.log"
        process, url = start_server(model, args.vocoder, args.threads, startup_timeout=300, log=log)
        try:
            rss_start = _proc_status(process.pid, "VmRSS")
            outcomes, wall_s = run_load(url, _requests(args, "voice", clip, noise), args.concurrency, args.timeout,
                                        args.time_limit)
            died = process.poll() is not None
            server = {"rss_start_kib": rss_start, "rss_peak_kib": _proc_status(process.pid, "VmHWM"),
                      "cpu_s": _cpu_seconds(process.pid), "log_tail": log.read_text()[-3000:] if died else ""}
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    return voice, outcomes, wall_s, server

if __name__ == "__main__":
    raise SystemExit(main())
