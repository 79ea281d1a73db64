#!/usr/bin/python3
"""Writes tests/fixtures/torch_small.pth with real torch.save, and torch_small.json with the
expected contents (an independent reference for tests/unit/test_pth.cpp).

Run with the Debian torch:  /usr/bin/python3 tests/reference/make_pth_fixtures.py
The .pth covers: bf16, f16, f32, f64, i32, i64, u8 storages; a transposed view (strides (1, rows));
two tensors sharing one storage at different offsets; a 0-d tensor; an OrderedDict carrying a
_metadata attribute (a real nn.Module state_dict); a '_forward_module.'-prefixed key.
"""
import collections
import json
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures")


def main():
    torch.manual_seed(1234)
    # A real module state dict: an OrderedDict with a _metadata attribute.
    lin = torch.nn.Linear(4, 3)
    sd = lin.state_dict()
    assert hasattr(sd, "_metadata")

    sd["bf16"] = torch.randn(2, 5).to(torch.bfloat16)
    sd["f16"] = torch.randn(3, 4).to(torch.float16)
    sd["f32"] = torch.randn(7)
    sd["f64"] = torch.randn(2, 2, 3, dtype=torch.float64)
    sd["i32"] = torch.tensor([-5, 0, 7, 2**31 - 1], dtype=torch.int32)
    sd["i64"] = torch.tensor([[-(2**40), 3], [4, 2**40]], dtype=torch.int64)
    sd["u8"] = torch.tensor([0, 1, 128, 255], dtype=torch.uint8)
    m = torch.randn(3, 5)
    sd["transposed"] = m.t()  # shape (5, 3), stride (1, 5)
    assert sd["transposed"].stride() == (1, 5)
    base = torch.arange(20, dtype=torch.float32) * 0.5
    sd["shared_a"] = base[2:8].view(2, 3)  # offset 2
    sd["shared_b"] = base[10:20:3]         # offset 10, stride 3
    sd["scalar"] = torch.tensor(-2.25)
    sd["_forward_module.head.weight"] = torch.randn(2, 3).to(torch.bfloat16)

    path = os.path.join(OUT, "torch_small.pth")
    torch.save(sd, path)

    expected = {}
    for k, v in sd.items():
        name = k[len("_forward_module."):] if k.startswith("_forward_module.") else k
        expected[name] = {
            "dtype": str(v.dtype).replace("torch.", ""),
            "shape": list(v.shape),
            "stride": list(v.stride()),
            "offset": v.storage_offset(),
            "values": v.double().flatten().tolist(),
        }
    meta = {"torch_version": torch.__version__, "shared": [["shared_a", "shared_b"]],
            "tensors": expected}
    with open(os.path.join(OUT, "torch_small.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
