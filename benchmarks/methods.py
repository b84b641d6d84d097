"""Distillation methods side by side (issue 8): student alone, KD, and each method, same epoch budget.

    .venv/bin/python benchmarks/methods.py [--limit 6000] [--epochs 15] [--seeds 0 1 2] [--width 2]
                                           [--only NAME ...] [--merge [--add-seeds]] [--no-record]

Fashion-MNIST: students train on a stratified subset of --limit labelled training samples (validation shrunk in
proportion, data split seed 0) -- the regime where a product team has a teacher trained on more data than it can
label for the student; edgekd's shipped teacher (trained on the full training set). Every accuracy is measured on
the full official test set (10,000 images: one image = 0.01 points). Student convnet at --width (depth 1;
w2 is what the default build deploys). The training seed varies. For every run: test accuracy of the torch
student, and of its int8 export (ONNX -> onnxruntime static QDQ int8, MinMax per-channel, edgekd's own export
path = post-training quantization, PTQ); int8 drop = fp32 − int8. Fraction of the gap recovered =
(acc − alone) / (teacher − alone). QAT rows are compared with the PTQ rows trained with the same loss
("QAT + KD" with "KD (hinton)", "QAT alone" with "student alone"), and once more on a tiny student (w0.25,
0.14 M MACs), where int8 PTQ loses more, and on a depthwise-separable student (mobilenet w1 d1, 0.67 M MACs),
whose int8 export is also measured with per-tensor weight scales (``--qat-weights per-tensor`` for the QAT row);
these rows have no gap figure (another student). QAT rows freeze BatchNorm after two thirds of the epochs (the
``--qat-bn-epochs`` default); the rows named "BN never frozen" train without freezing (as QAT did before that option),
for the comparison. The QAT
goal is judged on the drop saved, PTQ drop minus QAT drop, paired by seed (same initial weights and batches): met
when its mean exceeds 2 standard errors. ``--merge --add-seeds --seeds 3 4 5 --only ROW$`` adds seeds to a row.
Cross-modal runs on paired:lowres (student sees 14×14, teacher 28×28) against its own 14×14 student alone.
The two "KD + unlabelled rest" rows add the training images --limit left out, without their labels
(``--unlabeled rest``: 48,000 inputs the teacher labels): one trains 2 epochs (about the labelled rows' number of
steps), the other 5 epochs (3x the steps; the same 15 epochs would be 9x, more than this machine could give it);
each row records its steps.
Multi-teacher uses the built-in teacher plus a second teacher (convnet w1 d2 trained alone here, then exported
to ONNX, so the mix really is torch + ONNX). Data-free trains on DeepInversion inputs only (no real sample).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _eval import int8_accuracy
from _results import RESULTS, record

from edgekd.cache import default_cache_dir
from edgekd.data import load_dataset
from edgekd.distill.config import DistillConfig
from edgekd.distill.methods import METHODS, MethodContext
from edgekd.distill.trainer import evaluate
from edgekd.models.default_teacher import default_teacher
from edgekd.models.students import StudentSpec
from edgekd.stages import accuracy_of, export_student

@dataclass(frozen=True)
class Row:
    method: str
    over: dict = field(default_factory=dict)  # DistillConfig overrides
    width: float | None = None  # None: --width (the student the gap is measured on); else another student, no gap
    family: str = "convnet"
    per_tensor_int8: bool = False  # exported with one weight scale per tensor (kernels without per-channel scales)
    ptq_row: str | None = None  # QAT rows: the row trained with the same loss and no fake quantization


NO_BN_FREEZE = {"qat_bn_epochs": 10_000}  # QAT as before --qat-bn-epochs existed: BatchNorm never frozen
MN = {"width": 1.0, "family": "mobilenet"}  # depthwise-separable convs (mobilenet w1 d1)
PT = {**MN, "per_tensor_int8": True}  # the classic case where post-training int8 of depthwise convs breaks down
# (Krishnamoorthi 2018, arXiv:1806.08342, table 2)
RUNS = {
    "student alone": Row("kd", {"loss": "ce", "alpha": 0.0}),
    "KD (hinton)": Row("kd"),
    "DKD": Row("kd", {"loss": "dkd", "temperature": 4.0}),
    "LSKD": Row("kd", {"loss": "lskd"}),
    "DKD+LS": Row("kd", {"loss": "dkd_ls", "temperature": 4.0}),
    "feature mse (auto pairs)": Row("feature", {"hints": (("auto", "auto"),), "feature_loss": "mse"}),
    "feature AT (auto pairs)": Row("feature", {"hints": (("auto", "auto"),), "feature_loss": "at"}),
    "QAT + KD": Row("qat", ptq_row="KD (hinton)"),
    "QAT alone": Row("qat", {"loss": "ce", "alpha": 0.0}, ptq_row="student alone"),
    "QAT + KD, BN never frozen": Row("qat", NO_BN_FREEZE, ptq_row="KD (hinton)"),
    "QAT alone, BN never frozen": Row("qat", {"loss": "ce", "alpha": 0.0, **NO_BN_FREEZE}, ptq_row="student alone"),
    "KD (hinton), w0.25": Row("kd", width=0.25),  # a tiny student, where int8 PTQ loses more
    "QAT + KD, w0.25": Row("qat", width=0.25, ptq_row="KD (hinton), w0.25"),
    "QAT + KD, w0.25, BN never frozen": Row("qat", NO_BN_FREEZE, width=0.25, ptq_row="KD (hinton), w0.25"),
    "KD (hinton), mobilenet w1": Row("kd", **MN),
    "QAT + KD, mobilenet w1": Row("qat", **MN, ptq_row="KD (hinton), mobilenet w1"),
    "KD (hinton), mobilenet w1, per-tensor int8": Row("kd", **PT),
    "QAT + KD, mobilenet w1, per-tensor int8": Row("qat", {"qat_weights": "per-tensor"}, **PT,
                                                   ptq_row="KD (hinton), mobilenet w1, per-tensor int8"),
    "QAT + KD, mobilenet w1, per-tensor int8, BN never frozen": Row(
        "qat", {"qat_weights": "per-tensor", **NO_BN_FREEZE}, **PT, ptq_row="KD (hinton), mobilenet w1, per-tensor int8"),
    "multi-teacher (torch+onnx, confidence)": Row("multi-teacher", {"teacher_weighting": "confidence"}),
    "mutual (2 peers)": Row("mutual"),
    "born-again (1 generation)": Row("born-again", {"generations": 1}),
    "data-free (DeepInversion)": Row("data-free", {"synthetic_samples": 1024, "inversion_steps": 60}),
    "student alone + mixup": Row("kd", {"loss": "ce", "alpha": 0.0, "augment": "mixup"}),
    "KD + mixup (function matching)": Row("kd", {"augment": "mixup"}),
    "KD + unlabelled rest (2 epochs ~ same steps)": Row("kd", {"epochs": 2}),
    "KD + unlabelled rest (5 epochs, 3x the steps)": Row("kd", {"epochs": 5}),
    "cross-modal alone (14x14)": Row("kd", {"loss": "ce", "alpha": 0.0}),
    "cross-modal KD (teacher 28x28)": Row("cross-modal"),
}
UNLABELED_ROWS = ("KD + unlabelled rest (2 epochs ~ same steps)", "KD + unlabelled rest (5 epochs, 3x the steps)")
# + the training images --limit left out, unlabelled (--unlabeled rest): an epoch is 9x longer, so the 2-epoch row
# trains about as many steps as the labelled-only rows (1688 vs 1410) and the 5-epoch row 3x as many


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=6000)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--width", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--merge", action="store_true",
                    help="add the rows run now to results/methods.json (same settings) instead of replacing it")
    ap.add_argument("--add-seeds", action="store_true",
                    help="with --merge: add the --seeds run now to the recorded rows' runs instead of replacing them")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--from-partial", action="store_true",
                    help="record the rows finished by an interrupted run with the same --only "
                    "(results/methods.partial[.ONLY].json); with --merge, into results/methods.json's other rows")
    args = ap.parse_args()
    if args.add_seeds and not args.merge:
        ap.error("--add-seeds goes with --merge")
    torch.set_num_threads(2)
    cache = default_cache_dir()
    data = _full_test(load_dataset("fashion-mnist", seed=0, limit=args.limit), "fashion-mnist")
    paired = _full_test(load_dataset("paired:lowres:fashion-mnist", seed=0, limit=args.limit),
                        "paired:lowres:fashion-mnist")
    teacher, info = default_teacher(data, cache)
    unl = z_unl = None
    if any(_wanted(n, args) for n in UNLABELED_ROWS):
        unl = _full_test(load_dataset("fashion-mnist", seed=0, limit=args.limit, unlabeled="rest"), "fashion-mnist")
        z_unl = teacher.logits(unl.x_train)
    if args.from_partial:
        results = json.loads(_partial_path(args).read_text())
        results = _merged(results, args) if args.merge else results
        _finish(results, accuracy_of(teacher.logits(data.x_test), data.y_test), teacher, paired, info, args)
        return
    teacher_acc = accuracy_of(teacher.logits(data.x_test), data.y_test)
    z = teacher.logits(data.x_train)
    second = _second_teacher(data, args) if _wanted("multi-teacher (torch+onnx, confidence)", args) else None
    partial = _partial_path(args)
    results: dict[str, dict] = {}
    if args.merge:
        _merged({}, args)  # refuse other settings before hours of training, not after
    for name, row in RUNS.items():
        if not _wanted(name, args):
            continue
        method, over = row.method, row.over
        d = paired if name.startswith("cross-modal") else unl if name in UNLABELED_ROWS else data
        spec = StudentSpec(row.family, row.width or args.width, 1, d.input_shape, d.num_classes)
        runs = []
        for seed in args.seeds:
            cfg = replace(DistillConfig(epochs=args.epochs, patience=args.epochs, seed=seed,
                                        batch_size=args.batch_size), method=method, **over)
            t0 = time.perf_counter()
            cached = z if d is data else z_unl if d is unl else None
            ctx = MethodContext(d, spec, cfg, teacher=teacher, teacher_logits=cached if method in ("kd", "qat") and
                                cfg.loss != "ce" else None,
                                teachers=(teacher, second) if method == "multi-teacher" else ())
            res = METHODS.get(method).run(ctx)
            secs = time.perf_counter() - t0
            acc = evaluate(res.model, d.x_test, d.y_test)
            int8 = int8_accuracy(res.model, d, per_channel=not row.per_tensor_int8)
            steps = -(-len(d.x_train) // cfg.batch_size) * cfg.epochs  # scheduled (early stopping may end sooner)
            runs.append({"seed": seed, "test_accuracy": acc, "int8_accuracy": int8, "train_seconds": secs,
                         "train_samples": len(d.x_train), "unlabelled_samples": d.n_unlabeled, "steps": steps})
            print(f"{name:40s} seed {seed}: fp32 {acc:.4f}  int8 {int8:.4f}  ({secs:.0f}s)", flush=True)
        results[name] = _row(method, over, runs)
        partial.write_text(json.dumps(results, indent=2, default=str))
    _finish(_merged(results, args) if args.merge else results, teacher_acc, teacher, paired, info, args)


def _row(method: str, over: dict, runs: list[dict]) -> dict:
    accs = [r["test_accuracy"] for r in runs]
    i8 = [r["int8_accuracy"] for r in runs]
    return {"method": method, "overrides": dict(over), "runs": runs,
            "mean": statistics.mean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "int8_mean": statistics.mean(i8), "int8_std": statistics.stdev(i8) if len(i8) > 1 else 0.0}


def _partial_path(args: argparse.Namespace) -> Path:
    """Where finished rows are kept while a run goes on; one file per --only selection, so that merge runs of
    different rows can go on side by side."""
    slug = "-".join("".join(ch if ch.isalnum() else "_" for ch in o.lower()) for o in args.only or [])
    return RESULTS / (f"methods.partial.{slug}.json" if slug else "methods.partial.json")


def _merged(new: dict[str, dict], args: argparse.Namespace) -> dict[str, dict]:
    """results/methods.json's rows as they are *now* (another merge run may have added some meanwhile), with the
    rows run now replacing or joining them."""
    old = json.loads((RESULTS / "methods.json").read_text())
    mine = {"limit": args.limit, "epochs": args.epochs, "batch_size": args.batch_size, "width": args.width}
    if {k: old.get(k) for k in mine} != mine:
        raise SystemExit(f"--merge: results/methods.json was run with other settings ({old.get('limit')=}, ...)")
    rows = {k: new.get(k, v) for k, v in old["results"].items()}
    rows.update({k: v for k, v in new.items() if k not in rows})
    if args.add_seeds:  # the recorded row's other seeds stay; a seed run again replaces its run
        for k, v in new.items():
            if k in old["results"]:
                runs = {r["seed"]: r for r in old["results"][k]["runs"]} | {r["seed"]: r for r in v["runs"]}
                rows[k] = {**old["results"][k], **_row(v["method"], v["overrides"], [runs[s] for s in sorted(runs)])}
    return rows


def _full_test(d, spec: str):
    """``d`` (a --limit subset) with the full official test split (and the teacher view's, for paired data)."""
    from dataclasses import replace as _replace

    full = load_dataset(spec, seed=0)
    out = _replace(d, x_test=full.x_test, y_test=full.y_test)
    if getattr(d, "teacher_view", None) is not None:
        tv = _replace(d.teacher_view, x_test=full.teacher_view.x_test, y_test=full.teacher_view.y_test)
        out = _replace(out, teacher_view=tv)
    return out


def _wanted(name: str, args: argparse.Namespace) -> bool:
    """--only: rows whose name contains one of the texts; a text ending in '$' must be the whole name."""
    return args.only is None or any(name.lower() == o[:-1].lower() if o.endswith("$") else o.lower() in name.lower()
                                    for o in args.only)




def _second_teacher(data, args):
    """A different second teacher: convnet w1 d2 trained alone for 2*epochs, exported to ONNX (run in ORT)."""
    from edgekd.distill.trainer import train
    from edgekd.models.students import build_student
    from edgekd.models.teachers import load_teacher

    torch.manual_seed(123)
    m = build_student(StudentSpec("convnet", 1.0, 2, data.input_shape, data.num_classes))
    m = train(m, data, DistillConfig(loss="ce", alpha=0.0, epochs=2 * args.epochs, patience=9, seed=123)).model
    path = Path(tempfile.mkdtemp()) / "second_teacher.onnx"
    export_student(m, data, path)
    t = load_teacher(path)
    print(f"second teacher (convnet w1 d2, ONNX): test acc {accuracy_of(t.logits(data.x_test), data.y_test):.4f}")
    return t


def _paired_drops(qat: dict, ptq: dict) -> dict[str, float]:
    """int8 drop PTQ minus QAT, paired by seed: a QAT row and its PTQ row with the same seed start from the same
    weights and see the same batches (only the fake quantization differs), so their drops move together from seed
    to seed (the seed that loses most with PTQ also loses most with QAT); the paired difference's standard error
    is the noise to compare the mean saving with, not the spread of single runs."""
    q = {r["seed"]: r for r in qat["runs"]}
    p = {r["seed"]: r for r in ptq["runs"]}
    seeds = sorted(set(q) & set(p))
    drop = lambda r: r["test_accuracy"] - r["int8_accuracy"]
    saved = [drop(p[s]) - drop(q[s]) for s in seeds]
    gain = [q[s]["int8_accuracy"] - p[s]["int8_accuracy"] for s in seeds]  # what the deployed model gains
    se = lambda v: statistics.stdev(v) / len(v) ** 0.5 if len(v) > 1 else float("inf")
    return {"paired_seeds": len(saved), "drop_saved_mean": statistics.mean(saved) if saved else 0.0,
            "drop_saved_se": se(saved), "drop_saved_per_seed": saved,
            "int8_gain_mean": statistics.mean(gain) if gain else 0.0, "int8_gain_se": se(gain)}


def _finish(results, teacher_acc, teacher, paired, info, args) -> None:
    alone = results.get("student alone", {}).get("mean")
    t_paired = accuracy_of(teacher.logits(paired.teacher_view.x_test), paired.y_test)
    alone_x = results.get("cross-modal alone (14x14)", {}).get("mean")
    for name, r in results.items():
        base, top = (alone_x, t_paired) if name.startswith("cross-modal") else (alone, teacher_acc)
        r["gap_recovered"] = (r["mean"] - base) / (top - base) if base is not None and top > base and \
            not (name in RUNS and RUNS[name].width) else None  # another student size: not measured against this student alone
        drops = [x["test_accuracy"] - x["int8_accuracy"] for x in r["runs"]]
        r["int8_drop_mean"] = statistics.mean(drops)
        r["int8_drop_std"] = statistics.stdev(drops) if len(drops) > 1 else 0.0
    qat_vs_ptq = {q: {"ptq_row": p, "qat_int8_drop": results[q]["int8_drop_mean"], "ptq_int8_drop": results[p]["int8_drop_mean"],
                      "qat_int8_accuracy": results[q]["int8_mean"], "ptq_int8_accuracy": results[p]["int8_mean"]}
                  for q, p in ((n, r.ptq_row) for n, r in RUNS.items() if r.ptq_row) if q in results and p in results}
    ranked = sorted((r["gap_recovered"], n) for n, r in results.items() if r["gap_recovered"] is not None
                    and not n.startswith(("cross-modal", "student alone")) and n not in UNLABELED_ROWS)
    ranked_unl = sorted((r["gap_recovered"], n) for n, r in results.items()
                        if r["gap_recovered"] is not None and n in UNLABELED_ROWS)
    seed_sets = [tuple(x["seed"] for x in r["runs"]) for r in results.values()]
    usual = max(set(seed_sets), key=seed_sets.count) if seed_sets else tuple(args.seeds)  # most rows' seeds
    fmt = lambda n, r: (f"{n} {r['mean']:.4f} ± {r['std']:.4f} (int8 {r['int8_mean']:.4f}, drop "
                        f"{r['int8_drop_mean'] * 100:+.2f} pts"
                        + ("" if tuple(x["seed"] for x in r["runs"]) == usual else
                           f", seeds {[x['seed'] for x in r['runs']]}")
                        + (f", gap {r['gap_recovered']:+.0%}" if r["gap_recovered"] is not None else "") + ")")
    goals = []
    if ranked:
        g, n = ranked[-1]
        goals.append(f"best method on the labelled samples alone, {n}, recovers {g:.0%} of the gap (goal >= 50%: "
                     f"{'met' if g >= 0.5 else 'NOT met'})")
    for g, n in reversed(ranked_unl):
        steps = results[n]["runs"][0].get("steps")
        goals.append(f"{n} ({steps} steps) recovers {g:.0%} of the gap (goal >= 50%: "
                     f"{'met' if g >= 0.5 else 'NOT met'}, with the unlabelled rest of the training images)")
    for q, c in qat_vs_ptq.items():
        c.update(_paired_drops(results[q], results[c["ptq_row"]]))
        diff, noise = c["drop_saved_mean"], 2 * c["drop_saved_se"]
        verdict = ("NOT met" if diff <= 0 else f"met: {diff * 100:.2f} ± {c['drop_saved_se'] * 100:.2f} pts saved "
                   f"over {c['paired_seeds']} seeds, more than 2 standard errors" if diff > noise else
                   f"met by the letter only: {diff * 100:.2f} pts saved is within 2 standard errors "
                   f"(±{noise * 100:.2f} pts, {c['paired_seeds']} seeds)")
        goals.append(f"{q} int8 drop {c['qat_int8_drop'] * 100:+.2f} pts vs PTQ {c['ptq_int8_drop'] * 100:+.2f} pts "
                     f"(goal QAT < PTQ: {verdict}); its int8 accuracy vs PTQ's, paired: "
                     f"{c['int8_gain_mean'] * 100:+.2f} ± {c['int8_gain_se'] * 100:.2f} pts")
    summary = (f"Fashion-MNIST, {len(paired.x_train)} labelled train samples (limit {args.limit}), full test set "
               f"({len(paired.x_test)}), convnet w{args.width:g} d1, {args.epochs} epochs, batch {args.batch_size}, "
               f"seeds {list(usual)} (unless a row says), teacher {teacher_acc:.4f} (on the paired set's 28x28 view: {t_paired:.4f}): "
               + "; ".join(fmt(n, r) for n, r in results.items()) + ". " + "; ".join(goals))
    cmd = "python benchmarks/methods.py " + shlex.join(sys.argv[1:])
    print(summary)
    if not args.no_record:
        record("methods", {"teacher_accuracy": teacher_acc, "teacher": info.origin, "limit": args.limit,
                           "epochs": args.epochs, "batch_size": args.batch_size, "seeds": list(usual), "width": args.width,
                           "teacher_accuracy_paired_view": t_paired, "qat_vs_ptq": qat_vs_ptq, "goals": goals,
                           "results": results}, summary, cmd.strip())


if __name__ == "__main__":
    main()
