#!/usr/bin/env python3
"""PyTorch's SDPA backends on `moetrain bench ops`' attention shapes: causal bf16 forward and backward rates.

Each backend PyTorch offers on this GPU (cuDNN, flash, memory-efficient) runs
F.scaled_dot_product_attention(q, k, v, is_causal=True) on (B, H, T, D) bf16 inputs; the forward and the
backward (torch.autograd.grad of the output against a fixed gradient) are timed apart with CUDA events,
the median of --iters runs after --warmup. FLOPs as tools/bench.cpp counts them: forward 2 B H T^2 D (the
causal half of two GEMMs), backward 2.5x that. Prints a Markdown table and, per shape and direction, a line
`torch-attention: shape=... dir=fwd|bwd best_backend=... best_tflops=...` for scripts/bench-vs-torch.sh.
Usage: bench/torch_attention.py [--iters 30 --warmup 5]
"""
import argparse
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = [(16, 12, 1024, 64), (16, 6, 1024, 128), (8, 16, 2048, 64)]  # (B, H, T, D), as tools/bench.cpp
BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION}


def median_ms(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"# PyTorch {torch.__version__} SDPA on {torch.cuda.get_device_name()}, causal, bf16\n")
    print("| backend | shape | fwd ms | fwd TFLOP/s | bwd ms | bwd TFLOP/s |\n|---|---|---:|---:|---:|---:|")
    summary = []
    for b, h, t, d in SHAPES:
        shape = f"B{b} H{h} T{t} D{d}"
        q, k, v = (torch.randn(b, h, t, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        dout = torch.randn(b, h, t, d, device="cuda", dtype=torch.bfloat16)
        flops = 2.0 * b * h * t * t * d
        best = {"fwd": ("-", 0.0), "bwd": ("-", 0.0)}
        for name, backend in BACKENDS.items():
            try:
                with sdpa_kernel([backend]):
                    fwd_ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                                       args.iters, args.warmup)
                    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                    bwd_ms = median_ms(lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True),
                                       args.iters, args.warmup)
            except RuntimeError as e:  # a backend that does not take these inputs on this GPU
                print(f"| {name} | {shape} | - | - | - | - |  <!-- {str(e).splitlines()[0][:80]} -->")
                continue
            fwd_tf, bwd_tf = flops / fwd_ms / 1e9, 2.5 * flops / bwd_ms / 1e9
            print(f"| {name} | {shape} | {fwd_ms:.3f} | {fwd_tf:.1f} | {bwd_ms:.3f} | {bwd_tf:.1f} |")
            for direction, rate in (("fwd", fwd_tf), ("bwd", bwd_tf)):
                if rate > best[direction][1]:
                    best[direction] = (name, rate)
        for direction, (name, rate) in best.items():
            summary.append(f"torch-attention: shape={shape.replace(' ', '_')} dir={direction} best_backend={name} "
                           f"best_tflops={rate:.1f}")
    print()
    print("\n".join(summary))


if __name__ == "__main__":
    main()
