"""Processes: one, or several started by `torchrun` (DDP; gloo on CPU, nccl on GPU).

`Distributed.from_env()` reads torchrun's RANK / WORLD_SIZE / LOCAL_RANK and joins the process
group; without them it is a single process. Only rank 0 writes checkpoints and logs. The
collectives (`sum`, `gather`, `any`, `barrier`) are no-ops for one process, so the engine runs one
code path for any number of processes; every process must call them in the same order.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["Distributed"]


@dataclasses.dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls) -> "Distributed":
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        context = cls(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(context.local_rank)
            dist.init_process_group(backend=backend)
        return context

    def device(self) -> torch.device:
        return torch.device(f"cuda:{self.local_rank}") if torch.cuda.is_available() else torch.device("cpu")

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of `tensor` over all processes, on `tensor`'s device (itself for one process)."""
        if not self.enabled:
            return tensor
        reduced = tensor.to(self.device(), copy=True)  # nccl reduces CUDA tensors, gloo CPU ones
        dist.all_reduce(reduced)
        return reduced.to(tensor.device)

    def gather(self, value: Any) -> list[Any]:
        """Every process's `value` (any picklable object), in rank order: `[value]` for one process."""
        if not self.enabled:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every process when `flag` is true on any (e.g. a stop request)."""
        if not self.enabled:
            return flag
        return bool(self.sum(torch.tensor([int(flag)], device=device)).item())

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
