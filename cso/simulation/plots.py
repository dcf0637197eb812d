"""Figures of a ``cso sim`` summary: one per metric vs offered load, series as lines, 95% CIs."""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import matplotlib

matplotlib.use("Agg")   # files only: no display on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen

#: Metric -> y-axis label, for the figures drawn by default (the draft's four).
LABELS = {
    "load_balance_factor": "Load balance factor (std of A(s))",
    "network_blocking": "Network blocking probability",
    "global_blocking": "Global blocking probability",
    "avg_hops": "Average hops of accepted lightpaths",
}
MARKERS = "osD^vx*+"


def plot_metric(summary: dict[str, Any], metric: str, path_stem: str,
                title: Optional[str] = None) -> list[str]:
    """Draw ``metric`` vs load to ``path_stem``.png and .svg; [] when no series has a value."""
    rows = summary["results"]
    series = list(dict.fromkeys(row["series"] for row in rows))
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    drawn = False
    for n, name in enumerate(series):
        points = [(row["load"], row[metric]["mean"], row[metric]["ci95"] or 0.0)
                  for row in rows if row["series"] == name and row[metric]["mean"] is not None]
        if not points:
            continue
        drawn = True
        loads, means, cis = zip(*sorted(points))
        ax.errorbar(loads, means, yerr=cis, label=name, marker=MARKERS[n % len(MARKERS)],
                    capsize=3, linewidth=1.4, markersize=5)
    if not drawn:
        plt.close(fig)
        return []
    params = summary["parameters"]
    ax.set_xlabel("Offered load (Erlang)")
    ax.set_ylabel(LABELS.get(metric, metric))
    width = params["wavelengths"] or "file's"
    ax.set_title(title or f"{params['topo']}, {params['traffic']} traffic, W={width}, "
                 f"{params['requests']} requests x {len(params['seeds'])} seeds, 95% CI",
                 fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    written = []
    for ext in ("png", "svg"):
        out = f"{path_stem}.{ext}"
        fig.savefig(out, dpi=120)
        written.append(out)
    plt.close(fig)
    return written


def plot_all(summary: dict[str, Any], directory: str, prefix: str = "",
             metrics: Sequence[str] = tuple(LABELS)) -> list[str]:
    """One figure per metric under ``directory`` (``prefix`` + metric name); the files written."""
    written: list[str] = []
    for metric in metrics:
        written += plot_metric(summary, metric, os.path.join(directory, prefix + metric))
    return written
