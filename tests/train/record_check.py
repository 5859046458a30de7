"""Reproduce the start of a stored run record and compare it line by line (every number but the timings).

    OMP_NUM_THREADS=1 python -m tests.train.record_check RECORD_DIR RECORDS [--data_dir ../shared/data]
        [--out FILE] [--expected FILE]

runs ``cli.py train`` in this process with the record's config.json (its seed; one thread, as the records were
made), stops it after RECORDS metric records (epochs of the MLP, evaluations of the step recipes: the
Multi30k records evaluate every 200 steps), and prints each record's differing fields; exit status 1 on any
difference. The run's schedules are the full run's: it is cut, not shortened. ``--out`` writes the records it
got (a metrics.jsonl); ``--expected`` compares against such a file instead of the record's metrics.jsonl (the
same code before and after a change, where the record itself was made by older kernels)."""
import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import torch

TIMINGS = {"epoch_seconds", "seconds", "update_seconds", "peak_rss_bytes", "valid_seconds"}


class Enough(BaseException):
    """Raised from the tracker once the wanted records are written (not an Exception: nothing catches it)."""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("record")
    parser.add_argument("records", type=int)
    parser.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    parser.add_argument("--out")
    parser.add_argument("--expected")
    args = parser.parse_args()
    torch.set_num_threads(1)
    record = Path(args.record)
    config = json.loads((record / "config.json").read_text())
    expected_file = Path(args.expected) if args.expected else record / "metrics.jsonl"
    expected = [json.loads(line) for line in expected_file.read_text().splitlines()][:args.records]
    import cli
    from sparsenet.train import tracking
    got = []
    original = tracking.Tracker.log

    def log(self, entry, step=None):
        original(self, entry, step)
        got.append(entry)
        if len(got) == args.records:
            raise Enough
    tracking.Tracker.log = log
    with tempfile.TemporaryDirectory() as out:
        options = {**config, "data_dir": args.data_dir, "out_dir": out, "wandb": "off", "quiet": True}
        argv = ["train", f"--model={options.pop('model')}"]
        argv += [f"--{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in options.items()
                 if v is not None]
        try:
            cli.main(argv)
        except Enough:
            pass
    if args.out:
        Path(args.out).write_text("".join(json.dumps(entry) + "\n" for entry in got))
    differences = 0
    for number, (want, have) in enumerate(zip(expected, got), 1):
        fields = sorted((set(want) & set(have)) - TIMINGS)
        bad = [f"{k}: record {want[k]!r}, now {have[k]!r}" for k in fields if not _same(want[k], have[k])]
        differences += len(bad)
        print(f"record {number}: {len(fields) - len(bad)}/{len(fields)} fields equal" + "".join(
            f"\n  {line}" for line in bad))
    if len(got) < len(expected):
        print(f"only {len(got)} records written, {len(expected)} wanted")
        differences += 1
    return 1 if differences else 0


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


if __name__ == "__main__":
    sys.exit(main())
