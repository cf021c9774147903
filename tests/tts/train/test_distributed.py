"""Several processes: DDP over gloo on CPU follows the single-process run, rank 0 alone writes,
broken items are handled in step on every rank, and `voxflow train --nproc` launches torchrun."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tts.checkpoint import read_checkpoint
from tts.cli import build_parser
from tts.cli.train import worker_argv
from tts.data import LengthBucketSampler

import toy_ddp
from toy_task import logged

ROOT = Path(__file__).resolve().parents[3]


def _torchrun(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def _step_folders(run: Path) -> list[str]:
    return sorted(path.name for path in (run / "checkpoints").iterdir())


@pytest.mark.slow
def test_two_processes_follow_the_one_process_run_and_rank_zero_saves(tmp_path):
    result = _torchrun(str(Path(toy_ddp.__file__)), str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    two = [state["split"] for state in ranks]
    assert [state["world"] for state in two] == [2, 2] and [state["step"] for state in two] == [6, 6]
    for first, second in zip(two[0]["params"] + two[0]["critic"], two[1]["params"] + two[1]["critic"]):
        torch.testing.assert_close(first, second, rtol=0, atol=0)  # DDP averaged the same gradients

    # One process with the global batch (2 × 4) takes the same steps, broken item included.
    one, _ = toy_ddp.train(str(tmp_path / "one"), 8, broken=[3], critic=True)
    assert one["world"] == 1 and one["skipped"] == two[0]["skipped"] == two[1]["skipped"] == 1
    losses = {name: logged(tmp_path / name) for name in ("one", "two")}
    assert [step for step, _ in losses["two"]] == list(range(1, 7))
    torch.testing.assert_close(torch.tensor(losses["two"]), torch.tensor(losses["one"]), rtol=1e-5, atol=1e-6)
    for expected, found in zip(one["params"] + one["critic"], two[0]["params"] + two[0]["critic"]):
        torch.testing.assert_close(found, expected, rtol=1e-5, atol=1e-6)  # the critic's gradients too
    # Each run wrote one checkpoint set (rank 0 only: no second copy, no leftover staging folder).
    for name in ("one", "two"):
        assert _step_folders(tmp_path / name) == ["step_000006"]
        assert read_checkpoint(tmp_path / name / "model.safetensors").metadata["step"] == "6"
    saved = read_checkpoint(tmp_path / "two" / "model.safetensors")
    torch.testing.assert_close(saved.state_dict["0.weight"], two[0]["params"][0])

    # A micro-batch emptied on one rank is skipped on both (no hang); too many broken items stop both.
    emptied = [state["emptied"] for state in ranks]
    assert [state["step"] for state in emptied] == [6, 6] and emptied[0]["bad"] == emptied[1]["bad"] == [5]
    for first, second in zip(emptied[0]["params"], emptied[1]["params"]):
        torch.testing.assert_close(first, second, rtol=0, atol=0)
    stopped = [state["stopped"] for state in ranks]
    assert stopped[0]["error"] == stopped[1]["error"] and stopped[0]["bad"] == stopped[1]["bad"]
    assert re.search(r"^[23] of the 8 training items failed to load, more than train.max_bad_item_fraction=0.1 "
                     r"allows \(e.g. OSError: clip\d.wav: unreadable", stopped[0]["error"]), stopped[0]["error"]
    assert len(stopped[0]["bad"]) > 1 and _step_folders(tmp_path / "stopped")  # it saved before stopping


def test_each_global_batch_is_split_between_ranks_and_micro_batches():
    lengths = [(index * 37) % 101 for index in range(45)]
    whole = LengthBucketSampler(lengths, 8, seed=3)
    for world_size, accumulation, batch_size in ((2, 1, 4), (1, 2, 4), (2, 2, 2)):
        shares = [LengthBucketSampler(lengths, batch_size, seed=3, rank=rank, world_size=world_size,
                                      accumulation=accumulation) for rank in range(world_size)]
        for epoch in (0, 1):
            for sampler in (whole, *shares):
                sampler.set_epoch(epoch)
            micro = [list(share) for share in shares]
            assert all(len(batches) == len(shares[0]) == 6 * accumulation for batches in micro)
            for step, expected in enumerate(whole):  # step k: the union of every rank's micro-batches
                found = [i for batches in micro for batch in batches[step * accumulation:(step + 1) * accumulation]
                         for i in batch]
                assert sorted(found) == sorted(expected)
                assert all(len(batch) <= batch_size for batches in micro for batch in batches)
    whole.set_epoch(0)
    first_epoch = list(whole)
    whole.set_epoch(1)
    assert list(whole) != first_epoch  # set_epoch reshuffles
    # 9 items in global batches of 8: the leftover item cannot be split between 2 ranks, so it is
    # dropped there (one process trains on it); every rank still yields the same number of batches.
    assert [len(batch) for batch in LengthBucketSampler([5] * 9, 8)] in ([8, 1], [1, 8])
    assert [[len(batch) for batch in LengthBucketSampler([5] * 9, 4, rank=rank, world_size=2)]
            for rank in (0, 1)] == [[4], [4]]
    # A short global batch (2 ranks × 2 micro-batches of 2) is spread evenly; with fewer items than
    # pieces, the micro-batches that cannot give every rank an item stay empty on all ranks.
    for n_items, sizes in ((5, [[1, 1], [1, 2]]), (3, [[1, 0], [2, 0]])):
        short = [LengthBucketSampler([5] * n_items, 2, rank=rank, world_size=2, accumulation=2) for rank in (0, 1)]
        assert [[len(batch) for batch in sampler] for sampler in short] == sizes


def test_nproc_reruns_the_command_without_the_launcher_options():
    parser = build_parser()
    argv = ["train", "tacotron2", "--data", "d", "--out", "o", "--config", "tiny", "--set", "train.batch_size=2",
            "--set", "model.decoder.rnn_dim=8", "--resume", "--no-progress", "--freeze", "encoder", "--nproc", "2",
            "--nnodes", "2", "--rdzv-endpoint", "node0:29500"]
    args = parser.parse_args(argv)
    forwarded = worker_argv(args.train_parser, args)
    assert forwarded[0] == "tacotron2" and "--nproc" not in forwarded and "--nnodes" not in forwarded
    again = parser.parse_args(["train", *forwarded])
    launcher = {"nproc", "nnodes", "rdzv_endpoint"}
    assert {k: v for k, v in vars(again).items() if k not in launcher} == {
        k: v for k, v in vars(args).items() if k not in launcher}


def test_launcher_options_need_nproc_and_an_endpoint(tmp_path, capsys):
    from tts.cli import main

    base = ["train", "tacotron2", "--data", str(tmp_path), "--out", str(tmp_path / "run")]
    assert main([*base, "--nnodes", "2"]) == 1
    assert "--nnodes and --rdzv-endpoint only apply with --nproc" in capsys.readouterr().err
    assert main([*base, "--nproc", "2", "--nnodes", "2"]) == 1
    assert "--nnodes > 1 needs --rdzv-endpoint HOST:PORT" in capsys.readouterr().err
    assert main([*base, "--nproc", "0"]) == 1
    assert "expected positive numbers, found 0" in capsys.readouterr().err
    # A config mistake is reported once by the launcher, before any process starts.
    assert main([*base, "--nproc", "2", "--set", "train.batch_sise=2"]) == 1
    assert capsys.readouterr().err.count("unknown config key") == 1


@pytest.mark.slow
def test_voxflow_train_nproc_runs_two_processes_and_writes_one_checkpoint(small_corpus, tmp_path):
    run = tmp_path / "run"
    settings = ["train.batch_size=2", "train.max_steps=2", "train.checkpoint_every=100", "train.validate_every=100",
                "train.val_size=0", "train.log_every=1"]
    command = [sys.executable, "-m", "tts.cli", "train", "tacotron2", "--data", str(small_corpus), "--out", str(run),
               "--config", "tiny", "--no-progress", "--nproc", "2", *[f"--set={item}" for item in settings]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("stopped at step 2") == 1  # rank 0 reports; rank 1 stays quiet
    assert _step_folders(run) == ["step_000002"]
    checkpoint = read_checkpoint(run / "model.safetensors")
    assert checkpoint.kind == "tacotron2" and checkpoint.metadata["step"] == "2"


def test_the_launcher_turns_torchruns_signal_exception_into_one_line(monkeypatch, capsys):
    from torch.distributed import run
    from torch.distributed.elastic.multiprocessing.api import SignalException

    from tts.train import launcher

    def stopped(argv):
        raise SignalException("Process 1 got signal: 15", sigval=signal.SIGTERM)

    monkeypatch.setattr(run, "main", stopped)
    assert launcher.main(["--nproc_per_node", "2", "-m", "tts.train"]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.strip().startswith("voxflow train: stopped by SIGTERM")
