"""Quick single-seed sweep of KD temperature and alpha on Fashion-MNIST (how the defaults were chosen).

    W=0.5 .venv/bin/python benchmarks/kd_sweep.py 0,1,5 0.9,4,5 0.9,2,5 0.7,2,5

Each argument is alpha,T,max_grad_norm; W is the student width (convnet, depth 1). 5 epochs, seed 0,
the built-in teacher. One seed only: differences under ~0.5 points are noise; distill_quality.py has
the 3-seed comparison. Prints one line per setting: alpha T clip test_accuracy.
"""

import os
import sys

import torch

from edgekd.cache import default_cache_dir
from edgekd.data import load_dataset
from edgekd.distill.cache import cached_teacher_logits
from edgekd.distill.config import DistillConfig
from edgekd.distill.trainer import evaluate, train
from edgekd.models.default_teacher import default_teacher
from edgekd.models.students import StudentSpec, build_student

torch.set_num_threads(2)
data = load_dataset("fashion-mnist", seed=0)
t, info = default_teacher(data, default_cache_dir())
z = cached_teacher_logits(t, "default:" + info.weights_sha256, data, default_cache_dir())
spec = StudentSpec("convnet", float(os.environ.get("W", "0.5")), 1, data.input_shape, 10)
for a, T, clip in [tuple(map(float, s.split(","))) for s in sys.argv[1:]]:
    torch.manual_seed(0)
    cfg = DistillConfig(loss="ce" if a == 0 else "hinton", alpha=a, temperature=T, epochs=5, patience=5,
                        max_grad_norm=clip)
    r = train(build_student(spec), data, cfg, teacher_logits=z)
    print(a, T, clip, evaluate(r.model, data.x_test, data.y_test), flush=True)
