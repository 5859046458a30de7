"""Time and peak extra memory of one topology update, per method, each case in a fresh process.

Cases: the paper's 784-1568-1568-1568 MLP at 99% sparsity (SGD momentum, one batch of 32 before the
update; CHTss starts at its schedule's 50% density, so its first update prunes and regrows at that size), and one 100,000 x 100,000 layer at 10 links per neuron. Also ch_scores (CH3-L3n) at 1568²
against the authors' dense four-matmul form of the same formula.

    python -m benchmarks.topology_update [--large]
"""
import argparse
import json
import subprocess
import sys
import textwrap

UPDATE = textwrap.dedent("""
    import json, resource, time, torch
    from torch.nn import functional as F
    from sparsenet.runtime import tune_cpu_allocator
    from sparsenet.evolution import DensitySchedule, Schedule, TopologyEngine, make_method
    from sparsenet.models import MLP
    from sparsenet.sparse import SparseLinear
    from torch import nn
    tune_cpu_allocator()
    torch.manual_seed(0)
    method = make_method({method!r}, **json.loads({overrides!r}))
    if {large}:
        density = 1e-4
        model = nn.Sequential(SparseLinear(100_000, 100_000, density=density))
        x, target = torch.randn(32, 100_000), None
    else:  # a decaying density schedule starts denser (CHTss: 50%)
        density = 0.01
        model = MLP(density=DensitySchedule(density, method.density_schedule).start())
        x, target = torch.randn(32, 784), torch.randint(10, (32,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    engine = TopologyEngine(model, optimizer, method, Schedule(update_interval=1, total_steps=100), density=density)
    out = model(x)
    (F.cross_entropy(out, target) if target is not None else out.square().mean()).backward()
    optimizer.step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    stats = engine.step(1)
    seconds = time.perf_counter() - start
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    print(json.dumps({{"seconds": seconds, "growth": growth, "regrown": stats["regrown"], "nnz": stats["nnz"]}}))
""")

DENSE_VS_BLOCKED = textwrap.dedent("""
    import json, resource, time, torch
    from sparsenet.runtime import tune_cpu_allocator
    from sparsenet.topology import er
    from sparsenet.evolution.linkpred import ch_score_blocks
    tune_cpu_allocator()
    m = n = {size}
    indices = er(m, n, {density}, torch.Generator().manual_seed(0))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if {dense}:
        a = torch.zeros(m, n); a[indices[0], indices[1]] = 1
        c_u, c_v, d_u, d_v = a @ a.t(), a.t() @ a, a.sum(1), a.sum(0)
        e_u = torch.where(c_u > 0, 1 / (d_u[None, :] - c_u).clamp(min=1), torch.zeros(()))
        e_u.fill_diagonal_(0)
        e_v = torch.where(c_v > 0, 1 / (d_v[:, None] - c_v).clamp(min=1), torch.zeros(()))
        e_v.fill_diagonal_(0)
        scores = e_u @ a + a @ e_v
        scores[a > 0] = 0
    else:
        for block in ch_score_blocks(indices, (m, n), "CH3-L3n"):
            pass
    seconds = time.perf_counter() - start
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    print(json.dumps({{"seconds": seconds, "growth": growth}}))
""")

METHODS = [("set", {}), ("rigl", {}), ("mest", {}), ("cht", {}), ("chts", {}),
           ("chts", {"regrowth": "ch2_l3n_soft"}), ("chtss", {})]
LARGE_METHODS = [("set", {}), ("chts", {}), ("chts", {"regrowth": "ch2_l3n_soft"})]


def _run(code: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode:
        return {"error": result.stderr.strip().splitlines()[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def _label(method, overrides):
    return method + "".join(f" {k}={v}" for k, v in overrides.items())


def run(large: bool = False) -> str:
    lines = ["| case | method | seconds | peak extra MiB |", "|---|---|---:|---:|"]
    cases = [("MLP 784-1568³ 99%", m, o, False) for m, o in METHODS]
    cases += [("100k×100k, 10/neuron", m, o, True) for m, o in LARGE_METHODS] if large else []
    for case, method, overrides, is_large in cases:
        r = _run(UPDATE.format(large=is_large, method=method, overrides=json.dumps(overrides)))
        cells = (f"{r['seconds']:.3f} | {r['growth'] / 2**20:.0f}" if "error" not in r else f"failed: {r['error']} |")
        lines.append(f"| {case} | {_label(method, overrides)} | {cells} |")
    lines += ["", "| ch_scores CH3-L3n | seconds | peak extra MiB |", "|---|---:|---:|"]
    sizes = [(1568, 0.01)] + ([(100_000, 1e-4)] if large else [])
    for size, density in sizes:
        for dense in (True, False):
            r = _run(DENSE_VS_BLOCKED.format(size=size, density=density, dense=dense))
            form = "dense four-matmul (authors')" if dense else "blocked sparse (sparsenet)"
            cells = (f"{r['seconds']:.3f} | {r['growth'] / 2**20:.0f}" if "error" not in r
                     else f"cannot run: {r['error'][:60]} |")
            lines.append(f"| {size}², {form} | {cells} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true")
    print(run(parser.parse_args().large))
