"""Imported once by ``edgekd.isolate``'s fork server: the libraries every conversion child needs, loaded before it
forks, so that each conversion does not pay their imports again (litert-torch's alone took ~4.5 s a conversion;
``benchmarks/RESULTS.md``, ``isolation_overhead``). The server's own console output is hidden like the build's
(``--debug`` shows it); an import that fails here is left for the child to report as its route's failure."""

from __future__ import annotations

import os

from .console import debugging, native_stderr_quiet, quiet_third_party

quiet_third_party(debugging())
with native_stderr_quiet():  # torchao's "Failed to load ..." and TensorFlow's notices are printed at import
    for _name in ("numpy", "torch", "onnx", "onnxruntime.quantization", "litert_torch"):
        try:
            __import__(_name)
        except Exception:  # noqa: BLE001 - the child imports it again and reports what is wrong
            pass
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
