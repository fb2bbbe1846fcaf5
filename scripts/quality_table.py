#!/usr/bin/env python3
"""Tables of scripts/bench-quality.sh's runs: the figures `synth train --report-json` wrote, test split
first (the reported figure), the validation split beside it, the machine below."""
import json
import os
import platform
import sys


def f(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


def get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def main(out):
    names = sorted(n[:-5] for n in os.listdir(out) if n.endswith(".json"))
    if not names:
        sys.exit(f"quality_table: no runs in {out}")
    print("Test split (held-out products no decision read): Recall@10 on held-out pairs; wish precision@10 "
          "on the headline wishes beside its ceiling; a shopper's words apart; the judge.\n")
    print("| run | test gallery | R@10 GAN / composition / head | wish P@10 GAN / composition / head (ceiling) "
          "| share of ceiling GAN / composition | text only GAN / composition / head (ceiling) "
          "| templates' words GAN / composition / text only | a shopper's words GAN / composition / text only | judge reads the wish (reference / text only) | validation wish P@10 GAN |")
    print("| --- | ---: | --- | --- | --- | --- | --- | --- | --- | ---: |")
    judge_rows = {}
    for n in names:
        d = json.load(open(os.path.join(out, n + ".json")))
        t = d.get("test") or {}
        v = d.get("val") or {}
        r = lambda m: get(t, "recall", m, "10")
        w = t.get("wishes") or {}
        p = lambda m, g=w: get(g, "precision_at_10", m)
        cw, ct = get(w, "ceiling_at_10", "with_image"), get(w, "ceiling_at_10", "text_only")
        share = lambda m: (p(m) / cw) if (p(m) is not None and cw) else None
        u = w.get("unseen_words") or {}
        sw = w.get("seen_words") or {}
        print(f"| {n} | {get(w, 'gallery') or '-'} | {f(r('gan'))} / {f(r('composition'))} / {f(r('head'))} "
              f"| {f(p('gan'))} / {f(p('composition'))} / {f(p('head'))} ({f(cw)}) "
              f"| {f(share('gan'))} / {f(share('composition'))} "
              f"| {f(p('gan_text_only'))} / {f(p('text_only'))} / {f(p('head_text_only'))} ({f(ct)}) "
              f"| {f(p('gan', sw))} / {f(p('composition', sw))} / {f(p('text_only', sw))} "
              f"| {f(p('gan', u))} / {f(p('composition', u))} / {f(p('text_only', u))} "
              f"| {f(get(w, 'fidelity', 'with_image'))} / {f(get(w, 'fidelity', 'text_only'))} "
              f"| {f(get(v, 'wishes', 'precision_at_10', 'gan'))} |")
        for a, x in (get(w, "fidelity", "by_attribute") or {}).items():
            judge_rows.setdefault(n, []).append((a, x.get("read"), x.get("judge_accuracy")))
    print("\nThe judge per attribute, test split: share of the GAN's synthesized images (reference and text "
          "only) that show the asked value, beside the judge's own accuracy on held-out real images.\n")
    print("| run | " + " | ".join(["attribute: synthesized / real"]) + " |")
    print("| --- | --- |")
    for n, rows in judge_rows.items():
        print(f"| {n} | " + "; ".join(f"{a} {f(s, 2)} / {f(acc, 2)}" for a, s, acc in rows) + " |")
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"\nmachine: {cpu or platform.processor()}, {os.cpu_count()} cores; {platform.platform()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".synth/bench-quality")
