"""The Arm cores edgekd can emulate, as data: QEMU's CPU model and what the guest's /proc/cpuinfo says.

XNNPACK and onnxruntime choose their kernels from the CPU they detect (the MIDR part number and the feature
flags in /proc/cpuinfo, and the HWCAPs QEMU reports for ``-cpu``), so both must describe the same core.
Feature lists follow the Linux kernel's names for what each core implements (the Pi 4's BCM2711 has no
crypto extensions; the Cortex-A76 adds the dot-product instructions, ``asimddp``, that int8 kernels use).

QEMU 7.2 emulates the A53, A72 and A76 as such. The A73 and A75 (Pixel 2 and 3a big cores in the calibration
table) are run as the nearest core QEMU has with the same instruction set (A73: ARMv8.0 like the A72; A75:
ARMv8.2 with dot product like the A76) while the guest's cpuinfo names the real part, so the runtimes pick the
kernels they would pick on that core; what is approximated is only QEMU's own view of the CPU.

``llc_kb`` is the size of the last-level cache the TCG plugin models for the memory term (the device's L2, or
its L3 where it has one); a target profile may override it for its SoC.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TargetError
from ..registry import Registry


@dataclass(frozen=True)
class ArmCore:
    name: str  # e.g. "cortex-a72", also the name QEMU's -cpu takes
    part: int  # MIDR part number (CPU implementer 0x41 = Arm)
    features: str  # the Features line of /proc/cpuinfo
    pipeline: str  # one phrase: issue width and order, for reports
    variant: int = 0
    revision: int = 0
    llc_kb: int = 1024  # last-level cache modelled for the memory counts (KiB)
    qemu_cpu: str = ""  # QEMU's -cpu model; empty: the core's own name
    memory_like: str = ""  # the core whose devices' memory system is closest (the estimator borrows its MEM when
    # this core's calibration rows cannot separate memory from compute); empty: the median of the cores that can

    @property
    def emulated_as(self) -> str:
        return self.qemu_cpu or self.name

    def cpuinfo(self, n_cores: int) -> str:
        """The text of an ARM64 Linux /proc/cpuinfo for ``n_cores`` of this core."""
        block = ("processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {f}\nCPU implementer\t: 0x41\n"
                 "CPU architecture: 8\nCPU variant\t: {v:#x}\nCPU part\t: {p:#05x}\nCPU revision\t: {r}\n\n")
        return "".join(block.format(i=i, f=self.features, v=self.variant, p=self.part, r=self.revision)
                       for i in range(n_cores))


CORES: Registry[ArmCore] = Registry("Arm core")
_V82 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
# caches: Pi 3 B+ BCM2837B0 512 KiB L2; Pi 4 BCM2711 1 MiB L2; Snapdragon 835 2 MiB L2 (gold cluster);
# Snapdragon 670 1 MiB L3; Snapdragon 855 / Pi 5 BCM2712 2 MiB L3
CORES.add("cortex-a53", ArmCore("cortex-a53", 0xD03, "fp asimd evtstrm crc32 cpuid",
                                "in-order, dual-issue; 64-bit NEON datapath", 0, 4, llc_kb=512))
CORES.add("cortex-a72", ArmCore("cortex-a72", 0xD08, "fp asimd evtstrm crc32 cpuid",
                                "out-of-order, 3-wide decode; two 128-bit NEON pipes", 0, 3, llc_kb=1024))
CORES.add("cortex-a73", ArmCore("cortex-a73", 0xD09, "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid",
                                "out-of-order, 2-wide decode; two 128-bit NEON pipes", 0, 2, llc_kb=2048,
                                qemu_cpu="cortex-a72"))
CORES.add("cortex-a75", ArmCore("cortex-a75", 0xD0A, _V82, "out-of-order, 3-wide decode; two 128-bit NEON pipes, "
                                "dot product", 2, 1, llc_kb=1024, qemu_cpu="cortex-a76"))
# the A76's calibration device (Pixel 4, Snapdragon 855) is a Snapdragon phone with LPDDR4X like the A75's
# (Pixel 3a, Snapdragon 670)
CORES.add("cortex-a76", ArmCore("cortex-a76", 0xD0B, _V82, "out-of-order, 4-wide decode; two 128-bit NEON pipes, "
                                "dot product", 4, 1, llc_kb=2048, memory_like="cortex-a75"))


def get_core(name: str) -> ArmCore:
    """The core called ``name``; a :class:`TargetError` listing the known cores otherwise."""
    if name not in CORES:
        raise TargetError(f"unknown Arm core '{name}' (edgekd emulates: {', '.join(CORES.names())})",
                          "set the target's core to one of those, or use a host target")
    return CORES.get(name)
