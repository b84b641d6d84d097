"""The ``edgekd`` command: a thin click layer over the API.

It parses options, calls the API, shows progress on stderr, and turns an ``EdgeKDError`` into one line
on stderr and its exit code (2 for bad input, 3 for an unmet budget). No heavy import happens here.
"""

from __future__ import annotations

import shlex
import sys
import traceback
from typing import Any

import click

from . import __version__
from .build_config import DEFAULT_EPOCHS, DEFAULT_MAX_CANDIDATES, DEFAULT_TIME_BUDGET_S
from .distill.names import DEVICES as TRAIN_DEVICES
from .distill.names import QAT_WEIGHT_SCHEMES
from .errors import EdgeKDError, first_line

FAMILY_HELP = ("Student family: convnet, mobilenet (depthwise-separable), mobilenetv2 or mobilenetv3 (inverted "
               "residuals) for images, conv1d for sequences, mlp for feature vectors (default: chosen from the data's "
               "shape; mobilenetv2 for images of 64 px and more).")


def _say(msg: str) -> None:
    click.echo(msg, err=True)


def _distill_options(f):
    """Options shared by `build` and `distill`."""
    opts = [
        click.option("--data", "data", default="fashion-mnist", show_default=True,
                     help="Data spec: fashion-mnist, digits, basic-motions, npz:PATH, idx:DIR, folder:DIR."),
        click.option("--teacher", type=click.Path(dir_okay=False), multiple=True,
                     help="Teacher file: .pt (TorchScript or state_dict), .pt2, .onnx, .tflite, or a student.json "
                          "(self-ckpt). Repeat for --method multi-teacher. Default: edgekd's built-in teacher."),
        click.option("--teacher-arch", default=None, help="module:factory that builds a state_dict teacher."),
        click.option("--teacher-outputs", type=click.Choice(["auto", "logits", "probs"]), default="auto",
                     show_default=True, help="Whether the teacher outputs logits or probabilities."),
        click.option("--teacher-input", default=None, metavar="CONTRACT",
                     help="The teacher's input (image folders): 'imagenet' (224 px, ImageNet mean/std, RGB, NCHW) "
                     "and/or size=N,mean=a/b/c,std=a/b/c,order=rgb|bgr,layout=nchw|nhwc. Default: read from an ONNX "
                     "teacher's edgekd.preprocess metadata, else the student's input."),
        click.option("--image-size", type=int, default=None, metavar="PX",
                     help="folder: data: resize the shorter side to PX and centre-crop PXxPX (default: the images' "
                     "own size, when they all share one square size)."),
        click.option("--channels", type=click.Choice(["auto", "rgb", "grey"]), default="auto", show_default=True,
                     help="folder: data: RGB or grey (auto: grey only when every image is grey)."),
        click.option("--skip-bad-images", is_flag=True,
                     help="folder: data: leave out images that cannot be decoded (named and counted) instead of "
                     "stopping at the first."),
        click.option("--trust-pickle", is_flag=True,
                     help="DANGEROUS: unpickle a torch teacher file in full (a pickled nn.Module), which runs any "
                          "code the file holds. Only for files from a source you trust; by default edgekd refuses."),
        click.option("--method", default="kd", show_default=True,
                     help="kd, feature, qat, multi-teacher, mutual, born-again, self-ckpt, data-free, cross-modal."),
        click.option("--loss", default="hinton", show_default=True,
                     help="Logit loss: hinton, dkd, lskd, dkd_ls, or ce (no teacher)."),
        click.option("--feature-loss", type=click.Choice(["mse", "cosine", "at"]), default="mse", show_default=True,
                     help="Feature loss for --hint / --method feature (at = attention transfer)."),
        click.option("--dkd-alpha", type=float, default=1.0, show_default=True, help="DKD: weight of TCKD."),
        click.option("--dkd-beta", type=float, default=8.0, show_default=True, help="DKD: weight of NCKD."),
        click.option("--kd-warmup-epochs", type=int, default=None,
                     help="DKD: epochs over which the KD terms ramp in (default: 1/12 of the epochs, rounded up)."),
        click.option("--peers", type=int, default=2, show_default=True, help="mutual: students trained together."),
        click.option("--generations", type=int, default=2, show_default=True, help="born-again: generations."),
        click.option("--teacher-weight", "teacher_weights", type=float, multiple=True,
                     help="multi-teacher: fixed weight per --teacher (default equal)."),
        click.option("--teacher-weighting", type=click.Choice(["fixed", "confidence"]), default="fixed",
                     show_default=True, help="multi-teacher: fixed weights or per-sample confidence."),
        click.option("--teacher-map", "teacher_maps", multiple=True, metavar="N=i0,i1,...",
                     help="multi-teacher: teacher N's output index for each data class (other class orders)."),
        click.option("--qat-weights", type=click.Choice(QAT_WEIGHT_SCHEMES), default="per-channel",
                     show_default=True, help="qat: int8 weight scales the student trains through (per-tensor for "
                     "int8 kernels with one scale per weight)."),
        click.option("--qat-bn-epochs", type=int, default=None,
                     help="qat: epochs in which BatchNorm updates its statistics; frozen after them, so training "
                     "sees the deployed (folded) model (default: 2/3 of the epochs; --epochs: never)."),
        click.option("--synthetic-samples", type=int, default=2048, show_default=True, help="data-free: inputs."),
        click.option("--inversion-steps", type=int, default=200, show_default=True,
                     help="data-free: optimisation steps per synthetic batch."),
        click.option("--temperature", "-T", type=float, default=2.0, show_default=True),
        click.option("--alpha", type=float, default=0.7, show_default=True, help="Weight of the soft KD term."),
        click.option("--hint", "hints", multiple=True, metavar="TEACHER_LAYER:STUDENT_LAYER",
                     help="Feature hint pair (repeatable), or 'auto' (pairs by spatial size); a projection is "
                          "learned when shapes differ."),
        click.option("--hint-weight", type=float, default=1.0, show_default=True, help="β, weight of hint losses."),
        click.option("--augment", type=click.Choice(["none", "mixup", "crop-flip"]), default="none",
                     show_default=True,
                     help="mixup: train on per-sample mixed inputs labelled by the teacher as it trains "
                          "(function matching; needs a PyTorch teacher, not with the DKD losses). crop-flip: random-"
                          "resized crop and flip of images, the teacher run on the same crop of its own view."),
        click.option("--init", type=click.Choice(["auto", "teacher", "random"]), default="auto", show_default=True,
                     help="How a student's weights start. auto: pruned from the teacher (its most active channels "
                          "kept) where the teacher is a PyTorch model of the student's family and depth, only wider; "
                          "random weights otherwise. teacher: require that. random: never."),
        click.option("--channels-last/--no-channels-last", default=True, show_default=True,
                     help="Train image students in channels-last memory (faster here, same accuracy within the "
                          "seed spread; --no-channels-last reproduces students trained before it was the default)."),
        click.option("--epochs", type=int, default=None,
                     help=f"Training epochs per student (build: {DEFAULT_EPOCHS}; distill: 5)."),
        click.option("--optimizer", type=click.Choice(["adamw", "sgd"]), default="adamw", show_default=True),
        click.option("--lr", type=float, default=3e-3, show_default=True),
        click.option("--batch-size", type=int, default=128, show_default=True),
        click.option("--patience", type=int, default=3, show_default=True, help="Early-stopping patience (epochs)."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--device", "device", multiple=True, callback=_devices, metavar="cpu|cuda|auto|ssh://...",
                     help="Where students train: cpu (default), cuda (needs a CUDA build of torch) or auto (cuda when "
                     "torch sees a GPU); under torchrun with cuda each rank takes GPU LOCAL_RANK and ranks sync over "
                     "NCCL. build also takes the board to measure on: ssh://user@host[:port] (repeat --device for "
                     "both)."),
        click.option("--limit", type=int, default=None, help="Use at most this many training samples."),
        click.option("--unlabeled", default=None, metavar="SPEC",
                     help="Add unlabelled training inputs for distillation (the teacher labels them): 'rest' = the "
                     "training samples --limit left out, or a data spec whose labels are ignored."),
        click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                     help="Where teachers and teacher outputs are cached (default ~/.cache/edgekd)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _devices(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, str | None]:
    """--device values -> (training device, board address or None)."""
    train, board = [], []
    for v in values:
        (board if v.startswith("ssh://") else train).append(v)
    bad = [v for v in train if v not in TRAIN_DEVICES]
    if bad or len(train) > 1 or len(board) > 1:
        raise click.BadParameter(f"{', '.join(values)}: give at most one of {', '.join(TRAIN_DEVICES)} and at most "
                                 "one ssh://user@host[:port]", param_hint="--device")
    if board:
        from .board.ssh import parse_device

        parse_device(board[0])  # a malformed address fails before any work
    return (train[0] if train else "cpu", board[0] if board else None)


def _distill_config(kw: dict[str, Any], default_epochs: int):
    from .distill.config import DistillConfig, parse_hint

    config = DistillConfig(method=kw["method"], loss=kw["loss"], temperature=kw["temperature"], alpha=kw["alpha"],
                         hints=tuple(parse_hint(h) for h in kw["hints"]), hint_weight=kw["hint_weight"],
                         feature_loss=kw["feature_loss"], dkd_alpha=kw["dkd_alpha"], dkd_beta=kw["dkd_beta"],
                         kd_warmup_epochs=kw["kd_warmup_epochs"], augment=kw["augment"],
                         channels_last=kw["channels_last"], init=kw["init"],
                         peers=kw["peers"], generations=kw["generations"],
                         teacher_weights=tuple(kw["teacher_weights"]), teacher_weighting=kw["teacher_weighting"],
                         synthetic_samples=kw["synthetic_samples"], inversion_steps=kw["inversion_steps"],
                         qat_weights=kw["qat_weights"], qat_bn_epochs=kw["qat_bn_epochs"],
                         epochs=default_epochs if kw["epochs"] is None else kw["epochs"], optimizer=kw["optimizer"], lr=kw["lr"],
                         batch_size=kw["batch_size"], patience=kw["patience"], seed=kw["seed"],
                         device=kw["device"][0])
    if config.device != "cpu":  # refuse --device cuda without CUDA before any data or teacher is loaded
        from .distill.device import resolve

        resolve(config.device)
    return config


def _one_teacher(kw: dict[str, Any]) -> str | None:
    """`build` takes one teacher file (several are for `distill --method multi-teacher`)."""
    from .errors import ConfigError

    if len(kw["teacher"]) > 1:
        raise ConfigError("build takes one --teacher", "use `edgekd distill --method multi-teacher` for several")
    return kw["teacher"][0] if kw["teacher"] else None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgekd")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """edgekd: distil compact students from a teacher and prove they fit an edge device.

    Start with:  edgekd build --target raspberrypi
    """
    from .console import quiet_third_party

    quiet_third_party(debug)  # before TensorFlow, torch or LiteRT is imported; --debug shows their logs


@cli.command()
@click.option("--target", "targets", multiple=True, default=("raspberrypi",), show_default=True,
              help="Device profile (see `edgekd targets list`); repeat it to build for several devices at once "
              "(students trained once, one run directory per target, comparison.md beside them).")
@click.option("--targets-dir", type=click.Path(file_okay=False), default=None, help="Extra directory of target TOMLs.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory (default runs/TARGET; several targets: runs/A+B+..., one folder per target).")
@click.option("--family", default=None, help=FAMILY_HELP)
@click.option("--student-arch", default=None, metavar="MODULE:FACTORY",
              help="Your own student architecture: factory(num_classes, width, depth, in_channels) returning a "
              "torch.nn.Module; its ladder is the --size values (or the default width x depth ladder).")
@click.option("--size", "sizes", multiple=True, metavar="WIDTHxDEPTH",
              help="Student size to try, e.g. 0.5x1 (repeatable; default: the family's ladder).")
@click.option("--resolution", "resolutions", type=int, multiple=True, metavar="PX",
              help="Input resolution to try (repeatable; image folders): every size at every resolution.")
@click.option("--bench-runs", type=int, default=200, show_default=True, help="Timed runs per benchmark.")
@click.option("--strict", is_flag=True, help="Fail (exit 3) when int8 is slower than fp32 or loses more accuracy "
              "than the target's max_accuracy_drop for the chosen student.")
@click.option("--int8-search/--no-int8-search", default=True, show_default=True,
              help="Try several int8 calibration schemes and keep the best on validation data.")
@click.option("--search/--no-search", default=True, show_default=True,
              help="Estimate every candidate's size and target latency before training; skip those that cannot fit.")
@click.option("--max-candidates", type=int, default=None,
              help=f"Train at most this many of the candidates that can fit (default: {DEFAULT_MAX_CANDIDATES} of the "
                   "ladder; all --size).")
@click.option("--time-budget", type=float, default=DEFAULT_TIME_BUDGET_S, show_default=True, metavar="SECONDS",
              help="Drop the costliest candidates while their estimated training time exceeds this (students "
                   "pruned from the teacher are kept first).")
@click.option("--fresh", is_flag=True, help="Redo every stage (otherwise finished stages of an earlier build "
              "with the same inputs are reused, and an interrupted build resumes).")
@click.option("--retime", is_flag=True, help="Time the candidates' training steps again for --time-budget (they are "
              "measured once per machine and architecture and kept in the cache folder, so the plan does not "
              "follow the machine's load).")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="Train the candidates in N worker processes (each with the serial build's torch threads, so the "
              "students are bit-identical to a serial build's).")
@click.option("--ray", default=None, metavar="auto|ADDRESS",
              help="Train the candidates as tasks on a Ray cluster (pip install 'edgekd[ray]'): auto = the running "
              "one (`ray start --head`), or its address.")
@_distill_options
def build(**kw: Any) -> None:
    """Distil, export, quantize, benchmark and pick the student that fits TARGET; write the report."""
    from .pipeline import BuildConfig, build as run_build

    targets = tuple(kw["targets"])
    cfg = BuildConfig(target=targets[0], data=kw["data"], teacher=_one_teacher(kw), teacher_arch=kw["teacher_arch"],
                      teacher_outputs=kw["teacher_outputs"], trust_pickle=kw["trust_pickle"],
                      teacher_input=kw["teacher_input"], images=_image_options(kw),
                      out_dir=kw["out"], targets_dir=kw["targets_dir"],
                      cache_dir=kw["cache_dir"], distill=_distill_config(kw, DEFAULT_EPOCHS), family=_family(kw),
                      sizes=tuple(_parse_size(s) for s in kw["sizes"]) or None,
                      resolutions=tuple(kw["resolutions"]) or None, data_limit=kw["limit"],
                      unlabeled=kw["unlabeled"],
                      bench_runs=kw["bench_runs"], strict=kw["strict"], int8_search=kw["int8_search"],
                      search=kw["search"], max_candidates=kw["max_candidates"], time_budget_s=kw["time_budget"],
                      fresh=kw["fresh"], retime=kw["retime"], board=kw["device"][1], jobs=kw["jobs"],
                      ray=kw["ray"], command=_command_line())
    if len(targets) > 1:
        from .multi_target import build_targets, default_out

        cmp = build_targets(cfg, targets, progress=_say)
        for t in cmp["targets"]:
            click.echo(f"{t['target']}: chosen {t['selected']}")
        click.echo(f"comparison: {cfg.out_dir or default_out(targets)}/comparison.md (and .json, .html)")
        return
    report = run_build(cfg, progress=_say)
    sel = next(c for c in report["candidates"] if c["name"] == report["selected"])
    lat = sel["latency"]
    if sel.get("npu"):
        n = sel["npu"]
        click.echo(f"chosen: {sel['name']}  int8 accuracy {sel['accuracy_int8']:.4f}  NPU {n['time_ms']:.4f} ms "
                   f"({n['accelerator']} @ {n['clock_mhz']:g} MHz, estimated by Vela)  SRAM {n['sram_kib']:.1f} KiB  "
                   f"flash {n['flash_kib']:.1f} KiB")
    else:
        what = "p90" if lat["kind"] == "measured" else "estimated"
        band = f" [{lat['band_ms'][0]:.3f}-{lat['band_ms'][1]:.3f}]" if lat.get("band_ms") else ""
        click.echo(f"chosen: {sel['name']}  int8 accuracy {sel['accuracy_int8']:.4f}  {what} {lat['judged_ms']:.3f} ms"
                   f"{band} ({lat['source']})  size {sel['model_size_mb']:.3f} MB")
    click.echo(f"report: {cfg.out_dir or 'runs/' + report['target']}/report.md (and report.json, report.html)")


def _image_options(kw: dict[str, Any]):
    from .data.folder import ImageOptions

    return ImageOptions(size=kw["image_size"], channels=kw["channels"], skip_bad=kw["skip_bad_images"])


def _family(kw: dict[str, Any]) -> str | None:
    """--family, or --student-arch (a module:factory family); not both."""
    from .errors import ConfigError

    arch, family = kw.get("student_arch"), kw.get("family")
    if arch and family:
        raise ConfigError("--family and --student-arch both name the student", "pass one of them")
    if arch:  # imported now: a typo fails before any data is read or any teacher trained
        from .factory import import_factory

        import_factory(arch, "--student-arch", ConfigError)
    return arch or family


def _parse_size(text: str) -> tuple[float, int]:
    from .errors import ConfigError

    try:
        w, d = text.lower().split("x")
        return float(w), int(d)
    except ValueError:
        raise ConfigError(f"bad --size {text!r}", "write WIDTHxDEPTH, e.g. 0.5x1") from None


@cli.command()
@click.option("--student", "family", default=None, help=FAMILY_HELP)
@click.option("--width", type=float, default=0.5, show_default=True)
@click.option("--depth", type=int, default=1, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Directory for student.pt/.json.")
@_distill_options
def distill(**kw: Any) -> None:
    """Train one student with --method (default kd: against a teacher; alone with --loss ce).

    Under `torchrun --nproc_per_node N -m edgekd distill ...` the ranks train one student together (gloo on
    the CPU; NCCL with --device cuda, one GPU per rank)."""
    import os

    from .distill.ddp import from_env
    from .distill.run import DistillJob, parse_class_map, run_distill

    if kw["device"][1]:
        from .errors import ConfigError

        raise ConfigError(f"--device {kw['device'][1]} names a board: distill only trains",
                          "measure on a board with `edgekd build --device ssh://...` or `edgekd bench`")
    config = _distill_config(kw, 5)
    job = DistillJob(data=kw["data"], out=kw["out"], width=kw["width"], depth=kw["depth"], family=kw["family"],
                     teachers=tuple(kw["teacher"]), teacher_arch=kw["teacher_arch"],
                     teacher_outputs=kw["teacher_outputs"], trust_pickle=kw["trust_pickle"],
                     class_maps=tuple(parse_class_map(m) for m in kw["teacher_maps"]), limit=kw["limit"],
                     unlabeled=kw["unlabeled"], cache_dir=kw["cache_dir"], images=_image_options(kw),
                     teacher_input=kw["teacher_input"])
    dist = from_env(os.environ, config.device)  # torchrun's rank and world size; None when run as one process
    try:
        ckpt = run_distill(job, config, progress=_say if dist is None or dist.rank == 0 else None, distributed=dist)
    finally:
        if dist is not None:
            dist.close()
    if ckpt is None:
        return
    acc = "no real test data" if ckpt.accuracy_fp32 != ckpt.accuracy_fp32 else f"test accuracy {ckpt.accuracy_fp32:.4f}"
    click.echo(f"{ckpt.name} ({config.method}): {acc}, {ckpt.params} params, "
               f"{ckpt.macs / 1e6:.2f} M MACs -> {kw['out']}/student.pt")


@cli.command()
@click.argument("checkpoint", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Output .onnx or .tflite file.")
@click.option("--format", "fmt", type=click.Choice(["onnx", "tflite"]), default=None,
              help="Output format (default: from the --out suffix).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "dynamic", "int8"]), default=None,
              help="TFLite precision (default fp32; int8 = full int8 I/O, calibrated on training samples).")
@click.option("--converter", type=click.Choice(["auto", "litert-torch", "onnx2tf"]), default=None,
              help="TFLite route (default auto: litert-torch, falling back to onnx2tf).")
@click.option("--data", default=None, help="Data spec for parity samples and accuracy (default: the training data).")
def export(checkpoint: str, out: str, fmt: str | None, precision: str | None, converter: str | None,
           data: str | None) -> None:
    """Export a distilled student (student.json) to ONNX or TFLite, with a parity check against torch."""
    from .prepare import load_data_as
    from .stages import export_student, export_student_tflite, load_checkpoint

    fmt = _export_format(out, fmt, precision, converter)
    model, ckpt = load_checkpoint(checkpoint)
    ds = load_data_as(data or ckpt.config.get("data", "fashion-mnist"), ckpt.config.get("preprocess"))
    built_for = tuple(ckpt.config["student"]["input_shape"])
    if tuple(ds.input_shape) != built_for:  # conv nets with global pooling would trace any size silently
        from .errors import ConfigError

        raise ConfigError(f"--data {ds.spec} has samples of shape {tuple(ds.input_shape)} but {ckpt.name} was "
                          f"built for {built_for}", "pass the --data the student was trained on")
    if fmt == "onnx":
        exported = export_student(model, ds, out)
        p = exported.parity
        click.echo(f"{out}: {exported.size_bytes / 1e6:.3f} MB, parity max abs diff {p['max_abs_diff']:.2e}, "
                   f"argmax agreement {p['argmax_agreement']:.4f}, accuracy {exported.accuracy:.4f} ({exported.tool})")
        return
    exported = export_student_tflite(model, ds, out, precision or "fp32", converter or "auto")
    p, c = exported.parity, exported.config
    click.echo(f"{out}: tflite {exported.precision}, route {c['route']}, input {c['input']['dtype']} {c['layout']}, "
               f"{exported.size_bytes / 1e6:.3f} MB ({exported.tool})")
    if c.get("fallback_reason"):
        click.echo(f"fell back to {c['route']} because {c['fallback_reason']}")
    click.echo(f"parity max abs diff {p['max_abs_diff']:.2e}, argmax agreement {p['argmax_agreement']:.4f} on "
               f"{p['n_samples']} test samples; LiteRT accuracy {exported.accuracy:.4f} (torch {ckpt.accuracy_fp32:.4f})")


def _export_format(out: str, fmt: str | None, precision: str | None, converter: str | None) -> str:
    """The export format from --format and the --out suffix; ConfigError when they or the options contradict."""
    from pathlib import Path

    from .errors import ConfigError

    suffix = Path(out).suffix.lower()
    implied = {".onnx": "onnx", ".tflite": "tflite"}.get(suffix)
    if fmt and implied and fmt != implied:
        raise ConfigError(f"--format {fmt} contradicts --out {out} (a {suffix} file)",
                          f"name the output .{fmt}, or drop --format")
    fmt = fmt or implied
    if fmt is None:
        raise ConfigError(f"cannot tell the export format from --out {out}",
                          "name the output .onnx or .tflite, or pass --format onnx|tflite")
    if fmt == "onnx" and (precision not in (None, "fp32") or converter):
        raise ConfigError("--precision and --converter apply to TFLite export only (ONNX export is fp32)",
                          "use `edgekd quantize` for int8 ONNX, or pass --format tflite")
    return fmt


@cli.command()
@click.argument("model", type=click.Path())
@click.option("--data", default="fashion-mnist", show_default=True, help="Data spec for calibration and accuracy.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Output int8 .onnx file.")
@click.option("--method", type=click.Choice(["minmax", "entropy", "percentile", "search"]), default="minmax",
              show_default=True, help="Calibration method; 'search' tries the menu and keeps the best on validation.")
@click.option("--per-tensor", is_flag=True, help="Per-tensor weights instead of per-channel.")
@click.option("--calibration-samples", type=int, default=256, show_default=True)
def quantize(model: str, data: str, out: str, method: str, per_tensor: bool, calibration_samples: int) -> None:
    """Static int8 quantization (QDQ) of an ONNX model with onnxruntime, checked against the fp32 model."""
    from .export.parity import run_onnx
    from .prepare import declared_contract, load_data_as
    from .quantize.ort_int8 import OrtInt8Config
    from .stages import accuracy_of, quantize_student

    if not out.lower().endswith(".onnx"):
        from .errors import ConfigError

        raise ConfigError(f"--out {out} is not an .onnx file name; `edgekd quantize` writes an int8 ONNX model",
                          "name the output e.g. model_int8.onnx (for int8 TFLite: edgekd export --format tflite "
                          "--precision int8)")
    cfg = "search" if method == "search" else OrtInt8Config(method=method, per_channel=not per_tensor,
                                                            calibration_samples=calibration_samples)
    src = _existing_onnx(model)
    ds = load_data_as(data, declared_contract(model))
    q = quantize_student(src, ds, out, cfg)
    fp32_acc = accuracy_of(run_onnx(model, ds.x_test), ds.y_test)
    click.echo(f"{out}: {q.size_bytes / 1e6:.3f} MB, int8 accuracy {q.accuracy:.4f} vs fp32 {fp32_acc:.4f}, "
               f"argmax agreement {q.parity['argmax_agreement']:.4f}"
               + (f", scheme {q.config['scheme']}" if "scheme" in q.config else ""))


def _existing_onnx(path: str):
    from pathlib import Path

    from .errors import ConfigError
    from .fsio import sha256_file
    from .records import ExportedModel

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"model file {p} does not exist", "pass an .onnx file")
    try:
        import onnx

        m = onnx.load(str(p))
        inp, out = m.graph.input[0], m.graph.output[0]
    except Exception as e:
        raise ConfigError(f"{p} is not a readable ONNX model ({first_line(e)})",
                          "pass an .onnx file written by `edgekd export`") from None
    shape = tuple(d.dim_value or d.dim_param or None for d in inp.type.tensor_type.shape.dim)
    return ExportedModel(path=str(p), sha256=sha256_file(p), format="onnx", precision="fp32",
                         size_bytes=p.stat().st_size, input_name=inp.name, input_shape=shape,
                         output_name=out.name, tool="user-supplied")


@cli.command()
@click.argument("model", type=click.Path())
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--runs", type=int, default=200, show_default=True)
@click.option("--warmup", type=int, default=20, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write the result here too.")
@click.option("--target", default=None, help="Estimate on a device instead of measuring on this CPU: an ARM target "
              "(e.g. raspberrypi: arm-emu, emulated instruction counts) or an Ethos-U target (e.g. ethos-u55-128: "
              "npu-emu, Vela).")
@click.option("--targets-dir", type=click.Path(file_okay=False), default=None, help="Extra directory of target TOMLs.")
@click.option("--device", default=None, metavar="ssh://user@host[:port]",
              help="Measure on this board over SSH (its own Python and runtime; ~/.ssh/config applies): p50/p90/p99, "
              "cold start, peak memory, the board's description, the emulated estimate beside them; the "
              "measurement is stored for `edgekd calibrate`. Threads: the --target's, else --threads.")
def bench(model: str, threads: int, runs: int, warmup: int, json_out: str | None, target: str | None,
          targets_dir: str | None, device: str | None) -> None:
    """Measure an ONNX or .tflite model on this CPU (separate process): latency percentiles, cold start, memory.

    A .tflite model runs in LiteRT with its own static input shape and dtype; anything else is read as ONNX.
    With --target ethos-u55-128 (or another NPU target) a full-int8 .tflite is compiled by Arm Vela for that
    NPU instead: estimated time, cycles, SRAM, flash, and which operators fall back to the CPU.
    With --target raspberrypi (or another ARM target) the model runs in the aarch64 runtime under QEMU with the
    target's core and threads: its outputs are checked against this host, and its latency is estimated from the
    instructions it executes (with the estimator's error band; never a measurement).
    """
    from dataclasses import asdict
    from pathlib import Path

    from .bench.host import bench_onnx_host, bench_tflite_host
    from .fsio import write_json_atomic

    if device is not None:
        from dataclasses import replace

        from .backends.board import describe as describe_board
        from .board.bench import bench_on_board
        from .board.ssh import parse_device
        from .targets import load_target

        parse_device(device)  # a malformed address fails before anything else
        if not Path(model).is_file() or Path(model).suffix.lower() not in (".onnx", ".tflite"):
            from .errors import ConfigError

            raise ConfigError(f"cannot measure {model} on a board: not an existing .onnx or .tflite file",
                              "pass an exported model")
        profile = load_target(target, targets_dir) if target else replace(load_target("host"), threads=threads)
        m = bench_on_board(model, device, profile, runs=runs, say=_say)
        click.echo("\n".join(describe_board(m)))
        if json_out:
            write_json_atomic(json_out, m.as_dict())
        return
    if target is not None:
        from .backends import Job, Settings, backend_for, host_backend
        from .targets import load_target

        profile = load_target(target, targets_dir)
        backend = backend_for(profile)
        if backend is not host_backend():
            fig = backend.figures([Job(model, None, ())], profile,
                                  Settings(runs=runs, warmup=warmup))[0]
            click.echo("\n".join(backend.describe(fig, profile)))
            if json_out:
                write_json_atomic(json_out, asdict(fig.detail))
            return
        _say(f"note: {target} is the host; measuring on this CPU")

    if Path(model).suffix.lower() == ".tflite":
        r = bench_tflite_host(model, threads=threads, runs=runs, warmup=warmup)
    else:
        m = _existing_onnx(model)
        shape = tuple(int(d) for d in m.input_shape[1:] if isinstance(d, int))
        if len(shape) != len(m.input_shape) - 1:
            from .errors import ConfigError

            raise ConfigError(f"{model} has dynamic dimensions besides the batch: {m.input_shape}",
                              "export it with a static sample shape")
        r = bench_onnx_host(model, shape, threads=threads, runs=runs, warmup=warmup)
    click.echo(f"p50 {r.p50_ms:.3f} ms  p90 {r.p90_ms:.3f} ms  p99 {r.p99_ms:.3f} ms  cold start {r.cold_start_ms:.1f} ms"
               f"  model memory {r.model_memory_mb:.1f} MB (peak RSS {r.peak_rss_mb:.1f} MB)")
    click.echo(r.how)
    if json_out:
        write_json_atomic(json_out, asdict(r))


@cli.command("report")
@click.argument("run_dir", type=click.Path())
def report_cmd(run_dir: str) -> None:
    """Regenerate RUN_DIR's report.md and report.html from its records (report.json, manifest.json)."""
    from .report.runs import regenerate

    run, paths = regenerate(run_dir)
    for note in run.notes:
        _say(f"note: {note}")
    click.echo(f"report: {paths['md']} and {paths['html']} (from {run.path / 'report.json'}, validated)")


@cli.command()
@click.argument("run_dir", type=click.Path())
def verify(run_dir: str) -> None:
    """Check every artifact in RUN_DIR against the sha256 in its manifest.json (exit 2 naming any changed or
    missing file)."""
    from .verify import verify_run

    v = verify_run(run_dir)
    if v.unlisted:
        _say(f"note: {len(v.unlisted)} file(s) not in the manifest (added after the build): "
             f"{', '.join(v.unlisted[:5])}{' ...' if len(v.unlisted) > 5 else ''}")
    click.echo(f"OK: {v.checked} artifacts in {run_dir} match manifest.json (written by edgekd {v.made_by})")


@cli.command()
@click.argument("run_a", type=click.Path())
@click.argument("run_b", type=click.Path())
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Also write compare.md and compare.html into this directory.")
def compare(run_a: str, run_b: str, out: str | None) -> None:
    """Show two runs side by side: target, budget, chosen student, its figures and the deltas (B - A)."""
    from pathlib import Path

    from .fsio import write_text_atomic
    from .report.compare import compare_html, compare_markdown, compare_reports, compare_text
    from .report.runs import load_run

    a, b = load_run(run_a), load_run(run_b)
    for run in (a, b):
        for note in run.notes:
            _say(f"note: {run.path}: {note}")
    cmp = compare_reports(a.report, b.report, str(a.path), str(b.path))
    click.echo(compare_text(cmp))
    if out:
        md = write_text_atomic(Path(out) / "compare.md", compare_markdown(cmp))
        html = write_text_atomic(Path(out) / "compare.html", compare_html(cmp))
        click.echo(f"written: {md} and {html}")


class _SmokeGroup(click.Group):
    """``edgekd smoke MODEL ...`` makes a bundle; ``edgekd smoke run DIR`` runs one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["make", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_SmokeGroup)
def smoke() -> None:
    """On-device smoke tests: `edgekd smoke MODEL --target T --out DIR` writes a bundle (model, real samples,
    reference outputs, tolerances, manifest, runner); `edgekd smoke run DIR` runs one here or under emulated ARM."""


@smoke.command("make", hidden=True)
@click.argument("model", type=click.Path())
@click.option("--target", required=True, help="Target profile the bundle is for (threads, p90 budget).")
@click.option("--targets-dir", type=click.Path(file_okay=False), default=None)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Bundle folder (also writes OUT.tar.gz).")
@click.option("--data", default="fashion-mnist", show_default=True, help="Data spec the samples come from (test split).")
@click.option("--samples", type=int, default=8, show_default=True)
def smoke_make(model: str, target: str, targets_dir: str | None, out: str, data: str, samples: int) -> None:
    from pathlib import Path

    from .prepare import declared_contract, load_data_as
    from .smoke.bundle import RawImages, make_bundle
    from .targets import load_target

    profile = load_target(target, targets_dir)
    if not Path(model).is_file():
        from .errors import ConfigError

        raise ConfigError(f"cannot bundle {model}: no such file", "pass an exported .onnx or .tflite model")
    pre = declared_contract(model)
    ds = load_data_as(data, pre)
    n = min(samples, len(ds.x_test))
    images = RawImages(tuple(ds.x_test.paths(slice(0, n))), ds.preprocess) if ds.is_lazy else None
    path = make_bundle(model, profile, out, ds.x_test[:n], ds.y_test[:n], images=images)
    click.echo(f"bundle: {path} (and {path}.tar.gz); on the board: python3 {path.name}/run_smoke.py")


@smoke.command("run")
@click.argument("bundle", type=click.Path())
@click.option("--emulate", is_flag=True, help="Run inside the emulated aarch64 environment with the target's core.")
@click.option("--target", default=None, help="Target for --emulate (default: the bundle's own).")
@click.option("--targets-dir", type=click.Path(file_okay=False), default=None)
@click.option("--strict", is_flag=True, help="A p90 over the target's budget is a FAIL.")
@click.option("--runs", type=int, default=50, show_default=True, help="Timed warm inferences.")
def smoke_run(bundle: str, emulate: bool, target: str | None, targets_dir: str | None, strict: bool,
              runs: int) -> None:
    """Run a bundle (folder or .tar.gz): PASS or FAIL with the reasons; exit 1 on FAIL."""
    import json as _json
    from pathlib import Path as _Path

    from .errors import ConfigError
    from .smoke.bundle import run_bundle
    from .targets import load_target

    profile = None
    if emulate:
        name = target
        if name is None and (_Path(bundle) / "manifest.json").is_file():
            try:
                manifest = _json.loads((_Path(bundle) / "manifest.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                manifest = None
            name = manifest.get("target") if isinstance(manifest, dict) else None
            name = name if isinstance(name, str) else None
        if not name:
            raise ConfigError("--emulate needs a target", "pass --target raspberrypi (or another ARM target)")
        profile = load_target(name, targets_dir)
        if profile.backend != "arm-emu":
            raise ConfigError(f"target {name} is not an emulated ARM target", "pass an ARM target with --target")
    result = run_bundle(bundle, emulate_target=profile, strict=strict, runs=runs)
    click.echo(result["line"] or f"{result['status']}: {'; '.join(result.get('reasons', []))}")
    click.echo(f"({result['where']}; result: {result['bundle']}/result.json)")
    if result["status"] != "PASS":
        raise click.exceptions.Exit(1)


@cli.group()
def cache() -> None:
    """The cache folder (~/.cache/edgekd): what it holds, and freeing it."""


@cache.command("list")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help="Default: ~/.cache/edgekd.")
def cache_list(cache_dir: str | None) -> None:
    """Each area: entries, size, and how recently one was used."""
    from pathlib import Path

    from .cache import default_cache_dir
    from .cache_admin import list_areas

    root = Path(cache_dir) if cache_dir else default_cache_dir()
    click.echo(f"{root}")
    for a in list_areas(root):
        used = "-" if a.newest_days is None else f"{a.newest_days:.1f} days ago"
        click.echo(f"  {a.name:15s} {a.entries:6d} entries {a.bytes / 1e6:10.1f} MB  last used {used:>15s}  {a.what}")


@cache.command("prune")
@click.option("--older-than", type=click.FloatRange(min=0), default=30.0, show_default=True, metavar="DAYS",
              help="Remove entries not used for this many days (0: all).")
@click.option("--area", "areas", multiple=True, help="Only these areas (repeatable; default: all but 'arm').")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help="Default: ~/.cache/edgekd.")
def cache_prune(older_than: float, areas: tuple[str, ...], cache_dir: str | None) -> None:
    """Free the cache: entries unused for --older-than days (board measurements are never removed)."""
    from pathlib import Path

    from .cache import default_cache_dir
    from .cache_admin import AREAS, prune
    from .errors import ConfigError

    unknown = [a for a in areas if a not in AREAS]
    if unknown:
        raise ConfigError(f"unknown cache area(s): {', '.join(unknown)}", f"use one of {', '.join(AREAS)}")
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    n, freed = prune(root, older_than, areas or tuple(a for a in AREAS if a != "arm"))
    click.echo(f"removed {n} entr{'y' if n == 1 else 'ies'} unused for {older_than:g}+ days, {freed / 1e6:.1f} MB "
               f"freed ({root})")


@cli.command()
def calibrate() -> None:
    """Refit the ARM latency estimator from the shipped calibration rows plus every board measurement stored by
    `edgekd bench/build --device ssh://...`; later estimates use the refit (and say so)."""
    from .emu.refit import refit

    r = refit()

    def line(label: str, s: dict) -> str:
        return "  ".join(f"{p}: median {100 * v['median_abs']:.1f}%, {100 * v['within_25']:.0f}% within ±25%, worst "
                         f"{100 * v['worst']:.0f}% ({v['rows']} rows)" for p, v in s.items() if p != "all") + f" [{label}]"

    click.echo(f"refit on {r.shipped_rows} shipped + {r.local_rows} local row(s) -> {r.path}")
    click.echo("leave-one-out error before: " + line("shipped fit", r.before))
    click.echo("leave-one-out error after:  " + line("refit", r.after))
    for i, (b, a) in enumerate(zip(r.local_before, r.local_after)):
        click.echo(f"  local row {i + 1}: shipped fit {100 * b:+.0f}% -> refit (leave-one-out) {100 * a:+.0f}%")


@cli.group()
def emu() -> None:
    """The emulated aarch64 environment (QEMU user mode) used by ARM targets."""


@emu.command("setup")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help="Default: ~/.cache/edgekd.")
def emu_setup(cache_dir: str | None) -> None:
    """Build the environment (idempotent; needs Debian's qemu-user, gcc and the network once)."""
    from .emu.env import setup

    env = setup(cache_dir, say=_say)
    click.echo(f"emu: ready in {env.root} (qemu {env.qemu_version}; "
               f"{', '.join(f'{k} {v}' for k, v in env.wheels.items())})")


@emu.command("status")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help="Default: ~/.cache/edgekd.")
def emu_status(cache_dir: str | None) -> None:
    """Say whether the environment is ready (exit 2 with the set-up command when it is not)."""
    from .emu.env import find_env

    env = find_env(cache_dir)
    click.echo(f"emu: ready in {env.root} (qemu {env.qemu_version}; "
               f"{', '.join(f'{k} {v}' for k, v in env.wheels.items())})")


@cli.group()
def targets() -> None:
    """List and show device profiles."""


@targets.command("list")
@click.option("--targets-dir", type=click.Path(file_okay=False), default=None)
def targets_list(targets_dir: str | None) -> None:
    """List known targets."""
    from .targets import list_targets, load_target

    for name in list_targets(targets_dir):
        click.echo(f"{name:16s} {load_target(name, targets_dir).description}")


@targets.command("show")
@click.argument("name")
@click.option("--targets-dir", type=click.Path(file_okay=False), default=None)
def targets_show(name: str, targets_dir: str | None) -> None:
    """Show one target profile (its TOML)."""
    from pathlib import Path

    from .targets import load_target

    t = load_target(name, targets_dir)
    click.echo(f"# {t.path}")
    click.echo(Path(t.path).read_text() if Path(t.path).is_file() else str(t))


def _command_line() -> str:
    return "edgekd " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI and maps errors to exit codes. The only place that exits."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        rc = cli.main(args=args, prog_name="edgekd", standalone_mode=False)
        return rc if isinstance(rc, int) else 0  # click returns an Exit's code instead of raising it here
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        click.echo("edgekd: interrupted (Ctrl-C): finished stages and artifacts are kept, partial files were "
                   "removed. Fix: re-run the same command to resume", err=True)
        return 130
    except EdgeKDError as e:
        if debug:
            traceback.print_exc()
        click.echo(f"edgekd: error: {e.headline()}", err=True)
        for d in e.details:  # e.g. every converter route and why it failed: a line each
            click.echo(f"  {d}", err=True)
        return e.exit_code
    except Exception as e:  # a bug in edgekd, not the user's input
        if debug:
            traceback.print_exc()
        first = first_line(e, 300)
        click.echo(f"edgekd: internal error: {type(e).__name__}: {first} (re-run with --debug and report it)", err=True)
        return 1
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
