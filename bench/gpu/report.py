"""Writes bench/gpu-results.md from what scripts/gpu-check.sh collected: per model the Node half's
JSON (bench/gpu/check.ts) and the PyTorch half's (bench/gpu/torch_side.py), plus machine facts.

  report.py --facts facts.json --node a.json [--node b.json] --torch a-torch.json [...] --out FILE
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def parity_rows(items: list[dict]) -> list[str]:
    return [f"| {model} | {side} | {c['against']} | {c['logits_rel']:.1e} | {c['token_rows_differing']} | {c['stop_patches_differing']} | "
            f"{'ok' if c['ok'] else '**FAILED**'} |" for model, side, c in items]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench/gpu/report.py")
    ap.add_argument("--facts", required=True)
    ap.add_argument("--node", action="append", default=[])
    ap.add_argument("--torch", action="append", default=[])
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    facts = json.loads(Path(a.facts).read_text())
    nodes = [json.loads(Path(p).read_text()) for p in a.node]
    torches = {t["model"]: t for t in (json.loads(Path(p).read_text().strip().splitlines()[-1]) for p in a.torch)}

    lines = ["# GPU check: the serving runtime (onnxruntime-node) on a GPU, beside the toolkit's PyTorch paths", "",
             f"Written by `scripts/gpu-check.sh` ({facts.get('mode', '?')} mode) on {facts.get('date', '?')}. "
             "How to run it and what each figure means: docs/gpu.md.", "", "## Machine", "", "| | |", "| --- | --- |"]
    for key, value in facts.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        if key not in ("mode", "date"):
            lines.append(f"| {key} | {value} |")
    if nodes:
        n0 = nodes[0]
        lines += [f"| Node | {n0['node']} |", f"| onnxruntime-node | {n0['onnxruntime_node']} |", f"| CPU | {n0['cpu']} × {n0['cores']} |"]
    for t in list(torches.values())[:1]:
        lines += [f"| PyTorch | {t['facts']['torch']} on {t['facts'].get('gpu', t['facts']['device'])} |"]

    lines += ["", "## Parity", "",
              "Logits: largest difference relative to the largest reference logit; token rows: videos whose per-layer "
              "active-token counts differ; stop patches: patches whose stop layer differs (against golden answers: videos "
              "whose stop-layer sum differs).", "",
              "| model | side | against | logits rel | token rows | stop patches | |", "| --- | --- | --- | --- | --- | --- | --- |"]
    items = []
    for n in nodes:
        side = f"Node, {n['session_provider']}" + ("" if n["session_provider"] == n["provider"] else f" (asked {n['provider']})")
        items += [(n["model"]["name"], side, c) for c in n.get("parity", [])]
        t = torches.get(n["model"]["name"])
        if t:
            items += [(n["model"]["name"], f"PyTorch reference, {t['facts']['device']}", c) for c in t["parity"]]
    lines += parity_rows(items)

    lines += ["", "## Where ORT placed the graph", "",
              "From ORT's profiler on the provider's session (batch 1, default knobs): nodes that ran per provider, kernel time "
              "per run, and host↔device copies (Memcpy kernels) per run.", "",
              "| model | provider | nodes | kernel ms/run | ops |", "| --- | --- | --- | --- | --- |"]
    for n in nodes:
        p = n.get("placement")
        if not p:
            continue
        for prov, v in p["providers"].items():
            ops = ", ".join(f"{op} {c}" for op, c in sorted(v["ops"].items(), key=lambda kv: -kv[1]))
            lines.append(f"| {n['model']['name']} | {prov} | {v['nodes']} | {fmt(v['kernel_ms_per_run'])} | {ops} |")
        lines.append(f"| {n['model']['name']} | Memcpy per run | {fmt(p['memcpy_kernels_per_run'], 0)} | | |")

    lines += ["", "## Dense vs halting", "",
              "Milliseconds per clip (median over the repetitions of a batch, divided by the batch size). Dense: keep 1, halting "
              "off; halting: the model's default knobs. ORT runs one graph for both, which cuts the token axis to the live "
              "tokens at every joint layer; PyTorch's reference path computes every token at every layer, its compact "
              "path removes halted tokens.", "",
              "| model | batch | runtime | dense ms/clip | halting ms/clip | halting / dense | GFLOPs dense → halting |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for n in nodes:
        name = n["model"]["name"]
        rows = {(t["batch"], t["setting"]): t for t in n.get("timings", [])}
        for b in sorted({k[0] for k in rows}):
            d, h = rows.get((b, "dense")), rows.get((b, "halting"))
            if d and h:
                lines.append(f"| {name} | {b} | ORT {n['session_provider']} | {fmt(d['ms_per_clip'])} | {fmt(h['ms_per_clip'])} | "
                             f"{fmt(h['ms_per_clip'] / d['ms_per_clip'])} | {fmt(d['gflops_per_clip'])} → {fmt(h['gflops_per_clip'])} |")
        t = torches.get(name)
        if t:
            trows = {(r["batch"], r["setting"], r["path"]): r for r in t["timings"]}
            for b in sorted({k[0] for k in trows}):
                for path in ("reference", "compact"):
                    d, h = trows.get((b, "dense", path)), trows.get((b, "halting", path))
                    if d and h:
                        lines.append(f"| {name} | {b} | PyTorch {path}, {t['facts']['device']} | {fmt(d['ms_per_clip'])} | "
                                     f"{fmt(h['ms_per_clip'])} | {fmt(h['ms_per_clip'] / d['ms_per_clip'])} | |")
    for n in nodes:
        if n.get("error"):
            lines += ["", f"Error ({n['model']['name']}, Node on {n['session_provider']}): {n['error']}"]
        if n.get("warnings"):
            lines += ["", f"Warnings ({n['model']['name']}): " + "; ".join(n["warnings"])]
    ok = all(n.get("ok") for n in nodes) and all(t.get("ok") for t in torches.values())
    lines += ["", f"Verdict: {'every parity check passed' if ok else 'a parity check FAILED (see above)'}.", ""]
    Path(a.out).write_text("\n".join(lines))
    print(f"wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
