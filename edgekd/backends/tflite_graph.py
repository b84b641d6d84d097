"""Read a ``.tflite`` file's operators and tensor types (without running it) and say what precision it is.

Uses the TFLite flatbuffer schema bundled with Vela (``ethosu.vela.tflite``), imported inside the function.
The precision matters for an NPU target: Vela accepts float and dynamic-range models and compiles them
with exit 0, but the Ethos-U then runs none of their operators (TOOLCHAIN.md), so edgekd refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import BenchError

INTEGER_TYPES = ("INT8", "UINT8", "INT16")  # quantized activations, what an Ethos-U computes in
# precision kinds: the first three carry no integer activations, so an Ethos-U NPU can run nothing of them
NO_NPU_KINDS = {"float": "float (fp32) model", "fp16": "float16 model",
                "dynamic-range": "dynamic-range quantized model (int8 weights, float activations)"}


@dataclass(frozen=True)
class TfliteGraph:
    """Operators of the first subgraph and the types of its tensors."""

    ops: tuple[tuple[str, str, str], ...]  # (TFLite builtin name, first output tensor name, its type)
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]
    tensor_types: frozenset[str]  # every tensor type present (weights included)

    @property
    def kind(self) -> str:
        """'full-int8' (integer compute and integer I/O), 'int8-float-io' (integer compute but some float
        tensors, e.g. float input/output around QUANTIZE/DEQUANTIZE, which Vela leaves to the CPU), or one of
        ``NO_NPU_KINDS`` (no quantized activation at all: nothing for the NPU)."""
        if not any(t in INTEGER_TYPES for _op, _name, t in self.ops):
            if "INT8" in self.tensor_types or "UINT8" in self.tensor_types:
                return "dynamic-range"
            return "fp16" if "FLOAT16" in self.tensor_types else "float"
        io = self.input_types + self.output_types
        floats = any(t.startswith("FLOAT") for _op, _name, t in self.ops)
        return "full-int8" if all(t in (*INTEGER_TYPES, "INT32") for t in io) and not floats else "int8-float-io"

    def op_of(self, tensor_name: str) -> str:
        """The TFLite builtin that writes ``tensor_name`` ('' when no operator does)."""
        return next((op for op, name, _t in self.ops if name == tensor_name), "")


def read_graph(path: str | Path) -> TfliteGraph:
    """Parse ``path``; an unreadable file is a one-line :class:`BenchError`."""
    from ethosu.vela.tflite.BuiltinOperator import BuiltinOperator
    from ethosu.vela.tflite.Model import Model
    from ethosu.vela.tflite.TensorType import TensorType

    ops_by_code = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k for k, v in vars(TensorType).items() if not k.startswith("_")}
    p = Path(path)
    try:
        buf = p.read_bytes()
        model = Model.GetRootAsModel(buf, 0)
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraph")
        sg = model.Subgraphs(0)

        def ttype(i: int) -> str:
            return types.get(sg.Tensors(i).Type(), "UNKNOWN")

        ops = []
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            name = ops_by_code.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
            out = op.Outputs(0) if op.OutputsLength() else -1
            ops.append((name, sg.Tensors(out).Name().decode() if out >= 0 else "", ttype(out) if out >= 0 else ""))
        return TfliteGraph(ops=tuple(ops), input_types=tuple(ttype(sg.Inputs(i)) for i in range(sg.InputsLength())),
                           output_types=tuple(ttype(sg.Outputs(i)) for i in range(sg.OutputsLength())),
                           tensor_types=frozenset(ttype(i) for i in range(sg.TensorsLength())))
    except OSError as e:
        raise BenchError(f"cannot read {p} ({e})", "check the path") from None
    except Exception as e:  # the flatbuffer reader raises assorted errors on a file that is not TFLite
        raise BenchError(f"{p} is not a readable TFLite model ({type(e).__name__}: {str(e)[:120]})",
                         "pass a .tflite file written by `edgekd export --format tflite`") from None
