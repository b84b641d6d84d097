"""Train the built-in Fashion-MNIST teacher and write it into the package.

    .venv/bin/python benchmarks/make_default_teacher.py

Writes edgekd/models/weights/fashion_mnist_teacher.pt (state_dict, loaded with weights_only=True) and
benchmarks/results/default_teacher.json (recipe, accuracy, wall time). The recipe is
edgekd.models.default_teacher.TEACHER_TRAINING on teacher_spec(...), the same one used to train a
default teacher on first use for any other data set.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from edgekd.data import load_dataset
from edgekd.distill.trainer import evaluate, train
from edgekd.fsio import atomic_path, write_json_atomic
from edgekd.models.count import count_macs, count_params
from edgekd.models.default_teacher import SHIPPED, TEACHER_TRAINING, state_dict_sha256, teacher_spec
from edgekd.models.students import build_student

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    t0 = time.perf_counter()
    data = load_dataset("fashion-mnist", seed=TEACHER_TRAINING.seed)
    spec = teacher_spec(data.input_shape, data.num_classes)
    torch.manual_seed(TEACHER_TRAINING.seed)
    result = train(build_student(spec), data, TEACHER_TRAINING, progress=print)
    out = ROOT / "edgekd" / "models" / "weights" / SHIPPED["fashion-mnist"]
    with atomic_path(out) as tmp:
        torch.save(result.model.state_dict(), tmp)
    record = {
        "spec": spec.as_dict(), "training": TEACHER_TRAINING.as_dict(), "params": count_params(result.model),
        "macs": count_macs(result.model, spec.input_shape), "val_accuracy": result.best_val_accuracy,
        "test_accuracy": evaluate(result.model, data.x_test, data.y_test), "epochs_run": result.epochs_run,
        "history": result.history, "wall_seconds": time.perf_counter() - t0,
        "weights_sha256": state_dict_sha256(result.model), "torch": torch.__version__,
        "command": ".venv/bin/python benchmarks/make_default_teacher.py",
    }
    write_json_atomic(ROOT / "benchmarks" / "results" / "default_teacher.json", record)
    print(json.dumps({k: record[k] for k in ("test_accuracy", "params", "macs", "wall_seconds")}))


if __name__ == "__main__":
    main()
