"""The benchmark runs, times the ladder and the reference in the same run, and writes JSON."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from ladder.bench import benchmark
from ladder.bench.benchmark import main


def test_benchmark_reports_ratios_against_the_reference(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rows = main(["--rungs", "resnet50,micro,kernel7", "--batch", "2", "--size", "32",
                 "--steps", "1", "--warmup", "1", "--repeats", "2", "--device", "cpu",
                 "--json", str(out)])
    assert [r["rung"] for r in rows] == ["resnet50", "separate_downsampling", "kernel7"]
    assert rows[0]["reference"] == "torchvision.resnet50"
    assert rows[1]["reference"] == "timm.convnext_tiny"
    assert "ratio" not in rows[2]  # no reference implementation of an intermediate rung
    for r in rows[:2]:
        assert r["img_per_s"] > 0 and r["ratio"] == pytest.approx(
            r["img_per_s"] / r["reference_img_per_s"])
        assert len(r["step_s"]) == len(r["reference_step_s"]) == 2  # two rounds, taking turns
        assert r["time_ratio"] == pytest.approx(1 / r["ratio"])
    assert rows[0]["peak_mem_gib"] is None and rows[0]["reference_peak_mem_gib"] is None  # CPU
    saved = json.loads(out.read_text())
    assert saved["precision"] == "fp32" and len(saved["rows"]) == 3
    assert "torchvision.resnet50" in capsys.readouterr().out


def test_reference_gets_the_rungs_stochastic_depth():
    from ladder.bench.benchmark import build_reference

    ref = build_reference("timm.convnext_tiny", 0.1)
    rates = [m.drop_prob for m in ref.modules() if type(m).__name__ == "DropPath"]
    assert rates and max(rates) == pytest.approx(0.1)  # timm's linear rule up to the rate


def test_benchmark_unknown_rung_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--rungs", "resnet51"])
    assert exit_info.value.code == 2 and "valid rungs" in capsys.readouterr().err


def test_trainer_mode_measures_both_pipelines_against_the_pure_step(tmp_path, cache_dir, capsys):
    out = tmp_path / "pipe.json"
    rows = main(["--trainer", "demo", "--rungs", "micro", "--epochs", "1", "--steps", "2",
                 "--warmup", "1", "--json", str(out),
                 "--override", f"data.root={cache_dir}", "--override", "data.train_per_class=8",
                 "--override", "data.val_per_class=3", "--override", "model.width_multiplier=0.0625",
                 "--override", "trainer.batch_size=8", "--override", "trainer.global_batch=8",
                 "--override", "data.num_workers=0"])
    assert [r["pipeline"] for r in rows] == ["device", "loader"]
    for r in rows:
        assert r["batch"] == 8 and r["trainer_img_per_s"] > 0 and r["pure_step_img_per_s"] > 0
        assert r["ratio"] == pytest.approx(r["trainer_img_per_s"] / r["pure_step_img_per_s"])
    assert json.loads(out.read_text())["rows"][0]["rung"] == "separate_downsampling"
    assert "trainer vs pure training step" in capsys.readouterr().out


def test_peak_memory_is_reset_and_read_per_model(monkeypatch):
    """Each model's peak is its own: the allocator's peak is reset before the model is built
    and read after its steps, minus what the other model already holds. A fake CUDA allocator:
    a model holds its parameter count in bytes and needs twice that more during a step."""
    held = {"now": 0, "peak": 0}

    def alloc(n):
        held["now"] += n
        held["peak"] = max(held["peak"], held["now"])

    def fake_stepper(model, **settings):
        size = sum(p.numel() for p in model.parameters())
        alloc(size)

        def run(n):
            alloc(2 * size)
            alloc(-2 * size)
            return 0.01
        return run

    monkeypatch.setattr(benchmark, "make_stepper", fake_stepper)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: held["now"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: held["peak"])
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats",
                        lambda device=None: held.update(peak=held["now"]))
    small, big = nn.Linear(4, 4), nn.Linear(64, 64)  # 20 and 4160 parameters
    row = benchmark.time_pair(big, small, steps=1, warmup=1, repeats=2, batch=2,
                              device=torch.device("cuda", 0))
    assert row["peak_mem_gib"] * 2**30 == pytest.approx(3 * 4160)
    assert row["reference_peak_mem_gib"] * 2**30 == pytest.approx(3 * 20)  # not the big one's


def test_the_trainers_backend_settings_are_applied_before_any_model_is_timed(monkeypatch, tmp_path):
    """cuDNN autotuning and TF32 as the trainer sets them (ladder.utils.runtime.configure_backends
    with the default trainer config), before the first model is built for timing."""
    from ladder.ladders.schema import TrainerConfig

    events = []
    real_stepper = benchmark.make_stepper
    monkeypatch.setattr(benchmark, "configure_backends",
                        lambda device, trainer: events.append(("configure", device, trainer)))

    def stepper(model, **settings):
        events.append(("stepper",))
        return real_stepper(model, **settings)

    monkeypatch.setattr(benchmark, "make_stepper", stepper)
    out = tmp_path / "bench.json"
    main(["--rungs", "micro", "--no-reference", "--batch", "2", "--size", "32", "--steps", "1",
          "--warmup", "1", "--repeats", "1", "--device", "cpu", "--json", str(out)])
    assert events[0] == ("configure", torch.device("cpu"), TrainerConfig())
    assert [e[0] for e in events].count("configure") == 1 and events[1] == ("stepper",)
    assert TrainerConfig().cudnn_benchmark and not TrainerConfig().deterministic
    assert set(json.loads(out.read_text())["backends"]) == {"cudnn_benchmark", "tf32"}


def _tf32_flags(value=None):
    """The TF32 settings of matmuls and convolutions (the newer ``fp32_precision`` where torch
    has it); with ``value``, set them first."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    new = hasattr(matmul, "fp32_precision")
    if value is not None:
        if new:
            matmul.fp32_precision, cudnn.conv.fp32_precision = value
        else:
            matmul.allow_tf32, cudnn.allow_tf32 = value
    return ((matmul.fp32_precision, cudnn.conv.fp32_precision) if new
            else (matmul.allow_tf32, cudnn.allow_tf32))


def test_on_cuda_the_benchmark_turns_on_what_the_trainer_does(monkeypatch):
    """The flags configure_backends sets for a CUDA device, read while the models are timed
    (the timing itself is replaced: no GPU here)."""
    cudnn = torch.backends.cudnn
    saved = (cudnn.benchmark, cudnn.deterministic, _tf32_flags())
    off = ("ieee", "ieee") if hasattr(torch.backends.cuda.matmul, "fp32_precision") else (False, False)
    cudnn.benchmark = False
    _tf32_flags(off)
    monkeypatch.setattr(benchmark, "device_name", lambda device: "a card")
    seen = {}

    def fake_pair(ours, reference, **settings):
        seen.update(backends=benchmark.backend_settings(), tf32=_tf32_flags(),
                    device=settings["device"])
        return {"img_per_s": 1.0, "peak_mem_gib": None, "step_s": [1.0]}

    monkeypatch.setattr(benchmark, "time_pair", fake_pair)
    try:
        main(["--rungs", "micro", "--no-reference", "--device", "cuda", "--steps", "1"])
    finally:
        cudnn.benchmark, cudnn.deterministic = saved[:2]
        _tf32_flags(saved[2])
    assert seen["device"] == torch.device("cuda")
    assert seen["backends"] == {"cudnn_benchmark": True, "tf32": True}
    assert seen["tf32"] in (("tf32", "tf32"), (True, True))
