"""Named metadata entries in a .tflite file (the flatbuffer's ``metadata`` table), e.g. the input contract.

LiteRT ignores entries it does not know; ``edgekd.preprocess`` rides along with the model this way, as it does in
an ONNX file's ``metadata_props``. Uses LiteRT's own flatbuffer tools (no TensorFlow import).
"""

from __future__ import annotations

from pathlib import Path


def add_metadata(path: str | Path, entries: dict[str, str]) -> None:
    """Rewrite ``path`` with ``entries`` added (an entry of the same name is replaced)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model_from_bytearray(bytearray(Path(path).read_bytes()))
    model.metadata = [m for m in (model.metadata or []) if _name(m) not in entries]
    for name, value in entries.items():
        buf = schema.BufferT()
        buf.data = list(value.encode())
        model.buffers.append(buf)
        meta = schema.MetadataT()
        meta.name, meta.buffer = name, len(model.buffers) - 1
        model.metadata.append(meta)
    Path(path).write_bytes(bytes(fb.convert_object_to_bytearray(model)))


def read_metadata(path: str | Path) -> dict[str, str]:
    """Every metadata entry of a .tflite file whose content is text."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model_from_bytearray(bytearray(Path(path).read_bytes()))
    out = {}
    for m in model.metadata or []:
        name = _name(m)
        data = model.buffers[m.buffer].data
        try:
            out[name] = bytes(bytearray(data if data is not None else b"")).decode()
        except UnicodeDecodeError:
            continue
    return out


def _name(meta) -> str:
    """A metadata entry's name (the flatbuffer object API gives bytes)."""
    return meta.name.decode() if isinstance(meta.name, bytes) else str(meta.name)
