"""Matrix-product throughput for the yardstick VAE's layer shapes (batch 128), fp32 and bf16.

    .venv/bin/python benchmarks/gemm_throughput.py

The ceiling for any training loop here: a 784-400-20 VAE epoch over 60,000 images needs about
197 GFLOP of matrix products (forward, and backward without the input's gradient).
"""

from __future__ import annotations

import platform
import statistics
import time

import torch

from genae.runtime import configure_process

SHAPES = {  # (m, k, n): (m×k) @ (k×n)
    "x @ W1 (forward, first layer)": (128, 784, 400),
    "h @ W4 (forward, last layer)": (128, 400, 784),
    "xᵀ @ dh (weight gradient)": (784, 128, 400),
}
YARDSTICK_GFLOP = 197.0


def gflops(m: int, k: int, n: int, dtype: torch.dtype, repeats: int = 300) -> float:
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(20):
        a @ b
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        runs.append(2 * m * k * n * repeats / (time.perf_counter() - start) / 1e9)
    return statistics.median(runs)


def main() -> None:
    configure_process()
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; median of 5 runs of 300 products\n")
    print("| product | shape | fp32 GFLOP/s | bf16 GFLOP/s |")
    print("|---|---|---|---|")
    fp32 = []
    for name, (m, k, n) in SHAPES.items():
        a, b = gflops(m, k, n, torch.float32), gflops(m, k, n, torch.bfloat16)
        fp32.append(a)
        print(f"| {name} | {m}×{k}×{n} | {a:.0f} | {b:.0f} |", flush=True)
    print(f"\n{YARDSTICK_GFLOP:.0f} GFLOP per yardstick epoch at the median fp32 rate: "
          f"{YARDSTICK_GFLOP / statistics.median(fp32):.2f} s of matrix products alone")


if __name__ == "__main__":
    main()
