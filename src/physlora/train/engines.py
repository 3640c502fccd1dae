"""Training engines, the ways the trained model runs across processes: plain data-parallel (the default),
FSDP 2 or DeepSpeed ZeRO.

`accelerate launch` with a config whose distributed_type is FSDP or DEEPSPEED sets ACCELERATE_USE_FSDP
or ACCELERATE_USE_DEEPSPEED and passes the config's options as environment variables. accelerate's
plugin classes parse those options here, but physlora applies the engine itself: accelerate 1.16 turns
FSDP and DeepSpeed on only for GPU processes, so going through its `Accelerator.prepare` would leave
the CPU path untestable. The engines are torch's `fully_shard` (FSDP 2) and `deepspeed.initialize`.

Every engine receives the same loss: the micro-batch's summed negative log-likelihood divided by the
supervised tokens of the whole accumulation window, summed over all processes. Each process's
gradient is then its share of the window gradient, and the window gradient is the sum over
processes. FSDP and DeepSpeed average over processes instead of summing, so their loss is multiplied
by the process count first.

FSDP and DeepSpeed see the loss as one forward pass of `LossModule`, whose forward is the scoring
function. FSDP gathers sharded parameters in the forward hooks of the module that owns them. The
causal loss calls the decoder stack and the output projection directly rather than the model's own
forward, so only a root module around the whole loss gathers the root's parameters in time.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from pathlib import Path
from typing import Callable

import torch

from physlora.errors import ConfigError, RunFolderError
from physlora.models.architectures import Family
from physlora.models.scoring import label_logprobs, unwrap
from physlora.train.checkpoint import load_model_weights
from physlora.train.distributed import Processes
from physlora.train.launch import check_engine_settings

logger = logging.getLogger(__name__)

DATA_PARALLEL, FSDP, DEEPSPEED = "data-parallel", "fsdp", "deepspeed"
ENGINE_ENV = {"ACCELERATE_USE_FSDP": FSDP, "ACCELERATE_USE_DEEPSPEED": DEEPSPEED}
SHARDED_STATE = "sharded"  # checkpoint subfolder with the engine's own per-process files


def engine_from_environment() -> str:
    """Name of the engine that the accelerate launch selected: fsdp, deepspeed or data-parallel."""
    for variable, engine in ENGINE_ENV.items():
        if os.environ.get(variable, "").lower() == "true":
            return engine
    return DATA_PARALLEL


class LossModule(torch.nn.Module):
    """A root module whose forward returns `label_logprobs` of the model it contains.

    Returns two tensors of shape (B,): summed label log-probabilities and supervised token counts.
    """

    def __init__(self, model: torch.nn.Module, family: Family) -> None:
        super().__init__()
        self.model = model
        self.family = family
        # The layer classes that FSDP's transformer-based wrapping shards one by one.
        self._no_split_modules = getattr(unwrap(model), "_no_split_modules", None) or []

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return label_logprobs(self.model, self.family, batch)


class DataParallelEngine:
    """Data-parallel training: one full model per process, and the trainable gradients summed over processes
    once per step.

    Its forward passes make no collective calls, so processes may run different numbers of micro-batches,
    and validation runs on the first process alone.
    """

    name = DATA_PARALLEL
    lockstep = False  # True when every process must run the same number of forward passes

    def __init__(self, model: torch.nn.Module, family: Family, processes: Processes) -> None:
        self.model = model
        self.family = family
        self.processes = processes
        self.optimizer: torch.optim.Optimizer | None = None

    def prepare(self, build_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer]) -> torch.optim.Optimizer:
        self.optimizer = build_optimizer(self.model)
        return self.optimizer

    @functools.cached_property
    def trainable(self) -> list[torch.nn.Parameter]:
        """The trainable parameters, read after `prepare` (FSDP replaces them by sharded ones)."""
        return [parameter for parameter in self.model.parameters() if parameter.requires_grad]

    def score(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return label_logprobs(self.model, self.family, batch)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_and_step(self, max_norm: float, scaler) -> float:
        """Sum the gradients over processes, clip them to `max_norm`, update, and return the norm before clipping."""
        trainable = self.trainable
        self.processes.reduce_gradients(trainable)
        if scaler is not None:
            scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, max_norm).item()
        if scaler is not None:
            scaler.step(self.optimizer)
            scaler.update()
        elif math.isfinite(grad_norm):
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def save_state(self, folder: Path) -> None:
        """Write model weights and optimizer state into `folder` (first process only)."""
        if self.processes.is_main:
            self.model.save_pretrained(folder, safe_serialization=True)
            torch.save(self.optimizer.state_dict(), folder / "optimizer.pt")

    def load_state(self, folder: Path) -> None:
        load_model_weights(folder, self.model)
        self.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))

    def save_model(self, folder: Path, save: Callable[[torch.nn.Module, Path, dict | None], None]) -> None:
        """Call `save(model, folder, state_dict)` on the first process; None means the model's own weights."""
        if self.processes.is_main:
            save(self.model, folder, None)


class FSDPEngine(DataParallelEngine):
    """FSDP 2: every transformer layer, and the rest of the model as the root, is sharded over the processes.

    A forward pass gathers each layer's weights from all processes, so every process must run the same
    number of forward passes, validation included.
    """

    name = FSDP
    lockstep = True

    def prepare(self, build_optimizer):
        from accelerate.utils import FullyShardedDataParallelPlugin
        from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy
        from torch.distributed.fsdp import CPUOffloadPolicy, FSDPModule, fully_shard

        plugin = FullyShardedDataParallelPlugin()
        if plugin.fsdp_version != 2:
            raise ConfigError(
                f"the accelerate config sets fsdp_version {plugin.fsdp_version}; physlora runs FSDP 2 only, "
                "set fsdp_config.fsdp_version: 2 (see src/physlora/config/accelerate/fsdp.yaml)"
            )
        self.root = LossModule(self.model, self.family)
        options = {"reshard_after_forward": plugin.reshard_after_forward, "offload_policy": plugin.cpu_offload}
        if isinstance(plugin.cpu_offload, CPUOffloadPolicy) and not torch.cuda.is_available():
            options["offload_policy"] = CPUOffloadPolicy(pin_memory=False)  # pinning needs an accelerator
        policy = fsdp2_prepare_auto_wrap_policy(plugin, self.root)
        layers = [module for module in self.root.modules() if module is not self.root and policy and policy(module)]
        for layer in reversed(layers):  # innermost first, as fully_shard expects
            if not isinstance(layer, FSDPModule):
                fully_shard(layer, **options)
        fully_shard(self.root, **options)
        logger.info("FSDP 2: %d sharded layers plus the root, over %d processes", len(layers), self.processes.count)
        self.optimizer = build_optimizer(self.model)
        return self.optimizer

    def score(self, batch):
        return self.root(batch)

    def backward(self, loss):
        (loss * self.processes.count).backward()

    def clip_and_step(self, max_norm, scaler):
        trainable = self.trainable
        total = torch.nn.utils.clip_grad_norm_(trainable, max_norm)
        grad_norm = (total.full_tensor() if hasattr(total, "full_tensor") else total).item()
        if math.isfinite(grad_norm):
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def _state_dicts(self, full: bool) -> tuple[dict, dict]:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        options = StateDictOptions(full_state_dict=full, cpu_offload=full)
        model_state, optimizer_state = get_state_dict(self.root, self.optimizer, options=options)
        trainable = {name for name, parameter in self.root.named_parameters() if parameter.requires_grad}
        return {name: value for name, value in model_state.items() if name in trainable}, optimizer_state

    def save_state(self, folder):
        import torch.distributed.checkpoint as dcp

        model_state, optimizer_state = self._state_dicts(full=False)
        dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=str(folder / SHARDED_STATE))

    def load_state(self, folder):
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        model_state, optimizer_state = self._state_dicts(full=False)
        state = {"model": model_state, "optimizer": optimizer_state}
        dcp.load(state, checkpoint_id=str(folder / SHARDED_STATE))
        set_state_dict(self.root, self.optimizer, model_state_dict=state["model"],
                       optim_state_dict=state["optimizer"], options=StateDictOptions(strict=False))

    def save_model(self, folder, save):
        """Gather the full weights (a collective call: every process runs it) and save them on the first."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
        full = get_model_state_dict(self.root, options=options)
        if self.processes.is_main:
            # The gathered tensors are copies, so transformers cannot see which weights are tied. Tied
            # names other than the first are dropped, as a save from the model itself does.
            tied = _tied_duplicate_names(self.model)
            weights = {name.removeprefix("model."): value for name, value in full.items()}
            save(self.model, folder, {name: value for name, value in weights.items() if name not in tied})


def _tied_duplicate_names(model: torch.nn.Module) -> set[str]:
    """Names of parameters that are the same tensor as an earlier parameter (tied embeddings)."""
    first: dict[int, str] = {}
    duplicates = set()
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if id(parameter) in first:
            duplicates.add(name)
        else:
            first[id(parameter)] = name
    return duplicates


class DeepSpeedEngine(DataParallelEngine):
    """DeepSpeed ZeRO stage 1 or 2: optimizer state (and at stage 2 the gradients) are partitioned over the
    processes, while every process keeps the full weights. The engine's forward and backward hooks
    expect every process to take part, so processes run in lockstep as under FSDP."""

    name = DEEPSPEED
    lockstep = True

    def __init__(self, model, family, processes, *, batch_size: int, accumulation: int, max_grad_norm: float):
        super().__init__(model, family, processes)
        self.batch_size, self.accumulation, self.max_grad_norm = batch_size, accumulation, max_grad_norm

    def prepare(self, build_optimizer):
        import deepspeed
        from accelerate.utils import DeepSpeedPlugin

        plugin = DeepSpeedPlugin()
        if plugin.zero_stage not in (0, 1, 2):
            raise ConfigError(
                f"the accelerate config sets DeepSpeed zero_stage {plugin.zero_stage}; physlora runs ZeRO stages "
                "0 to 2, which keep the full weights on every process. Use fsdp.yaml to shard the weights too"
            )
        self.root = LossModule(self.model, self.family)
        client_optimizer = build_optimizer(self.model)
        self.engine, _, _, _ = deepspeed.initialize(
            model=self.root, optimizer=client_optimizer, config=self._config(plugin),
        )
        # The engine wraps the optimizer, but steps the parameter groups of `client_optimizer`, so the
        # learning-rate schedule is built on that one.
        self.optimizer = client_optimizer
        logger.info("DeepSpeed ZeRO stage %d over %d processes", plugin.zero_stage, self.processes.count)
        return client_optimizer

    def _config(self, plugin) -> dict:
        """DeepSpeed's config: ZeRO options from the accelerate config; batch, clipping and precision from physlora's.

        physlora's autocast handles mixed precision, so DeepSpeed keeps float32 weights. With unmanaged
        gradient accumulation, `backward` only accumulates and `step` reduces and updates, whatever the
        number of micro-batches a process ran in the window.
        """
        zero = dict(plugin.deepspeed_config.get("zero_optimization", {}))
        per_process = -(-self.accumulation // self.processes.count)
        return {
            "train_micro_batch_size_per_gpu": self.batch_size,
            "gradient_accumulation_steps": per_process,
            "train_batch_size": self.batch_size * per_process * self.processes.count,
            "gradient_clipping": self.max_grad_norm,
            "managed_gradient_accumulation": False,
            "zero_optimization": zero,
            "zero_allow_untested_optimizer": True,
            "steps_per_print": 2**31 - 1,
            "wall_clock_breakdown": False,
        }

    def score(self, batch):
        return self.engine(batch)

    def backward(self, loss):
        self.engine.backward(loss * self.processes.count, scale_wrt_gas=False)

    def clip_and_step(self, max_norm, scaler):
        # DeepSpeed clips with gradient_clipping = training.max_grad_norm inside `step`.
        self.engine.step()
        grad_norm = self.engine.get_global_grad_norm()
        return float(grad_norm) if grad_norm is not None else float("nan")

    def save_state(self, folder):
        self.engine.save_checkpoint(str(folder / SHARDED_STATE), tag="state", save_latest=False,
                                    exclude_frozen_parameters=True)

    def load_state(self, folder):
        path, _ = self.engine.load_checkpoint(str(folder / SHARDED_STATE), tag="state", load_module_strict=False,
                                              load_lr_scheduler_states=False)
        if path is None:
            raise RunFolderError(f"{folder / SHARDED_STATE} has no DeepSpeed state; resume from an older checkpoint")


def build_engine(model: torch.nn.Module, family: Family, processes: Processes, training, precision_name: str,
                 method: str) -> DataParallelEngine:
    """Return the engine of the current launch for `model`. Raises ConfigError for combinations that do not run."""
    # NOTE: FSDP and DeepSpeed have run on CPU processes (gloo) only; the CUDA (nccl) paths are untested.
    engine = engine_from_environment()
    if engine != DATA_PARALLEL and processes.count == 1:
        logger.warning("the accelerate config selects %s but only 1 process was launched; training in one "
                       "process without it (launch 2 or more with --num-processes N)", engine)
        engine = DATA_PARALLEL
    if engine == DATA_PARALLEL:
        return DataParallelEngine(model, family, processes)
    check_engine_settings(engine, precision_name, method)
    if engine == FSDP:
        return FSDPEngine(model, family, processes)
    return DeepSpeedEngine(model, family, processes, batch_size=training.batch_size,
                           accumulation=training.gradient_accumulation_steps, max_grad_norm=training.max_grad_norm)
