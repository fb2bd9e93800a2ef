#!/usr/bin/env python3
"""Our GGUF writer against llama.cpp's own reader (gguf-py): the sample file
of tests/export/gguf_values.h, written by gguf_write_main, read with
gguf.GGUFReader. Its metadata values and types, tensor names, shapes (ggml
order), types and offsets are as written; the f32 tensor holds the formula's
values; the q8_0 tensor's bytes equal gguf-py's own quantization (its
quants.quantize, bit-exact with ggml's reference) of the very float32 values
we quantized, which the file also holds as wave.f32.

  gguf_file_parity.py GGUF_WRITE_MAIN WORK_DIR
"""
import os
import subprocess
import sys

try:
    import numpy as np
    import gguf
    from gguf import GGUFReader, GGMLQuantizationType, GGUFValueType
except ImportError as e:
    print(f"SKIP: gguf-py not importable: {e}")
    sys.exit(77)

writer, work = sys.argv[1], os.path.abspath(sys.argv[2])
os.makedirs(work, exist_ok=True)
path = os.path.join(work, "sample.gguf")
subprocess.run([writer, path], check=True)
reader = GGUFReader(path)
failures = []


def field(name):
    f = reader.fields[name]
    if f.types[0] == GGUFValueType.ARRAY:
        return f.types[1], [f.contents(i) for i in range(len(f.data))]
    return f.types[0], f.contents()


expected = {
    "general.architecture": (GGUFValueType.STRING, "llama"),
    "general.name": (GGUFValueType.STRING, "sample ñ"),
    "test.u32": (GGUFValueType.UINT32, 7),
    "test.i32": (GGUFValueType.INT32, -3),
    "test.u64": (GGUFValueType.UINT64, 1 << 40),
    "test.f32": (GGUFValueType.FLOAT32, 0.25),
    "test.bool": (GGUFValueType.BOOL, True),
    "test.strings": (GGUFValueType.STRING, ["<s>", "▁hola", ""]),
    "test.floats": (GGUFValueType.FLOAT32, [-1.5, 0.0, 2.0]),
    "test.ints": (GGUFValueType.INT32, [1, 6, 3]),
}
for name, want in expected.items():
    got = field(name)
    if got[0] != want[0] or got[1] != want[1]:
        failures.append(f"{name}: {got}, expected {want}")

i = np.arange(15, dtype=np.float32)
ramp = (np.sin(np.float32(0.37) * i) * (1 + np.arange(15) % 7).astype(np.float32)).astype(np.float32)
tensors = {t.name: t for t in reader.tensors}
r, w, wave = tensors["ramp"], tensors["wave"], np.asarray(tensors["wave.f32"].data).reshape(2, 64)
if list(r.shape) != [5, 3] or r.tensor_type != GGMLQuantizationType.F32:
    failures.append(f"ramp: shape {list(r.shape)} type {r.tensor_type!r}")
# Our floats come from C's sinf: numpy's float32 sin agrees within an ulp or so.
if not np.allclose(np.asarray(r.data).reshape(-1), ramp, rtol=2e-7, atol=0):
    failures.append(f"ramp values differ: {np.asarray(r.data).reshape(-1)} vs {ramp}")
if list(w.shape) != [64, 2] or w.tensor_type != GGMLQuantizationType.Q8_0:
    failures.append(f"wave: shape {list(w.shape)} type {w.tensor_type!r}")
# gguf-py quantizes the very floats we quantized (stored beside them as wave.f32).
ours = np.asarray(w.data).view(np.uint8).reshape(-1)
theirs = gguf.quants.quantize(wave, GGMLQuantizationType.Q8_0).view(np.uint8).reshape(-1)
if ours.tobytes() != theirs.tobytes():
    diff = int(np.count_nonzero(ours != theirs))
    failures.append(f"q8_0 bytes differ from gguf-py's quantization in {diff} of {ours.size} bytes")
for t in reader.tensors:
    if t.data_offset % 32:
        failures.append(f"{t.name}: data at byte {t.data_offset}, not 32-aligned")

print({"fields": len(reader.fields), "tensors": len(reader.tensors), "failures": failures})
sys.exit(1 if failures else 0)
