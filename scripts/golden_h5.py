"""Writes moetrain checkpoint-format HDF5 files from Python (Note [Checkpoint format] in
include/mt/io/checkpoint.h), so golden test data loads through the same verified reader."""
import zlib

import h5py
import numpy as np

_DTYPES = {np.float32: "f32", np.float64: "f64", np.int32: "i32", np.int64: "i64", np.bool_: "bool"}


def _fold(crc, group, name, entry_crc):
    crc = zlib.crc32(f"{group}/{name}".encode() + b"\0", crc)
    return zlib.crc32(int(entry_crc).to_bytes(4, "little"), crc)


def write_checkpoint(path, tensors, meta=None):
    """tensors: {dotted name: numpy array}; meta: {key: int | float | str}."""
    meta = meta or {}
    entries = []
    with h5py.File(path, "w", libver=("v108", "latest"), track_order=True) as f:
        f.attrs["format"] = np.bytes_("moetrain-checkpoint")
        f.attrs["format_version"] = np.int64(1)
        tg = f.create_group("tensors", track_order=True)
        for name, arr in tensors.items():
            arr = np.ascontiguousarray(arr)
            kind = _DTYPES[arr.dtype.type]
            stored = arr.astype(np.uint8) if kind == "bool" else arr
            ds = tg.create_dataset(name, data=stored)
            crc = zlib.crc32(stored.tobytes())
            ds.attrs["dtype"] = np.bytes_(kind)
            ds.attrs["crc32"] = np.uint32(crc)
            entries.append(("tensors", name, crc))
        mg = f.create_group("meta", track_order=True)
        for key, value in meta.items():
            if isinstance(value, str):
                raw = value.encode() or b"\0"
                ds = mg.create_dataset(key, data=np.array(raw, dtype=h5py.string_dtype("utf-8", len(raw))))
            elif isinstance(value, float):
                raw = np.float64(value).tobytes()
                ds = mg.create_dataset(key, data=np.float64(value))
            else:
                raw = np.int64(value).tobytes()
                ds = mg.create_dataset(key, data=np.int64(value))
            crc = zlib.crc32(raw)
            ds.attrs["crc32"] = np.uint32(crc)
            entries.append(("meta", key, crc))
        total = 0
        for group, name, crc in entries:
            total = _fold(total, group, name, crc)
        f.attrs["complete"] = np.int64(1)
        f.attrs["checksum"] = np.uint32(total)
