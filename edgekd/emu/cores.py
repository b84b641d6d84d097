"""The Arm cores edgekd can emulate, as data: QEMU's CPU model and what the guest's /proc/cpuinfo says.

XNNPACK and onnxruntime choose their kernels from the CPU they detect (the MIDR part number and the feature
flags in /proc/cpuinfo, and the HWCAPs QEMU reports for ``-cpu``), so both must describe the same core.
Feature lists follow the Linux kernel's names for what each core implements (the Pi 4's BCM2711 has no
crypto extensions; the Cortex-A76 adds the dot-product instructions, ``asimddp``, that int8 kernels use).
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

    def cpuinfo(self, n_cores: int) -> str:
        """The text of an ARM64 Linux /proc/cpuinfo for ``n_cores`` of this core."""
        block = ("processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {f}\nCPU implementer\t: 0x41\n"
                 "CPU architecture: 8\nCPU variant\t: {v:#x}\nCPU part\t: {p:#05x}\nCPU revision\t: {r}\n\n")
        return "".join(block.format(i=i, f=self.features, v=self.variant, p=self.part, r=self.revision)
                       for i in range(n_cores))


CORES: Registry[ArmCore] = Registry("Arm core")
CORES.add("cortex-a53", ArmCore("cortex-a53", 0xD03, "fp asimd evtstrm crc32 cpuid",
                                "in-order, dual-issue; 64-bit NEON datapath", 0, 4))
CORES.add("cortex-a72", ArmCore("cortex-a72", 0xD08, "fp asimd evtstrm crc32 cpuid",
                                "out-of-order, 3-wide decode; two 128-bit NEON pipes", 0, 3))
CORES.add("cortex-a76", ArmCore("cortex-a76", 0xD0B,
                                "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm "
                                "lrcpc dcpop asimddp", "out-of-order, 4-wide decode; two 128-bit NEON pipes, dot "
                                "product", 4, 1))


def get_core(name: str) -> ArmCore:
    """The core called ``name``; a :class:`TargetError` listing the known cores otherwise."""
    if name not in CORES:
        raise TargetError(f"unknown Arm core '{name}' (edgekd emulates: {', '.join(CORES.names())})",
                          "set the target's core to one of those, or use a host target")
    return CORES.get(name)
