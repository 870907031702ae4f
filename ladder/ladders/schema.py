"""Typed schema of the whole training config (Hydra structured configs, no Hydra import here).

Each dataclass is the schema of one config group; :func:`ladder.ladders.conf_store.register` stores them
in Hydra's ConfigStore so a typo or a wrong type fails at composition with the key's full name.
Values are checked again when the config is converted to objects (``OmegaConf.to_object``),
before any work starts, with messages that name the key and the allowed values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ladder.nets.config import ConfigError, NetConfig, _choice

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step")
DATASETS = ("demo", "imagefolder", "imagenet", "imagenette", "synthetic")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
BAD_IMAGES = ("fail", "skip")
PIPELINES = ("auto", "loader", "device")
LR_SCALINGS = ("linear", "sqrt", "none")
BY_RECIPE_KEYS = ("epochs", "lr_scaling", "global_batch", "batch_size")
PROXY_SECTIONS = ("recipe", "model")  # what proxy.by_recipe.<recipe> may set


def _positive(key: str, value: Any, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if value is None or not ok:
        raise ConfigError(f"{key}={value!r} is not valid; allowed values: a number "
                          f"{'>= 0' if allow_zero else '> 0'}")


@dataclass
class RecipeConfig:
    """A training recipe: every hyperparameter of the reference, at the paper's scale.

    ``lr`` is per ``lr_ref_batch`` images and is scaled linearly to the effective batch.
    Epoch counts are the paper's; presets scale them all by ``trainer.epoch_scale``.
    """

    name: str = "torchvision"
    optimizer: str = "sgd"
    lr: float = 0.1
    lr_ref_batch: int = 256
    batch_size: int = 256  # the recipe's effective (global) batch
    momentum: float = 0.9
    nesterov: bool = False  # SGD with Nesterov momentum (Bag of Tricks' NAG); torchvision: off
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 1e-4
    # torchvision's original recipe decays every parameter; the modern one skips norms,
    # biases and layer-scale gammas (all 1-D parameters).
    decay_norm_and_bias: bool = True
    epochs: int = 90
    warmup_epochs: float = 0.0
    warmup_lr: float = 0.0
    schedule: str = "step"
    step_epochs: float = 30.0
    step_gamma: float = 0.1
    min_lr: float = 0.0
    label_smoothing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    mixup_switch_prob: float = 0.5
    randaugment: Optional[str] = None
    color_jitter: Optional[float] = None
    random_erasing: float = 0.0
    random_erasing_mode: str = "pixel"
    random_erasing_count: int = 1
    interpolation: str = "bilinear"
    crop_scale_min: float = 0.08  # random-resized crop keeps 8-100% of the image area
    eval_crop_ratio: float = 0.875  # 224/256
    ema: bool = False
    ema_decay: float = 0.9999
    clip_grad: Optional[float] = None

    def __post_init__(self) -> None:
        _choice("recipe.optimizer", self.optimizer, OPTIMIZERS)
        _choice("recipe.schedule", self.schedule, SCHEDULES)
        _positive("recipe.lr", self.lr)
        _positive("recipe.lr_ref_batch", self.lr_ref_batch)
        _positive("recipe.batch_size", self.batch_size)
        _positive("recipe.weight_decay", self.weight_decay, allow_zero=True)
        _positive("recipe.epochs", self.epochs)
        _positive("recipe.warmup_epochs", self.warmup_epochs, allow_zero=True)
        _positive("recipe.min_lr", self.min_lr, allow_zero=True)
        for key in ("label_smoothing", "mixup", "cutmix", "random_erasing"):
            _positive(f"recipe.{key}", getattr(self, key), allow_zero=True)
        if not 0.0 < self.crop_scale_min <= 1.0:
            raise ConfigError(f"recipe.crop_scale_min={self.crop_scale_min!r} is not valid; "
                              f"allowed values: 0 < scale <= 1")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"recipe.ema_decay={self.ema_decay!r} is not valid; allowed "
                              f"values: 0 <= decay < 1")


@dataclass
class DataConfig:
    """Which images, at what size.

    ``root`` holds the images in either layout ladder/data/layout.py recognises (class folders
    ``train/<class>/`` and ``val/<class>/``, or the ILSVRC2012 localization release) for
    imagefolder / imagenet; for demo and imagenette it is the cache dir (``null``:
    ``~/.cache/ladder``).
    """

    name: str = "demo"
    root: Optional[str] = None
    image_size: int = 32
    num_classes: int = 10
    # demo only: images per class (train / val), generated once and cached.
    train_per_class: int = 260
    val_per_class: int = 60
    # The side of stored images: imagenette's cached low-resolution JPEG copy, and a prepared
    # pixel store's (python -m ladder.data.prepare).
    store_size: int = 64
    # A pixel store prepared once (ladder/data/store.py): null (none; the device path decodes
    # an image folder into its tensor cache on first use), auto (the store the prepare command
    # writes for data.root at data.store_size, under $LADDER_CACHE/stores/) or its folder.
    # A store that does not match the config (size, classes, source) is refused.
    store: Optional[str] = None
    # Where a prepared store's images live while training: auto (on the device when they fit
    # beside device_reserve_mb of free memory on CUDA, or within device_max_mb on a CPU), device,
    # or host (memory-mapped; each batch copied over asynchronously).
    store_placement: str = "auto"
    device_reserve_mb: int = 8192  # CUDA memory kept free of a store for the model's own use
    # synthetic only: how many random samples per epoch.
    synthetic_train_size: int = 1024
    synthetic_val_size: int = 256
    bad_images: str = "fail"  # or "skip": corrupt files are counted and skipped
    # A class-balanced fraction of the training images kept out of training and evaluated
    # each epoch (ladder/data/split.py), drawn by holdout_seed alone; 0: none. The validation
    # set is untouched and still reported.
    holdout: float = 0.0
    holdout_seed: int = 0
    # The per-image loader's worker processes per rank; null: this rank's share of the cores
    # the process may use (as trainer.cpu_threads), at least 1.
    num_workers: Optional[int] = None
    # auto: the device path (ladder/data/device.py) for image folders and synthetic data whose
    # uint8 copy fits in device_max_mb, else the per-image loader (timm's transforms, workers).
    # A prepared store (data.store) always trains on the device path.
    pipeline: str = "auto"
    device_max_mb: int = 4096

    def __post_init__(self) -> None:
        _choice("data.name", self.name, DATASETS)
        _choice("data.bad_images", self.bad_images, BAD_IMAGES)
        _positive("data.image_size", self.image_size)
        if self.image_size < 16:
            raise ConfigError(f"data.image_size={self.image_size} is not valid; allowed values: "
                              f">= 16 pixels")
        _positive("data.num_classes", self.num_classes)
        _positive("data.store_size", self.store_size)
        if self.num_workers is not None:
            _positive("data.num_workers", self.num_workers, allow_zero=True)
        _choice("data.pipeline", self.pipeline, PIPELINES)
        _choice("data.store_placement", self.store_placement, ("auto", "device", "host"))
        if self.store and self.pipeline == "loader":
            raise ConfigError(f"data.store={self.store} trains on the device path; "
                              f"data.pipeline=loader reads image files instead: set one of them")
        if self.store and self.name == "synthetic":
            raise ConfigError("data.store needs image data; data=synthetic has no images to store")
        if self.holdout is None or not 0.0 <= self.holdout < 1.0:
            raise ConfigError(f"data.holdout={self.holdout!r} is not valid; allowed values: a "
                              f"fraction in [0, 1) of each class's training images (0: none)")
        if self.holdout and self.name == "synthetic":
            raise ConfigError("data.holdout needs an image folder; data=synthetic has no "
                              "training images to hold out")
        _positive("data.device_max_mb", self.device_max_mb, allow_zero=True)
        _positive("data.device_reserve_mb", self.device_reserve_mb, allow_zero=True)


@dataclass
class TrainerConfig:
    """How to run: device, precision, batch, budget, logging cadence, checkpoints."""

    device: str = "auto"  # auto: cuda if available, else cpu
    precision: str = "auto"  # auto: bf16 on CUDA, fp32 on CPU; fp16 uses a grad scaler
    channels_last: bool = True
    # Compute threads on a CPU; null: OMP_NUM_THREADS if set, else this process's share of the
    # available cores (ladder/utils/runtime.py; measured in results/benchmarks/).
    cpu_threads: Optional[int] = None
    compile: bool = False
    cudnn_benchmark: bool = True
    batch_size: int = 128  # per device; accumulation reaches the effective batch
    # Effective (global) batch; null: the recipe's own (4096 / 256). Scaled-down presets set a
    # smaller one; the lr follows it linearly.
    global_batch: Optional[int] = None
    # How recipe.lr (given per recipe.lr_ref_batch) follows the effective batch: linear (the
    # paper's rule, the default), sqrt, or none (use recipe.lr as given). At the paper's batch
    # all three agree; small-budget proxies far below it may pick another, documented.
    lr_scaling: str = "linear"
    # A preset's budget for one recipe only, e.g. {torchvision: {epochs: 24}}: presets apply to
    # every rung, so this is how a budget gives each recipe its own measured settings. Keys:
    # BY_RECIPE_KEYS (values replace the trainer's for the rungs of that recipe).
    by_recipe: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    grad_accum_steps: Optional[int] = None  # null: derived from recipe.batch_size
    epochs: Optional[int] = None  # null: recipe.epochs * epoch_scale
    epoch_scale: float = 1.0
    # The budget axis: one switch that multiplies every rung's training length alike (both
    # recipes; warm-up and step schedules stretch with it), after the preset's epochs. A budget
    # sweep: scripts/sweep.py --budgets 1,2,4, or train.py -m trainer.budget=1,2,4.
    budget: float = 1.0
    max_steps_per_epoch: Optional[int] = None  # cap for smoke tests
    log_every: int = 50  # optimizer steps between host syncs for metrics
    eval_ema: bool = True  # when recipe.ema: also evaluate the EMA weights
    progress: bool = True  # a progress bar per epoch (only on a terminal)
    deterministic: bool = False
    checkpoint_every_steps: int = 0  # also checkpoint mid-epoch every N optimizer steps (0: off)
    # Checkpoint at every epoch end. Off for runs of a few minutes: a signal still writes one.
    checkpoint_epochs: bool = True
    resume: Optional[str] = None  # a checkpoint to start from; null: the run dir's own, if any
    sync_batchnorm: bool = False  # SyncBatchNorm for the BatchNorm rungs under torchrun
    # After training: inference latency at batch 1 and 64 on the run's device (ladder/train/latency.py)
    measure_latency: bool = False

    def __post_init__(self) -> None:
        _choice("trainer.precision", self.precision, PRECISIONS)
        _positive("trainer.batch_size", self.batch_size)
        if self.cpu_threads is not None:
            _positive("trainer.cpu_threads", self.cpu_threads)
        _choice("trainer.lr_scaling", self.lr_scaling, LR_SCALINGS)
        for name, values in self.by_recipe.items():
            for key, value in values.items():
                _choice(f"trainer.by_recipe.{name}", key, BY_RECIPE_KEYS)
                if key == "lr_scaling":
                    _choice(f"trainer.by_recipe.{name}.lr_scaling", value, LR_SCALINGS)
                elif value is not None:
                    _positive(f"trainer.by_recipe.{name}.{key}", value)
        _positive("trainer.epoch_scale", self.epoch_scale)
        if self.budget is None or not self.budget > 0:
            raise ConfigError(f"trainer.budget={self.budget!r} is not valid: it multiplies every "
                              "rung's epochs, so it must be a number > 0 (1 is the preset's "
                              "own length, 2 doubles it)")
        _positive("trainer.log_every", self.log_every)
        if self.global_batch is not None:
            _positive("trainer.global_batch", self.global_batch)
        if self.grad_accum_steps is not None:
            _positive("trainer.grad_accum_steps", self.grad_accum_steps)
        if self.epochs is not None:
            _positive("trainer.epochs", self.epochs)
        _positive("trainer.checkpoint_every_steps", self.checkpoint_every_steps, allow_zero=True)
        if self.max_steps_per_epoch is not None:
            _positive("trainer.max_steps_per_epoch", self.max_steps_per_epoch)


@dataclass
class LoggerConfig:
    """Weights & Biases. ``mode``: auto (online with a key and network, else offline), online,
    offline, disabled. ``name: none`` turns W&B off entirely."""

    name: str = "wandb"
    project: str = "ladder"
    entity: Optional[str] = None
    mode: str = "auto"
    group: Optional[str] = None
    tags: List[str] = field(default_factory=list)
    job_type: str = "train"
    dir: Optional[str] = None  # null: the run's output dir

    def __post_init__(self) -> None:
        _choice("logger.name", self.name, ("wandb", "none"))
        _choice("logger.mode", self.mode, ("auto", "online", "offline", "disabled"))


@dataclass
class ProxyConfig:
    """A proxy preset's calibrated settings for the rungs of one recipe (conf/proxy/rules.yaml):
    ``by_recipe: {<recipe name>: {recipe: {lr: ...}, model: {layer_scale_init: ...}}}``. They
    are applied to every rung trained with that recipe, before the config is typed
    (:func:`ladder.ladders.compose.apply_proxy`); a key given on the command line wins. The
    values applied are also recorded in the run's config where they land (``recipe.lr``)."""

    by_recipe: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, sections in self.by_recipe.items():
            for section in sections:
                _choice(f"proxy.by_recipe.{name}", section, PROXY_SECTIONS)


@dataclass
class TrainConfig:
    """The root of ``conf/train.yaml``."""

    rung: Optional[str] = "???"  # +rung=<name>; None when the run trains a timm backbone
    # The ladder the rung belongs to (conf/ladder/<name>.yaml, ladder=<name>). The composed
    # config holds the whole ladder file here; the typed config keeps its name only.
    ladder: Any = "convnext"
    seed: int = 0
    # Any timm.list_models() name instead of a rung (ladder/train/subject.py): backbone=<name>.
    backbone: Optional[str] = None
    pretrained: bool = False  # backbones: start from timm's weights (needs the HF Hub)
    backbone_kwargs: Dict[str, Any] = field(default_factory=dict)  # to timm.create_model
    backbone_patch_size: Optional[int] = None  # transformer backbones' patch size (presets)
    experiment: str = "demo"  # the budget name; results group by it
    output_dir: str = "."  # set by train.py to Hydra's run/sweep dir
    model: NetConfig = field(default_factory=NetConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)

    def __post_init__(self) -> None:
        if isinstance(self.ladder, dict):
            self.ladder = self.ladder.get("name")
        if not isinstance(self.ladder, str) or not self.ladder:
            raise ConfigError(f"ladder={self.ladder!r} is not valid; allowed values: the name of "
                              f"a ladder file conf/ladder/<name>.yaml (e.g. convnext)")
        if self.rung and self.backbone:
            raise ConfigError(f"+rung={self.rung} and backbone={self.backbone} both given: a run "
                              f"trains one rung or one timm backbone")
        if not self.rung and not self.backbone:
            raise ConfigError("no rung or backbone chosen: +rung=<name> or backbone=<timm name>")
        if self.backbone_patch_size is not None:
            _positive("backbone_patch_size", self.backbone_patch_size)
