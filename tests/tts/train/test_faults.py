"""Faults a training run must survive: `kill -9` at any moment (also mid-save), SIGTERM, a full disk.

The kill test trains a toy task in a real child process: this file run as a script
(`python test_faults.py RUN MAX_STEPS [--resume] [--pause WRITER:STEP:NTH]`). `--pause` makes the
child stop in the middle of writing a checkpoint (half the file on disk), announce it with a
`paused` file and wait there to be killed. After every kill the newest complete checkpoint must
load, and the run, resumed again and again, must end with exactly the weights of a run that was
never interrupted.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from tts.checkpoint import read_checkpoint
from tts.errors import TrainingError
from tts.train.config import TrainConfig
from tts.train.engine import Trainer
from tts.train.state import Progress, latest_step_dir, load_train_state

from toy_task import ToyConfig, ToyTask

ROOT = Path(__file__).resolve().parents[3]
MAX_STEPS, CHECKPOINT_EVERY = 160, 2  # the kills take ~50 steps; the rest is slack for a slow machine
_STEP_SECONDS = 0.01  # the child's steps take at least this long, so a random kill lands mid-run


def _task(step_seconds: float = 0.0, width: int = 8) -> ToyTask:
    """The toy task, its steps taking at least `step_seconds`."""
    pause = (lambda calls: time.sleep(step_seconds)) if step_seconds else None
    return ToyTask(ToyConfig(width=width, n_items=24), on_step=pause)


def _train_config(**changes) -> TrainConfig:
    base = dict(batch_size=4, learning_rate=1e-2, max_steps=MAX_STEPS, checkpoint_every=CHECKPOINT_EVERY,
                validate_every=10**6, log_every=10**6, val_size=0, keep_checkpoints=2, seed=3,
                decay_start=20, decay_half_life=30)
    return TrainConfig(**{**base, **changes})


# -- the child process ----------------------------------------------------------------------------

def _pause_in(writer: str, step: int, nth: int, paused: Path) -> None:
    """Patch one checkpoint writer so that its `nth` write for `step` stops halfway, for good."""
    import tts.checkpoint
    import tts.train.state

    calls = []

    def stop_halfway(write, destination: str) -> None:
        calls.append(1)
        if len(calls) < nth:
            write()
            return
        write()
        with open(destination, "r+b") as file:
            file.truncate(os.path.getsize(destination) // 2)
        paused.with_suffix(".tmp").write_text(destination)
        os.replace(paused.with_suffix(".tmp"), paused)  # the test never reads a half-written name
        time.sleep(600)  # killed here

    def saving(module, this_writer: str):
        real = module.save_file

        def save_file(tensors, path, metadata):
            found = (int(metadata["step"]) if "step" in metadata
                     else json.loads(metadata["progress"])["step"] if "progress" in metadata else -1)
            if this_writer == writer and found == step:
                stop_halfway(lambda: real(tensors, path, metadata=metadata), path)
            else:
                real(tensors, path, metadata=metadata)
        return save_file

    tts.checkpoint.save_file = saving(tts.checkpoint, "model")
    tts.train.state.save_file = saving(tts.train.state, "train_state")
    real_copy = shutil.copyfile

    def copyfile(source, destination):
        if writer == "run_copy" and Path(source).parent.name == f"step_{step:06d}":
            stop_halfway(lambda: real_copy(source, destination), destination)
        else:
            real_copy(source, destination)

    shutil.copyfile = copyfile


def _child(argv: list[str]) -> None:
    run, max_steps = Path(argv[0]), int(argv[1])
    torch.set_num_threads(1)
    if "--pause" in argv:
        writer, step, nth = argv[argv.index("--pause") + 1].split(":")
        _pause_in(writer, int(step), int(nth), run.parent / "paused")
    trainer = Trainer(_task(_STEP_SECONDS), _train_config(max_steps=max_steps), run, run.parent,
                      resume="--resume" in argv, progress_bar=False)
    print(trainer.fit().step, flush=True)


# -- the test side ----------------------------------------------------------------------------------

@pytest.fixture
def children():
    """The child processes a test starts; any still running when it ends (a failed test) are killed."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _start(children: list, run: Path, resume: bool = True, pause: str | None = None) -> subprocess.Popen:
    (run.parent / "paused").unlink(missing_ok=True)
    command = [sys.executable, __file__, str(run), str(MAX_STEPS)] + (["--resume"] if resume else []) \
        + (["--pause", pause] if pause else [])
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    with open(run.parent / f"{run.name}.log", "a") as log:
        children.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=environment))
    return children[-1]


def _wait_for(process: subprocess.Popen, run: Path, condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            log = (run.parent / f"{run.name}.log").read_text()[-3000:]
            pytest.fail(f"the child exited ({process.returncode}) before {what}:\n{log}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def _latest_step(run: Path) -> int:
    latest = latest_step_dir(run)
    return int(latest.name.rsplit("_", 1)[-1].split(".")[0]) if latest is not None else -1


def _assert_resumable(run: Path) -> int:
    """The newest complete checkpoint loads (weights and training state); returns its step."""
    latest = latest_step_dir(run)
    assert latest is not None
    checkpoint = read_checkpoint(latest / "model.safetensors")
    model = _task().build_model()
    model.load_state_dict(checkpoint.state_dict)
    progress, _ = load_train_state(latest, torch.optim.Adam(model.parameters()))
    assert progress.step == int(checkpoint.metadata["step"]) == _latest_step(run)
    published = read_checkpoint(run / "model.safetensors")  # the run's weights file is always whole too
    assert int(published.metadata["step"]) <= progress.step
    return progress.step


def _leftovers(run: Path) -> list[str]:
    return sorted(str(path.relative_to(run)) for path in run.rglob(".*"))


def _kill_at_random(children: list, run: Path, rng: random.Random) -> None:
    before = _latest_step(run)
    process = _start(children, run, resume=before >= 0)
    _wait_for(process, run, lambda: _latest_step(run) > before, "it saved a checkpoint")
    time.sleep(rng.uniform(0.0, 0.1))  # ≤ 10 steps (of ≥ 10 ms) later, somewhere in a step or a save
    process.kill()
    process.wait()
    assert _assert_resumable(run) >= max(before, CHECKPOINT_EVERY)  # never behind what was saved before


def _kill_mid_write(children: list, run: Path, writer: str, step: int, nth: int = 1) -> None:
    before = _assert_resumable(run)
    process = _start(children, run, pause=f"{writer}:{step}:{nth}")
    _wait_for(process, run, (run.parent / "paused").exists, f"it paused writing {writer} of step {step}")
    half_written = Path((run.parent / "paused").read_text())
    assert half_written.exists() and half_written.name.startswith(".")  # a hidden temp file, half there
    process.kill()
    process.wait()
    assert half_written.exists()  # nothing cleaned up after the kill ...
    after = _assert_resumable(run)  # ... yet the newest complete checkpoint loads
    if writer == "run_copy":  # the step folder was complete; only RUN/model.safetensors was being replaced
        assert after == step and int(read_checkpoint(run / "model.safetensors").metadata["step"]) < step
    else:
        assert after == (step if nth > 1 else before)


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_nothing_and_resumes_exactly(tmp_path, children):
    straight = tmp_path / "straight"  # the reference: trained here, in one go
    Trainer(_task(), _train_config(), straight, tmp_path, progress_bar=False).fit()
    run, rng = tmp_path / "faulty", random.Random(1234)

    _kill_at_random(children, run, rng)  # the first run, killed somewhere after its first checkpoint
    for writer in ("model", "train_state", "run_copy"):
        next_save = (_latest_step(run) // CHECKPOINT_EVERY + 1) * CHECKPOINT_EVERY
        _kill_mid_write(children, run, writer, step=next_save)
        if writer != "train_state":
            _kill_at_random(children, run, rng)

    process = _start(children, run)  # SIGTERM: the step finishes, a checkpoint is saved, the process exits 0
    before = _latest_step(run)
    _wait_for(process, run, lambda: _latest_step(run) > before, "it saved a checkpoint")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    stopped_at = int((tmp_path / "faulty.log").read_text().split()[-1])
    assert _assert_resumable(run) == stopped_at < MAX_STEPS
    assert int(read_checkpoint(run / "model.safetensors").metadata["step"]) == stopped_at

    # The last step is saved twice (on schedule, then at exit): die in the second save, which
    # replaces a complete step folder.
    _kill_mid_write(children, run, "train_state", step=MAX_STEPS, nth=2)
    process = _start(children, run)
    assert process.wait(timeout=300) == 0, (tmp_path / "faulty.log").read_text()[-3000:]

    assert _leftovers(run) == []  # the half-written files are gone
    # Weights, optimizer moments, RNG states and position: the same path, not merely a close one.
    for name in ("model.safetensors", f"checkpoints/step_{MAX_STEPS:06d}/train_state.safetensors"):
        (expected, expected_metadata), (found, found_metadata) = _contents(straight / name), _contents(run / name)
        assert found_metadata == expected_metadata and sorted(found) == sorted(expected)
        for key, tensor in expected.items():
            torch.testing.assert_close(found[key], tensor, rtol=0, atol=0, msg=key)


def _contents(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as file:
        return {key: file.get_tensor(key) for key in file.keys()}, file.metadata()


# -- a full disk ----------------------------------------------------------------------------------

def _enospc(path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def _fill_disk_halfway(monkeypatch, writer: str, error: str) -> None:
    """Make one checkpoint writer put half a file on disk, then fail as a full disk does."""
    from safetensors import SafetensorError

    def failure(path):
        if error == "safetensors":  # how safetensors' own writer reports it
            return SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return _enospc(path)

    def half_then_fail(path):
        with open(path, "wb") as file:
            file.write(b"\x00" * 64)
        raise failure(path)

    if writer == "run_copy":
        monkeypatch.setattr(shutil, "copyfile", lambda source, destination: half_then_fail(destination))
    else:
        module = "tts.checkpoint" if writer == "model" else "tts.train.state"
        monkeypatch.setattr(f"{module}.save_file", lambda tensors, path, metadata=None: half_then_fail(path))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("writer, error", [("model", "os"), ("train_state", "safetensors"), ("run_copy", "os")])
def test_a_full_disk_is_reported_and_the_previous_checkpoint_kept(tmp_path, monkeypatch, writer, error):
    run = tmp_path / "run"
    Trainer(_task(), _train_config(max_steps=4), run, tmp_path, progress_bar=False).fit()
    previous = _files(run / "checkpoints" / "step_000004")
    published = (run / "model.safetensors").read_bytes()
    _fill_disk_halfway(monkeypatch, writer, error)
    resumed = Trainer(_task(), _train_config(max_steps=8), run, tmp_path, resume=True, progress_bar=False)
    failed = "model.safetensors" if writer == "run_copy" else f"step_000006/{writer}.safetensors"
    with pytest.raises(TrainingError, match=rf"cannot write \S*{failed} \(no space left on device\)") as caught:
        resumed.fit()
    assert "Free some disk space, then continue with --resume" in str(caught.value)
    assert _files(run / "checkpoints" / "step_000004") == previous
    assert (run / "model.safetensors").read_bytes() == published
    assert _leftovers(run) == []  # neither the half file nor a staging folder stays
    if writer == "run_copy":  # the step folder itself was written whole
        assert latest_step_dir(run).name == "step_000006"
        assert "the step 6 checkpoint is complete" in str(caught.value)
    else:
        assert latest_step_dir(run).name == "step_000004"
        assert "step_000004, and" in str(caught.value) and "are unchanged" in str(caught.value)
    monkeypatch.undo()  # space freed: the run goes on from the last good checkpoint
    again = Trainer(_task(), _train_config(max_steps=8), run, tmp_path, resume=True, progress_bar=False)
    assert again.fit().step == 8 and _leftovers(run) == []


def test_a_folder_swap_interrupted_midway_still_resumes(tmp_path):
    """A re-save of step N renames the old folder to `.step_N.replaced` before the new one moves in;
    a process killed between the two renames leaves only that copy, which `latest_step_dir` uses."""
    run = tmp_path / "run"
    Trainer(_task(), _train_config(max_steps=4, keep_checkpoints=1), run, tmp_path, progress_bar=False).fit()
    checkpoints = run / "checkpoints"
    os.replace(checkpoints / "step_000004", checkpoints / ".step_000004.replaced")
    (checkpoints / ".step_000006.abcd").mkdir()  # and a half-written staging folder of a later step
    assert latest_step_dir(run) == checkpoints / ".step_000004.replaced"
    resumed = Trainer(_task(), _train_config(max_steps=6, keep_checkpoints=1), run, tmp_path, resume=True,
                      progress_bar=False)
    assert resumed.progress == Progress(step=4, epoch=0, batch_in_epoch=4)
    assert resumed.fit().step == 6
    assert sorted(path.name for path in checkpoints.iterdir()) == ["step_000006"]


def test_a_damaged_or_foreign_training_state_is_a_clear_error(tmp_path):
    run = tmp_path / "run"
    Trainer(_task(), _train_config(max_steps=2), run, tmp_path, progress_bar=False).fit()
    step = latest_step_dir(run)
    wide = _task(width=16).build_model()  # another run's model: its Adam moments differ
    with pytest.raises(TrainingError, match=r"train_state\.safetensors: the training state does not fit this run's "
                                            r"model and optimizer \(ValueError"):
        load_train_state(step, torch.optim.Adam(nn.Sequential(nn.Linear(4, 16), nn.Linear(16, 2)).parameters()))
    with pytest.raises(TrainingError, match="does not fit"):
        load_train_state(step, torch.optim.Adam(list(wide.parameters())[:1]))
    data = (step / "train_state.safetensors").read_bytes()
    (step / "train_state.safetensors").write_bytes(data[: len(data) // 2])  # e.g. a disk fault after the save
    with pytest.raises(TrainingError, match=r"train_state\.safetensors: cannot read the training state"):
        Trainer(_task(), _train_config(max_steps=4), run, tmp_path, resume=True, progress_bar=False)


if __name__ == "__main__":
    _child(sys.argv[1:])
