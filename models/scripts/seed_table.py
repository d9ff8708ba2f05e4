"""Per-seed validation and test figures of seed-study.sh's runs, with mean and spread (Markdown).

    python models/scripts/seed_table.py runs/seed-study            # prints the table
    python models/scripts/seed_table.py models/default/eval/seeds --out models/default/eval/seed-study.md

Each seedN folder holds that run's validation-results.json and test-results.json (`haltingvt eval`).
"""

import argparse
import json
import statistics
from pathlib import Path


def row(folder: Path) -> dict:
    val = json.loads((folder / "validation-results.json").read_text())
    test = json.loads((folder / "test-results.json").read_text())
    d = test["default"]
    return {"seed": int(folder.name.removeprefix("seed")), "val": val["default"]["top1"], "test": d["top1"],
            "lo": d["top1_interval"][0], "hi": d["top1_interval"][1], "clips": d["clips"],
            "share": d["gflops"] / test["dense"]["gflops"], "static": d["static_top1"], "dense": test["dense"]["top1"]}


def rows(root: Path) -> list[dict]:
    """One row per finished seed (both splits evaluated), in seed order."""
    found = [row(f) for f in Path(root).glob("seed*") if (f / "test-results.json").exists()]
    return sorted(found, key=lambda r: r["seed"])


def summary(rs: list[dict]) -> dict:
    """Mean, sample sd and range of test top-1 in points, and the seed whose test top-1 is the median."""
    tests = [100 * r["test"] for r in rs]
    median_seed = sorted(rs, key=lambda r: r["test"])[(len(rs) - 1) // 2]["seed"]
    return {"mean": statistics.mean(tests), "sd": statistics.stdev(tests), "lo": min(tests), "hi": max(tests),
            "median_seed": median_seed}


def render(rs: list[dict]) -> str:
    lines = ["| seed | validation top-1 (%) | test top-1 (%, 95% interval) | test clips | % of dense GFLOPs | static clips top-1 (%) | dense top-1 (%) |",
             "|---|---|---|---|---|---|---|"]
    for r in rs:
        lines.append(f"| {r['seed']} | {100 * r['val']:.1f} | {100 * r['test']:.1f} ({100 * r['lo']:.1f}-{100 * r['hi']:.1f}) | "
                     f"{r['clips']} | {100 * r['share']:.0f} | {100 * r['static']:.1f} | {100 * r['dense']:.1f} |")
    if len(rs) > 1:
        s = summary(rs)
        lines += ["", f"Test top-1 over {len(rs)} seeds: mean {s['mean']:.1f}, sd {s['sd']:.1f}, "
                      f"range {s['lo']:.1f}-{s['hi']:.1f}; median seed {s['median_seed']}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default="runs/seed-study", help="folder of seedN result folders")
    ap.add_argument("--out", help="write the table here instead of printing it")
    args = ap.parse_args()
    text = render(rows(Path(args.root)))
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
