"""A quiet console: third-party log noise stays hidden unless ``--debug``.

What the libraries edgekd drives print on their own, and how each is silenced (the CLI calls
:func:`quiet_third_party` before any of them is imported):

- TensorFlow's C++ INFO/WARNING lines and its oneDNN notice: ``TF_CPP_MIN_LOG_LEVEL=3``; absl's Python logging;
- torchao's "Failed to load .../_C_mxfp8...so" (optional CUDA kernels it cannot load on a CPU machine): its logger;
- torch's ``_pytree`` deprecation warning raised while torchao registers its types: that logger;
- LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." written by C++ straight to file descriptor 2:
  :func:`native_stderr_quiet` around the call that prints it.

``EDGEKD_DEBUG=1`` (set by ``--debug``, cleared without it) leaves everything as the libraries make it; the
processes edgekd starts inherit it.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Iterator

DEBUG_ENV = "EDGEKD_DEBUG"
NOISY_LOGGERS = ("torchao", "torch.utils._pytree", "absl", "tensorflow", "h5py", "onnx2tf", "onnxscript")


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV) == "1"


def quiet_third_party(debug: bool = False) -> None:
    """Silence the libraries' own logging for this process and the processes it starts (env vars)."""
    if debug:
        os.environ[DEBUG_ENV] = "1"
        return
    os.environ.pop(DEBUG_ENV, None)  # the flag decides: a value left by an earlier in-process call does not count
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow C++ INFO/WARNING, the oneDNN notice
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def native_stderr_quiet() -> Iterator[None]:
    """Send what native code writes to file descriptor 2 to /dev/null for the block (unless debugging)."""
    if debugging():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): nothing to hide
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
