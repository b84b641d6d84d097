"""Report parts for the pre-training search (which candidates were considered, trained, skipped and why) and
for the resumable stages (pure)."""

from __future__ import annotations

from typing import Any

from .view import train_seconds


def search_markdown(r: dict[str, Any]) -> list[str]:
    s = r.get("search")
    if not s:
        return []
    considered = s["considered"]
    lines = [f"## Candidates considered: {len(considered)}, trained: {len(s['trained'])}", "",
             "Sized before training (random weights): parameters, MACs, int8 size, largest int8 activation, "
             "estimated latency on the target (interpolated in MACs between two probe models run in the target's "
             "backend), estimated training time.", "",
             "| candidate | params | MMACs | int8 MB | act KiB | est. latency ms | est. train s | decision |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for c in considered:
        lat = "—" if c.get("latency_ms") is None else f"{c['latency_ms']:.3g} ({c.get('latency_runtime')})"
        dec = "**trained**" if c["decision"] == "train" else "skipped: " + "; ".join(c["reasons"])
        lines.append(f"| `{c['name']}` | {c['params']:,} | {c['macs'] / 1e6:.2f} | {c['int8_size_mb']:.3f} "
                     f"| {c['peak_activation_kib']:.1f} | {lat} | {train_seconds(c.get('est_train_s'))} | {dec} |")
    st = r.get("stages")
    if st:
        shared = st.get("shared") or []
        lines += ["", f"Stages: {len(st['ran'])} ran in this build, {len(st['reused'])} reused from an earlier build "
                  "with the same inputs"
                  + (f", {len(shared)} copied from the shared store (made for another target or run)" if shared else "")
                  + (" (--fresh: none reused)" if st.get("fresh") else "") + "."]
    return lines + [""]

