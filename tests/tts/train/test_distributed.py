"""Two processes under torchrun (DDP over gloo on CPU) train in lockstep and rank 0 checkpoints."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from tts.checkpoint import read_checkpoint

_SCRIPT = textwrap.dedent('''
    import sys, dataclasses, torch
    from torch import nn
    from tts.config import Config
    from tts.train.config import TrainConfig
    from tts.train.engine import Trainer
    from tts.train.task import Task, TaskData

    @dataclasses.dataclass(frozen=True)
    class Toy(Config):
        width: int = 8

    class Pairs(torch.utils.data.Dataset):
        def __init__(self, n):
            g = torch.Generator().manual_seed(0)
            self.x = torch.randn(n, 4, generator=g)
            self.y = self.x.sum(1, keepdim=True)
        def __len__(self):
            return len(self.x)
        def __getitem__(self, i):
            return self.x[i], self.y[i]

    def collate(items):
        x, y = zip(*items)
        return torch.stack(x), torch.stack(y)

    class ToyTask(Task):
        kind = "toy"
        @classmethod
        def preset(cls, name):
            return Toy(), TrainConfig()
        def build_model(self):
            return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
        def build_data(self, data, cache_dir, validation_size, seed):
            return TaskData(Pairs(32), Pairs(0), collate, [1] * 32)
        def compute_loss(self, model, batch):
            x, y = batch
            loss = nn.functional.mse_loss(model(x), y)
            return loss, {}

    run, out = sys.argv[1], sys.argv[2]
    config = TrainConfig(batch_size=4, max_steps=6, checkpoint_every=3, validate_every=100, val_size=0, seed=1)
    trainer = Trainer(ToyTask(Toy()), config, run, run, progress_bar=False)
    progress = trainer.fit()
    torch.save({"step": progress.step, "world": trainer.dist.world_size,
                "params": [p.detach().clone() for p in trainer.model.parameters()]},
               f"{out}/rank{trainer.dist.rank}.pt")
    trainer.dist.close()
''')


@pytest.mark.slow
def test_two_processes_stay_in_sync_and_rank_zero_saves(tmp_path):
    script = tmp_path / "train_toy.py"
    script.write_text(_SCRIPT)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_port", "29517", str(script), str(tmp_path / "run"), str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    assert [state["world"] for state in ranks] == [2, 2] and [state["step"] for state in ranks] == [6, 6]
    for first, second in zip(ranks[0]["params"], ranks[1]["params"]):
        torch.testing.assert_close(first, second, rtol=0, atol=0)  # DDP averaged the same gradients
    saved = read_checkpoint(tmp_path / "run" / "model.safetensors")
    assert saved.metadata["step"] == "6"
    torch.testing.assert_close(saved.state_dict["0.weight"], ranks[0]["params"][0])
