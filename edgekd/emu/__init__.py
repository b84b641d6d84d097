"""Emulated ARM: the real aarch64 builds of onnxruntime and LiteRT under QEMU user-mode emulation.

``cores`` names the Arm cores edgekd can emulate, ``env`` builds and finds the aarch64 environment (Python
userland, wheels, per-core cpuinfo, the instruction-counting TCG plugin), ``run`` runs a model under
``qemu-aarch64 -cpu CORE`` and returns its outputs and instruction counts, ``estimator`` turns instruction
counts into a latency estimate with an error band fitted on published device figures.
"""
