#!/usr/bin/env python3
"""onnxruntime alone: `sess.run` timed on already-preprocessed inputs.

Run by `cargo xtask bench predict` (tests/benches/predict.rs) to set onnxruntime
against tract on the very same model inputs, with no image decoding or
preprocessing on either side. The session is made exactly as
../shared/bench/baseline_predict.py makes it (CPU provider, one intra-op and one
inter-op thread), so this is the inference share of that baseline.

Usage:
  ort_alone.py MODEL.onnx INPUTS.f32 [--repeat N] [--threads T]

INPUTS.f32 holds N x 784 little-endian float32 values (28x28 row-major per input).
Prints one JSON object: per-run latency in microseconds (p50, p90, p99, mean),
onnxruntime's version, and per input the argmax digit and the raw logits of the
first pass, so the caller can compare them with tract's.
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("inputs")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]

    raw = np.fromfile(args.inputs, dtype="<f4")
    if raw.size == 0 or raw.size % 784:
        print(f"{args.inputs}: {raw.size} floats is not a whole number of 28x28 inputs", file=sys.stderr)
        return 2
    # Same shapes as the baseline: the model's declared rank decides, batch 1 each.
    rank = len(inp.shape)
    shape = (1, 784) if rank == 2 else (1, 1, 28, 28)
    xs = [np.ascontiguousarray(x.reshape(shape)) for x in raw.reshape(-1, 784)]

    def run(x):
        return sess.run(None, {inp.name: x})[0]

    first = [run(x)[0] for x in xs]  # also the warm-up
    lat = []
    for _ in range(args.repeat):
        for x in xs:
            s = time.perf_counter()
            run(x)
            lat.append((time.perf_counter() - s) * 1e6)
    lat.sort()

    def pct(q):
        # The baseline's percentile rule, so the two scripts' figures compare.
        return lat[min(len(lat) - 1, int(q * len(lat)))]

    print(json.dumps({
        "runtime": f"python {sys.version.split()[0]}, onnxruntime {ort.__version__}, numpy {np.__version__}",
        "requests": len(lat),
        "latency_us": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "mean": statistics.fmean(lat)},
        "digits": [int(np.argmax(o)) for o in first],
        "logits": [[float(v) for v in np.ravel(o)] for o in first],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
