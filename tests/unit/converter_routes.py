"""Converter routes that misbehave, for the isolation tests: module-level so that the child process edgekd starts
for a conversion can import them by name (a test's monkeypatch does not reach into that process)."""

from __future__ import annotations

import os
import signal
import sys
import time

N_CLASSES = 4  # the test students' classes (tests/unit/test_tflite.py)


def crashes(*_args):
    print("converter: lowering the graph", flush=True)
    os.kill(os.getpid(), signal.SIGSEGV)  # as onnx2tf's TensorFlow did on EdgeNeXt


def hangs(*_args):
    print("converter: waiting forever", flush=True)
    time.sleep(3600)


def eats_memory(*_args):
    hog = []
    while True:
        hog.append(bytearray(64 * 1024 * 1024))  # touched: resident, not just reserved
        for i in range(0, len(hog[-1]), 4096):
            hog[-1][i] = 1
        time.sleep(0.02)


def raises(*_args):
    print("WARNING:root:Axis 1 is out-of-range for weight", file=sys.stderr, flush=True)  # chatter, to the log
    raise RuntimeError("Lowering not found: aten.made_up_op.default")


def raises_edgekd_error(*_args):
    from edgekd.errors import ExportError

    raise ExportError("the model has an op this route cannot lower", "try the other route")


def returns(*args):
    print("converter: done", flush=True)
    return {"args": len(args), "pid": os.getpid()}


def wrong_model(model, *args):
    """litert-torch 'succeeds' but converts a different model (parity must catch it)."""
    import copy

    import torch

    from edgekd.export.tflite import litert_route

    other = copy.deepcopy(model)
    with torch.no_grad():
        other.head.bias.add_(torch.arange(N_CLASSES, dtype=torch.float32) * 5)
    return litert_route(other, *args)
