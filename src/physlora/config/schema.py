"""Typed schema of one run: data, model, LoRA, training, evaluation and output.

Every field has its default here and nowhere else. pydantic rejects unknown keys, wrong types and
out-of-range values before any work starts. `physlora.config.loading` turns those failures into one
message that names each key, the value received and what is allowed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TOPICS = (
    "mechanics",
    "thermodynamics",
    "electromagnetism",
    "waves_optics",
    "modern_physics",
    "kinematics",
    "dynamics",
    "energy",
    "momentum",
    "other",
)

SourceType = Literal["sciq", "arc", "mmlu", "scienceqa", "physics_scienceqa", "jsonl", "csv"]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SourceConfig(Section):
    """One input data set."""

    type: SourceType
    """Reader to use: sciq, arc, mmlu, scienceqa, physics_scienceqa, jsonl or csv."""
    name: str | None = None
    """Label stored in each record's `source` field; defaults to `type`."""
    path: str | None = None
    """File or folder, relative to `data.data_dir` unless absolute; None means the reader's default folder."""
    hub_id: str | None = None
    """Hugging Face dataset id, used when `path` does not exist locally and the hub is reachable."""
    splits: list[str] | None = None
    """Original splits to read (for example ["train", "validation"]); None reads all of them."""
    max_items: int | None = Field(default=None, ge=1)
    """Keep at most this many records from the source after the physics filter (deterministic per seed)."""
    optional: bool = False
    """When the source is neither on disk nor reachable on the hub, skip it (recorded in the audit) instead of failing."""
    columns: dict[str, str] = Field(default_factory=dict)
    """Generic jsonl/csv only: record field -> column name, for question, answer, choices, explanation, topic, id."""

    @property
    def label(self) -> str:
        return self.name or self.type


class DataConfig(Section):
    """Data sources, and the cleaning, physics filter, topic tagging and split applied to them."""

    data_dir: str | None = None
    """Folder holding the local copies of the sources; the environment variable PHYSLORA_DATA_DIR overrides it."""
    sources: list[SourceConfig] = Field(default_factory=list, min_length=1)
    """Input data sets, read in this order."""
    physics_only: bool = True
    """Drop questions the topic classifier does not consider physics (sources without subject labels only)."""
    topic_classifier: Literal["lexicon"] = "lexicon"
    """Component that filters physics questions and tags their topic."""
    topics: list[Literal[TOPICS]] | None = None
    """Keep only records tagged with one of these topics (after topic tagging); None keeps every topic."""
    include_explanation: bool = False
    """Append the explanation (SciQ support text) to the free-form target after the answer."""
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    """Train, validation and test fractions of each topic; must sum to 1."""
    seed: int = 42
    """Seed of the choice shuffling, subsampling and split."""

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> DataConfig:
        total = sum(self.split_fractions)
        if abs(total - 1.0) > 1e-6 or min(self.split_fractions) < 0:
            raise ValueError(
                f"data.split_fractions={list(self.split_fractions)} must be three non-negative numbers summing to 1"
            )
        return self


class ModelConfig(Section):
    """The base model and its tokenizer."""

    name: str = "google/flan-t5-base"
    """Hugging Face model id, local folder, or an alias pulled by `physlora models pull` (gemma-3-270m)."""
    family: Literal["auto", "seq2seq", "causal"] = "auto"
    """Architecture family; auto reads it from the model config."""
    tokenizer: str | None = None
    """Tokenizer id or folder; defaults to `name`."""
    init: Literal["pretrained", "random"] = "pretrained"
    """Load pretrained weights, or build a randomly initialised model from `architecture` and `config`."""
    architecture: Literal["t5", "gemma3", "llama"] | None = None
    """Model type for random init."""
    config: dict[str, int | float | str | bool | None] = Field(default_factory=dict)
    """Config values for random init (for example d_model, num_layers); they override the architecture's defaults."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Dtype the weights are loaded in; training precision is set by `training.precision`."""
    cache_dir: str | None = None
    """Folder of pulled models; defaults to ~/.cache/physlora (or PHYSLORA_CACHE)."""
    prompt_template: str = "Answer the physics question.\nQuestion: {question}\nAnswer:"
    """Prompt built from each record; `{question}` is replaced by the question text."""

    @model_validator(mode="after")
    def _random_init_needs_architecture(self) -> ModelConfig:
        if self.init == "random" and self.architecture is None:
            raise ValueError("model.init=random needs model.architecture (t5, gemma3 or llama)")
        if "{question}" not in self.prompt_template:
            raise ValueError("model.prompt_template must contain the placeholder {question}")
        return self


class LoraConfig(Section):
    """Parameter-efficient method and its settings."""

    method: Literal["lora", "full", "qlora", "dora", "ia3", "prefix", "adapter"] = "lora"
    """Adaptation method: lora, full (every parameter), qlora (LoRA on 4-bit base weights), dora, ia3,
    prefix (prefix tuning) or adapter (bottleneck adapters). r, alpha, dropout, target_modules and bias
    apply to lora, qlora and dora."""
    r: int = Field(default=8, ge=1, le=4096)
    """LoRA rank."""
    alpha: float = Field(default=32, gt=0)
    """LoRA scaling numerator: the update is scaled by alpha / r."""
    dropout: float = Field(default=0.1, ge=0, lt=1)
    """Dropout on the LoRA input."""
    target_modules: list[str] | None = None
    """Module names to adapt; None picks per architecture (q, v for T5; q_proj, v_proj for Gemma and Llama)."""
    bias: Literal["none", "all", "lora_only"] = "none"
    """Bias training mode: none, all biases, or only those of adapted layers."""
    full_learning_rate: float = Field(default=2e-5, gt=0, le=1)
    """Peak learning rate of method=full, used instead of training.learning_rate: updating every
    pretrained weight needs a smaller step than training a fresh adapter."""
    qlora_quant_type: Literal["nf4", "fp4"] = "nf4"
    """4-bit data type of the frozen base weights for method=qlora."""
    ia3_target_modules: list[str] | None = None
    """Modules IA3 scales; None uses PEFT's per-architecture default (k, v, wo for T5)."""
    ia3_feedforward_modules: list[str] | None = None
    """Targets whose input IA3 scales (feed-forward layers); used with ia3_target_modules only."""
    prefix_virtual_tokens: int = Field(default=20, ge=1)
    """Trained key/value positions prefix tuning adds in front of every attention layer."""


class TrainingConfig(Section):
    """Optimisation. A step is one optimizer update; a micro-batch is one forward and backward pass."""

    batch_size: int = Field(default=4, ge=1)
    """Examples per micro-batch."""
    gradient_accumulation_steps: int = Field(default=4, ge=1)
    """Micro-batches per optimizer step."""
    learning_rate: float = Field(default=1e-4, gt=0, le=1)
    """Peak AdamW learning rate."""
    warmup_steps: int = Field(default=500, ge=0)
    """Optimizer steps of linear warmup from 0 to the peak learning rate; then linear decay to 0."""
    weight_decay: float = Field(default=0.01, ge=0)
    """AdamW decoupled weight decay."""
    max_grad_norm: float = Field(default=1.0, gt=0)
    """Clip the global gradient norm to this value."""
    optimizer: Literal["adamw"] = "adamw"
    """Optimizer."""
    epochs: int = Field(default=3, ge=1)
    """Passes over the training split."""
    max_steps: int | None = Field(default=None, ge=0)
    """Stop after this many optimizer steps (0: measure parameters and epoch-0 validation loss only)."""
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """Autocast precision; auto uses bf16 where the hardware supports it. fp16 is rejected for T5 models."""
    seed: int = 42
    """Seed set before the adapter layers are created and before each epoch's shuffling."""
    max_seq_length: int = Field(default=512, ge=8)
    """Maximum prompt tokens (encoder input for T5; prompt plus answer for decoder-only models)."""
    max_target_length: int = Field(default=128, ge=1)
    """Maximum answer tokens."""
    group_by_length: bool = True
    """Batch examples of similar length together to reduce padding."""
    micro_batch_tokens: int | None = Field(default=None, ge=8)
    """Re-pack the examples of each accumulation window into micro-batches of at most this many padded
    tokens (examples x the longest example's input plus label tokens). The step's gradient stays the same,
    because the loss is weighted by tokens over the whole window, but larger matrix products run faster,
    and peak memory grows with the budget. None keeps batch_size examples per micro-batch."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""
    checkpoint_every: int = Field(default=200, ge=1)
    """Write a resumable checkpoint every this many optimizer steps (and at each epoch end)."""
    eval_batch_size: int = Field(default=16, ge=1)
    """Examples per batch when computing validation loss."""
    num_threads: int | None = Field(default=None, ge=1)
    """CPU threads for torch; None keeps torch's default."""
    log_every: int = Field(default=1, ge=1)
    """Write a step record to metrics.jsonl every this many optimizer steps."""
    report_to: list[Literal["tensorboard", "mlflow"]] = Field(default_factory=list)
    """Experiment trackers that receive the metrics.jsonl values besides the file itself: tensorboard, mlflow."""
    mlflow_tracking_uri: str | None = None
    """MLflow tracking URI; None uses MLFLOW_TRACKING_URI, else an SQLite store at <output.dir>/mlflow/mlflow.db."""
    mlflow_experiment: str = "physlora"
    """MLflow experiment that the run is recorded under."""
    early_stopping_patience: int | None = Field(default=None, ge=1)
    """Stop after this many epochs without a validation-loss improvement; None trains every epoch."""
    early_stopping_min_delta: float = Field(default=0.0, ge=0)
    """Smallest fall of the validation loss (nats per token) that counts as an improvement."""
    init_from: str | None = None
    """Run folder whose adapter (RUN/adapter) is the starting point instead of a fresh adapter."""
    replay_fraction: float = Field(default=0.0, ge=0, le=1)
    """Fraction of the `init_from` run's training split mixed into the training data (deterministic per seed)."""

    @model_validator(mode="after")
    def _continual_settings_fit(self) -> TrainingConfig:
        if self.replay_fraction > 0 and self.init_from is None:
            raise ValueError("training.replay_fraction needs training.init_from, the run whose training data is replayed")
        if self.early_stopping_min_delta > 0 and self.early_stopping_patience is None:
            raise ValueError("training.early_stopping_min_delta has no effect without training.early_stopping_patience")
        return self


class EvaluationConfig(Section):
    """Test-split measurement of the base and the adapted model."""

    split: Literal["validation", "test"] = "test"
    """Split to evaluate."""
    batch_size: int = Field(default=16, ge=1)
    """Examples per batch for loss, choice scoring and generation."""
    max_items: int | None = Field(default=None, ge=1)
    """Evaluate at most this many items (the first ones of the split file)."""
    max_new_tokens: int | None = Field(default=None, ge=1)
    """Generation length; None sizes it from the longest reference answer plus `generation_margin`."""
    generation_margin: int = Field(default=8, ge=0)
    """Extra tokens allowed beyond the longest reference answer."""
    bootstrap_samples: int = Field(default=1000, ge=10)
    """Resamples for the confidence intervals."""
    confidence: float = Field(default=0.95, gt=0, lt=1)
    """Confidence level of the intervals."""
    seed: int = 42
    """Seed of the bootstrap."""


class OutputConfig(Section):
    """Locations of the run folder and of the built data set."""

    dir: str = "runs/default"
    """Run folder: resolved config, metrics, adapter, checkpoints, evaluation and report."""
    data_dir: str | None = None
    """Folder of the built data set; defaults to `<output.dir>/data`."""


class TopicAdaptersConfig(Section):
    """Optional extra adapters, one per physics topic, trained beside the general adapter."""

    enabled: bool = False
    """Train one adapter per topic with at least `min_train_items` training items, then evaluate the ensemble."""
    min_train_items: int = Field(default=100, ge=1)
    """Topics with fewer training items get no adapter; their questions go to the general adapter."""
    max_steps: int | None = Field(default=None, ge=1)
    """Optimizer steps of each topic adapter; None trains for `training.epochs` over the topic's items."""


class RunConfig(Section):
    """A complete run description, as read from one YAML file."""

    data: DataConfig = Field(default_factory=lambda: DataConfig(sources=[SourceConfig(type="sciq")]))
    model: ModelConfig = Field(default_factory=ModelConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    topic_adapters: TopicAdaptersConfig = Field(default_factory=TopicAdaptersConfig)
