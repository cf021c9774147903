"""The toy task trained by one process (the test itself) or several (this file under torchrun,
`python -m torch.distributed.run --nproc_per_node 2 toy_ddp.py FOLDER`), for test_distributed.py.
No dropout: the runs must differ only in how each global batch is split, not in random draws.
Each rank saves what it saw to FOLDER/rank{N}.pt."""

from __future__ import annotations

import sys

import torch

from tts.errors import TrainingError
from tts.train.config import TrainConfig
from tts.train.engine import Trainer

from toy_task import ToyConfig, ToyTask


def train(run, batch_size, n_items=30, broken=(), max_steps=6, fraction=0.5, critic=False):
    """Train in `run`; returns what the test compares, and the trainer."""
    config = TrainConfig(batch_size=batch_size, learning_rate=1e-2, max_steps=max_steps, checkpoint_every=100,
                         validate_every=100, log_every=1, val_size=0, seed=1, max_bad_item_fraction=fraction)
    task = ToyTask(ToyConfig(width=8, dropout=0.0, n_items=n_items, critic=critic), broken=broken)
    trainer = Trainer(task, config, run, run, progress_bar=False)
    try:
        trainer.fit()
        error = None
    except TrainingError as caught:
        error = str(caught)
    return {"step": trainer.progress.step, "world": trainer.dist.world_size, "error": error,
            "skipped": trainer.skipped_items, "bad": sorted(trainer.bad_items),
            "params": [p.detach().clone() for p in trainer.model.parameters()],
            "critic": [p.detach().clone() for p in trainer.critic.parameters()] if critic else []}, trainer


if __name__ == "__main__":
    folder = sys.argv[1]
    results = {}
    # 30 items in global batches of 8: 8, 8, 8, 6 (3 per rank); item 3 is broken, so one
    # rank trains on 3 of its 4 items in the step that holds it. A critic trains beside the model.
    results["split"], trainer = train(f"{folder}/two", 4, broken=[3], critic=True)
    # One item per rank: the broken item's global batch empties a rank's micro-batch, so every
    # rank skips it; then too many broken items stop the run on both ranks.
    results["emptied"], _ = train(f"{folder}/emptied", 1, n_items=8, broken=[5])
    results["stopped"], _ = train(f"{folder}/stopped", 1, n_items=8, broken=[1, 2, 6], fraction=0.1)
    torch.save(results, f"{folder}/rank{trainer.dist.rank}.pt")
    trainer.dist.close()
