"""Initialisation time and peak memory per initialiser, each case in a fresh process.

    python -m benchmarks.topology_init [--large]   # --large adds 1,000,000 x 1,000,000 at 10 links/neuron
"""
import argparse
import json
import subprocess
import sys
import textwrap

CASE = textwrap.dedent("""
    import json, resource, time, torch
    from sparsenet.topology import make_topology
    options = json.loads({options!r})
    if {init!r} == "csti":
        options["features"] = torch.randn(2000, {in_features}, generator=torch.Generator().manual_seed(0))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    indices = make_topology({init!r}, {out_features}, {in_features}, {density}, torch.Generator().manual_seed(0),
                            **options)
    seconds = time.perf_counter() - start
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    print(json.dumps({{"nnz": indices.shape[1], "seconds": seconds, "peak_growth_bytes": growth}}))
""")

CASES = [(init, options, 1568, 1568, 0.01) for init, options in
         [("er", {}), ("bsw", {"beta": 0.25}), ("bsf", {}), ("brf", {"r": 0.25}), ("csti", {})]]
LARGE = [(init, options, 10**6, 10**6, 1e-5) for init, options in [("er", {}), ("bsw", {"beta": 0.25})]]


def measure(init, options, out_features, in_features, density) -> dict:
    code = CASE.format(init=init, options=json.dumps(options), out_features=out_features, in_features=in_features,
                       density=density)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(large: bool = False) -> str:
    lines = ["| init | out×in | density | nnz | seconds | peak memory growth MiB |", "|---|---|---:|---:|---:|---:|"]
    for init, options, out_f, in_f, density in CASES + (LARGE if large else []):
        r = measure(init, options, out_f, in_f, density)
        label = init + "".join(f" {k}={v}" for k, v in options.items())
        lines.append(f"| {label} | {out_f}×{in_f} | {density:g} | {r['nnz']:,} | {r['seconds']:.3f} | "
                     f"{r['peak_growth_bytes'] / 2**20:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true")
    print(run(parser.parse_args().large))
