#!/usr/bin/env python3
"""pi0.cpp against the PyTorch eager peer (bench/torch_pi0.py) on the same checkpoint and inputs.

Runs `pi0 bench --json` and torch_pi0.py alternately, --pairs times, so both see the same
machine weather (a shared VM's speed drifts by 10-30% over minutes); reports the median of
each engine's per-run medians per stage, their ratio, and the median of the per-pair ratios of
the totals (each pair ran minutes apart at most, so that one is the steadier figure). Needs
Debian's python3-torch.

  /usr/bin/python3 bench/vs_torch.py --checkpoint DIR [--cameras 3] [--tokens N] [--threads 2] [--pairs 3]
                                    [--torch-dtype bf16|f32] [--precision auto|bf16|f32|int8]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd, env):
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True).stdout
    return json.loads(out[out.index("{"):])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--pi0", default=os.path.join(HERE, "..", "build", "pi0"), help="the pi0 binary")
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=-1, help="valid prompt tokens, the rest padding (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per engine invocation (after one warm-up)")
    ap.add_argument("--pairs", type=int, default=3, help="alternating invocations of each engine")
    ap.add_argument("--torch-dtype", choices=["bf16", "f32"], default="bf16",
                    help="PyTorch's compute type (f32 where the CPU has no fast bf16, e.g. AVX2-only)")
    ap.add_argument("--precision", default="auto", help="pi0.cpp's --precision (default auto)")
    a = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    common = ["--checkpoint", a.checkpoint, "--cameras", str(a.cameras), "--runs", str(a.runs)]
    if a.tokens >= 0:
        common += ["--tokens", str(a.tokens)]
    ours_cmd = [a.pi0, "--threads", str(a.threads), "bench", "--json", "--precision", a.precision] + common
    torch_cmd = [sys.executable, os.path.join(HERE, "torch_pi0.py"), "--threads", str(a.threads),
                 "--dtype", a.torch_dtype] + common
    ours, torch = [], []
    for p in range(a.pairs):
        ours.append(run_json(ours_cmd, env))
        torch.append(run_json(torch_cmd, env))
        print(f"pair {p + 1}/{a.pairs}: pi0.cpp {ours[-1]['total_ms']:.0f} ms, PyTorch {torch[-1]['total_ms']:.0f} ms",
              file=sys.stderr)
    med = lambda runs, f: statistics.median(f(r) for r in runs)
    rows = [("vision", lambda r: r["stages_ms"]["vision"]), ("prefix", lambda r: r["stages_ms"]["prefix"]),
            ("denoise step", lambda r: r["stages_ms"]["denoise_step"]), ("total", lambda r: r["total_ms"])]
    report = {"checkpoint": a.checkpoint, "cameras": a.cameras, "tokens": torch[0]["tokens"], "threads": a.threads,
              "pairs": a.pairs, "torch": torch[0]["impl"], "torch_dtype": a.torch_dtype,
              "precision": ours[0]["precision"],
              "fraction_of_peak": med(ours, lambda r: r["fraction_of_peak"]),
              "peak_rss_bytes": max(r["peak_rss_bytes"] for r in ours), "stages": {}}
    print(f"{'stage':<14} {'pi0.cpp ms':>11} {'PyTorch ms':>11} {'speed-up':>9}")
    for name, f in rows:
        o, t = med(ours, f), med(torch, f)
        report["stages"][name] = {"pi0_cpp_ms": o, "torch_ms": t, "speedup": t / o}
        print(f"{name:<14} {o:>11.1f} {t:>11.1f} {t / o:>8.2f}x")
    pair_ratios = [t["total_ms"] / o["total_ms"] for o, t in zip(ours, torch)]
    report["pair_speedups"] = pair_ratios
    report["median_pair_speedup"] = statistics.median(pair_ratios)
    print(f"per-pair total speed-ups: {', '.join(f'{r:.2f}x' for r in pair_ratios)} "
          f"(median {report['median_pair_speedup']:.2f}x)")
    print(json.dumps(report), file=sys.stderr)


if __name__ == "__main__":
    main()
