"""Matrix-product throughput for the yardstick VAE's and M2's layer shapes, fp32 and bf16.

    .venv/bin/python benchmarks/gemm_throughput.py

The ceiling for any training loop here: a 784-400-20 VAE epoch over 60,000 images needs about
197 GFLOP of matrix products (forward, and backward without the input's gradient). M2 (784-500-50,
one hidden layer, the issue's ≤ 5 s epoch) sums its bound over ten labels per unlabeled image, so its
decoder multiplies 10 × 128 rows at once (plus the labeled draw): its FLOP per epoch are counted
here by train_speed.py's count (torch's FlopCounterMode), and divided by the fastest measured rate.
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
M2_SHAPES = {  # the decoder's output layer over 10 labels × 128 images: forward and both gradients
    "M2: h @ W_out (forward, 10 labels)": (1280, 500, 784),
    "M2: hᵀ @ d_out (weight gradient)": (500, 1280, 784),
    "M2: d_out @ W_outᵀ (input gradient)": (1280, 784, 500),
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
    m2 = {dtype: [] for dtype in ("fp32", "bf16")}
    for name, (m, k, n) in M2_SHAPES.items():
        a, b = gflops(m, k, n, torch.float32, 50), gflops(m, k, n, torch.bfloat16, 50)
        m2["fp32"].append(a)
        m2["bf16"].append(b)
        print(f"| {name} | {m}×{k}×{n} | {a:.0f} | {b:.0f} |", flush=True)
    print(f"\n{YARDSTICK_GFLOP:.0f} GFLOP per yardstick epoch at the median fp32 rate: "
          f"{YARDSTICK_GFLOP / statistics.median(fp32):.2f} s of matrix products alone")
    m2_gflop = m2_epoch_gflop()
    for dtype, rates in m2.items():
        print(f"{m2_gflop:,.0f} GFLOP per M2 epoch (50,000 images, batch 128 + a labeled draw of 100) at the "
              f"fastest {dtype} rate above ({max(rates):.0f} GFLOP/s): {m2_gflop / max(rates):.1f} s of matrix "
              "products alone")


def m2_epoch_gflop() -> float:
    """M2's matrix-product GFLOP per epoch over the 50k training images: train_speed.py's count of one
    step (batch 128 plus the labeled draw) times the steps of an epoch."""
    from train_speed import ROWS, step_flops  # this folder is on sys.path when run as a script

    from genae.data import load_mnist

    name, kw, n = ROWS["m2"]
    return step_flops(name, kw, load_mnist()) * -(-n // 128) / 1e9


if __name__ == "__main__":
    main()
