"""A tiny run folder for load tests and server tests, built in seconds without training.

It contains the `tiny` preset's config (a randomly initialised T5 with the real T5 tokenizer from
PHYSLORA_T5_TOKENIZER), a LoRA adapter whose B matrices are random instead of zero so the adapted model
gives other answers than the base model, and a small hand-written test split.
"""

from __future__ import annotations

from pathlib import Path

import torch

from physlora.config import dump_yaml, load_config
from physlora.data.records import Record, write_jsonl
from physlora.io import write_text_atomic
from physlora.models.adapters import attach_lora
from physlora.models.loading import load_model

QUESTIONS = [
    ("A lever has its fulcrum 1 m from a 200 N load. What torque does the load exert?", "200 N m", "mechanics"),
    ("What is the SI unit of electric charge?", "coulomb", "electromagnetism"),
    ("What happens to the wavelength of a wave when its frequency doubles at constant speed?", "it halves",
     "waves_optics"),
    ("How much heat raises 1 kg of water by 1 kelvin?", "about 4200 joules", "thermodynamics"),
    ("What particle is emitted in beta decay?", "an electron", "modern_physics"),
    ("A car accelerates from rest at 2 m/s2 for 5 s. What is its final velocity?", "10 m/s", "kinematics"),
]


def tiny_records() -> list[Record]:
    return [
        Record(id=f"tiny-test-{index}", source="hand", question=question, answer=answer, topic=topic,
               original_split="test", target=answer)
        for index, (question, answer, topic) in enumerate(QUESTIONS)
    ]


def build_tiny_run(
    run_dir: Path, overrides: list[str] | None = None, adapter_seed: int = 0, lora_b_std: float = 0.1
) -> Path:
    """Write config.yaml, adapter/ and data/test.jsonl into `run_dir`; return `run_dir`.

    `overrides` are `--set` style values applied to the tiny preset. The LoRA B matrices are drawn from
    N(0, lora_b_std^2) with `adapter_seed`, so runs built with different seeds hold different adapters on
    the same base. With the default 0.1 the adapter moves the tiny model's logits by several units.
    """
    run_dir = Path(run_dir)
    config = load_config(preset="tiny", overrides=[f"output.dir={run_dir}", *(overrides or [])])
    bundle = load_model(config.model, seed=config.training.seed)
    model = attach_lora(bundle.model, bundle.family, config.lora, config.training.seed)
    generator = torch.Generator().manual_seed(adapter_seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * lora_b_std)
    model.save_pretrained(run_dir / "adapter")
    write_text_atomic(run_dir / "config.yaml", dump_yaml(config))
    write_jsonl(tiny_records(), run_dir / "data" / "test.jsonl")
    return run_dir
