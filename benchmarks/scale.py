"""How the MLP recipe's cost grows with width: seconds per training step, per epoch (extrapolated) and per
topology update, and peak RSS, for three hidden layers of H neurons at 10 links per neuron, each row in a
fresh process; then the least-squares growth exponent of each cost against the number of links.

Rows run the recipe's own pieces (``build_config``, the model, optimizer and engine of ``train``) on MNIST:
``steps`` SGD steps of batch 32 (the first two not timed), then the topology update that ends epoch 1
(of 2: a run's last epoch has none).
``chts`` regrows by the recipe's default CH3-L3p-soft, ``chts-ch2`` by the node-based CH2-L3n-soft; a row
whose update is refused (CH3-L3p's path factors grow with degree cubed) shows the reason. Every row starts
from the same ER topology (SET's init): the MLP's default CSTI tiles a 784² correlation block, and at these
widths that links only ~5% of the hidden neurons (5,416 of 100,000), with hubs of degree ~380.

    python -m benchmarks.scale --sizes 10000 30000 100000 300000 1000000 --steps 20 --methods set chts chts-ch2
"""
import argparse
import json
import math
import subprocess
import sys
import textwrap

from benchmarks.timing import cpu_model

METHODS = {"set": {"method": "set"}, "chts": {"method": "chts", "init": "er"},
           "chts-ch2": {"method": "chts", "regrowth": "ch2_l3n_soft", "init": "er"}}

ROW = textwrap.dedent("""
    import json, resource, time, torch
    from torch.nn import functional as F
    from sparsenet.runtime import tune_cpu_allocator
    from sparsenet.data import load_vision
    from sparsenet.train.classify import build_config, evaluation_chunk, _build, _links
    from sparsenet.train.memory_plan import plan_mlp
    tune_cpu_allocator()
    torch.manual_seed(0)
    width = {width}
    hidden = (width - 2 * (width // 3), width // 3, width // 3)
    config = build_config(dataset="mnist", hidden=hidden, links_per_neuron=10, epochs=2, data_dir={data_dir!r},
                          wandb="off", quiet=True, **json.loads({options!r}))
    data = load_vision("mnist", config.data_dir, False)
    plan = plan_mlp(config.layer_sizes(), list(map(max, config.start_densities(), config.final_densities())),
                    config.batch_size, evaluation_chunk(config.hidden), 1, 0,
                    link_prediction=config.link_prediction())
    model, optimizer, scheduler, engine, steps_per_epoch = _build(config, data, torch.Generator().manual_seed(0))
    order = torch.randperm(data.train_x.shape[0], generator=torch.Generator().manual_seed(1))
    times = []
    for b in range({steps}):
        start = time.perf_counter()
        index = order[b * config.batch_size:(b + 1) * config.batch_size]
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(data.train_x[index]), data.train_y[index]).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    step = sorted(times[2:])[len(times[2:]) // 2]
    row = dict(width=width, hidden=list(hidden), links=_links(model), seconds_per_step=step,
               seconds_per_epoch=step * steps_per_epoch, plan_gib=plan.total / 2**30)
    start = time.perf_counter()
    try:
        stats = engine.step(steps_per_epoch * config.update_interval)
        row.update(update_seconds=time.perf_counter() - start, regrown=stats["regrown"])
    except ValueError as error:
        row.update(update_seconds=None, refused=str(error))
    row["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(row))
""")


def growth_exponent(sizes: list[float], costs: list[float]) -> float:
    """Least-squares slope of log(cost) against log(size): cost ∝ size^exponent."""
    if len(sizes) < 2:
        raise ValueError("a growth exponent needs at least two rows")
    xs, ys = [math.log(s) for s in sizes], [math.log(c) for c in costs]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)


def measure(width: int, method: str, steps: int, data_dir: str) -> dict:
    """One row, measured in a fresh Python process (its peak RSS is the row's alone)."""
    code = ROW.format(width=width, steps=steps, data_dir=data_dir, options=json.dumps(METHODS[method]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or [f"killed by signal {-done.returncode}" if done.returncode < 0
                                                     else f"exit code {done.returncode}"])[-1]
        return dict(width=width, method=method, failed=last)
    return dict(method=method, **json.loads(done.stdout.strip().splitlines()[-1]))


def table(rows: list[dict]) -> str:
    """The rows as a markdown table, then each method's growth exponents against the number of links."""
    lines = ["| method | hidden neurons | links | s/step | s/epoch | update s | peak RSS GiB | plan GiB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "failed" in r:
            lines.append(f"| {r['method']} | {r['width']:,} | failed: {r['failed']} | | | | | |")
            continue
        update = f"{r['update_seconds']:.1f}" if r["update_seconds"] is not None else f"refused: {r['refused']}"
        lines.append(f"| {r['method']} | {r['width']:,} | {r['links']:,} | {r['seconds_per_step']:.3f} | "
                     f"{r['seconds_per_epoch']:.0f} | {update} | {r['peak_rss_gib']:.2f} | {r['plan_gib']:.2f} |")
    lines.append("")
    for method in dict.fromkeys(r["method"] for r in rows):
        done = [r for r in rows if r["method"] == method and "failed" not in r]
        if len(done) < 2:
            continue
        links = [r["links"] for r in done]
        parts = [f"step time {growth_exponent(links, [r['seconds_per_step'] for r in done]):.2f}",
                 f"peak RSS {growth_exponent(links, [r['peak_rss_gib'] for r in done]):.2f}"]
        updated = [r for r in done if r["update_seconds"]]
        if len(updated) >= 2:
            parts.append("update time "
                         f"{growth_exponent([r['links'] for r in updated], [r['update_seconds'] for r in updated]):.2f}")
        lines.append(f"- {method}: growth exponents against links: " + ", ".join(parts))
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000, 300_000, 1_000_000],
                        help="total hidden neurons (three layers, the first takes the remainder)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per row (the first two not timed)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS),
                        help="set, chts (CH3-L3p-soft) and chts-ch2 (CH2-L3n-soft)")
    parser.add_argument("--data_dir", default="../shared/data", help="folder holding mnist/")
    parser.add_argument("--json", help="also append each row as one JSON line to this file")
    args = parser.parse_args(argv)
    if args.steps < 3:
        parser.error(f"--steps must be at least 3 (two untimed), got {args.steps}")
    if min(args.sizes) < 3:
        parser.error(f"--sizes must be at least 3 neurons (three layers), got {min(args.sizes)}")
    import torch
    print(f"CPU: {cpu_model()}; torch {torch.__version__}; {torch.get_num_threads()} threads", flush=True)
    rows = []
    for width in args.sizes:
        for method in args.methods:
            rows.append(measure(width, method, args.steps, args.data_dir))
            print(json.dumps(rows[-1]), flush=True)
            if args.json:
                with open(args.json, "a") as out:
                    out.write(json.dumps(rows[-1]) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
