"""Processes of a training run started by `accelerate launch` or `torchrun`, and data-parallel training.

FSDP and DeepSpeed (physlora.train.engines) share the batch split and reductions described here, but
reduce gradients themselves.

The global batch of one optimizer step is the accumulation window: `gradient_accumulation_steps`
micro-batches of `batch_size` examples, in the same order whatever the number of processes. Process r
of N runs micro-batches r, r+N, r+2N, ... of each window. Every process divides its token-summed loss
by the supervised tokens of the whole window, summed over all processes. One all-reduce (sum) of the
trainable gradients per step then gives every process the gradient that a single process would have
accumulated over the whole window. The optimizer steps are identical on every process, so the adapters
stay equal without broadcasting weights.

The gradients are reduced once per step, as DDP with `no_sync` does. The model is not wrapped in
DistributedDataParallel, because the causal-model loss calls the decoder stack and the output
projection directly rather than the model's `forward`, so DDP's per-forward bookkeeping would not run.
LoRA gradients are small, so they travel as one flattened tensor.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Sequence, TypeVar

import torch

from physlora.errors import ConfigError

logger = logging.getLogger(__name__)

Item = TypeVar("Item")

def launched_process_count() -> int:
    """Number of processes of the current launch: WORLD_SIZE under accelerate launch or torchrun, else 1."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@dataclass
class Processes:
    """This process's place among the training processes. With one process every method is a no-op."""

    count: int = 1
    rank: int = 0
    state: object | None = None  # accelerate.PartialState when count > 1

    @classmethod
    def from_environment(cls) -> Processes:
        """Join the process group of the current launch, or return a single process when none was launched."""
        if launched_process_count() <= 1:
            return cls()
        from accelerate import PartialState

        # Without CUDA, accelerate 1.16 joins a CPU process group (gloo) only when asked for the CPU.
        state = PartialState(cpu=not torch.cuda.is_available())
        if state.num_processes != launched_process_count():
            raise ConfigError(
                f"WORLD_SIZE is {launched_process_count()} but accelerate joined {state.num_processes} processes "
                f"({state.distributed_type}); launch with `physlora train --num-processes N`, accelerate launch or torchrun"
            )
        logger.info("process %d of %d (%s, backend %s)", state.process_index, state.num_processes,
                    state.distributed_type, state.backend)
        return cls(count=state.num_processes, rank=state.process_index, state=state)

    @property
    def is_main(self) -> bool:
        """True on the process that writes the run folder, the logs and the trackers."""
        return self.rank == 0

    def check_accumulation(self, accumulation: int) -> None:
        """Raise ConfigError when a full window has fewer micro-batches than there are processes."""
        if self.count == 1:
            return
        if accumulation < self.count:
            raise ConfigError(
                f"training.gradient_accumulation_steps={accumulation} is smaller than the {self.count} processes, "
                "so some processes would get no micro-batch in a step; set it to a multiple of the process count"
            )
        if accumulation % self.count:
            logger.warning(
                "training.gradient_accumulation_steps=%d is not a multiple of the %d processes: some processes "
                "run one micro-batch fewer per step and wait for the others", accumulation, self.count,
            )

    def share(self, window: Sequence[Item]) -> list[Item]:
        """Return this process's micro-batches of an accumulation window (every count-th, from `rank`)."""
        return list(window[self.rank :: self.count])

    def sum(self, *values: float) -> list[float]:
        """Sum each value over all processes, in float64 so token counts up to 2**53 stay exact."""
        if self.count == 1:
            return list(values)
        from accelerate.utils import reduce

        totals = reduce(torch.tensor(values, dtype=torch.float64, device=self._device()), reduction="sum")
        return totals.tolist()

    def any(self, flag: bool) -> bool:
        """Return True on every process when `flag` is true on at least one (for example a stop signal)."""
        return bool(self.sum(float(flag))[0]) if self.count > 1 else flag

    def reduce_gradients(self, parameters: list[torch.nn.Parameter]) -> None:
        """Replace each parameter's gradient by its sum over all processes. A missing gradient counts as zero."""
        if self.count == 1:
            return
        from accelerate.utils import reduce

        grads = [parameter.grad if parameter.grad is not None else torch.zeros_like(parameter) for parameter in parameters]
        flat = reduce(torch.cat([grad.reshape(-1) for grad in grads]), reduction="sum")
        offset = 0
        for parameter in parameters:
            size = parameter.numel()
            parameter.grad = flat[offset : offset + size].view_as(parameter).clone()
            offset += size

    def gather_objects(self, value: object) -> list[object]:
        """Return `value` of every process, in rank order (picklable objects only)."""
        if self.count == 1:
            return [value]
        from accelerate.utils import gather_object

        return gather_object([value])

    def wait(self) -> None:
        """Block until every process has reached this point."""
        if self.state is not None:
            self.state.wait_for_everyone()

    def seed_rank_streams(self, seed: int) -> None:
        """Give every process but the first its own torch RNG stream, so dropout masks differ across
        processes. Process 0 keeps the stream a single-process run has."""
        if self.rank:
            torch.manual_seed(seed + 1_000_003 * self.rank)

    def _device(self) -> torch.device:
        return self.state.device if self.state is not None else torch.device("cpu")
