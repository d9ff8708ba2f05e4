"""Per-seed validation and test figures of seed-study.sh's runs, with mean and spread (Markdown)."""

import json
import statistics
import sys
from pathlib import Path


def row(folder: Path) -> dict:
    val = json.loads((folder / "validation-results.json").read_text())
    test = json.loads((folder / "test-results.json").read_text())
    d = test["default"]
    return {"seed": folder.name.removeprefix("seed"), "val": val["default"]["top1"], "test": d["top1"],
            "lo": d["top1_interval"][0], "hi": d["top1_interval"][1], "clips": d["clips"],
            "share": d["gflops"] / test["dense"]["gflops"], "static": d["static_top1"], "dense": test["dense"]["top1"]}


def main(root: str) -> None:
    rows = [row(f) for f in sorted(Path(root).glob("seed*")) if (f / "test-results.json").exists()]
    print("| seed | validation top-1 | test top-1 (95% interval) | test clips | % of dense GFLOPs | static clips | dense top-1 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {100 * r['val']:.1f} | {100 * r['test']:.1f} ({100 * r['lo']:.1f}-{100 * r['hi']:.1f}) | "
              f"{r['clips']} | {100 * r['share']:.0f} | {100 * r['static']:.1f} | {100 * r['dense']:.1f} |")
    if len(rows) > 1:
        tests = [100 * r["test"] for r in rows]
        print(f"\nTest top-1 over {len(rows)} seeds: mean {statistics.mean(tests):.1f}, "
              f"sd {statistics.stdev(tests):.1f}, range {min(tests):.1f}-{max(tests):.1f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/seed-study")
