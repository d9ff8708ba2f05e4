"""Accuracy-against-cost figures, shared by `eval` and `merge-eval`. matplotlib is imported only
when a figure is asked for (it is slow to import and the tests never draw)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


@contextmanager
def accuracy_cost_axes(path: Path, title: str, xlabel: str, ylabel: str, figsize: tuple[float, float], legend_size: int):
    """Yields the axes to draw series on; labels, grid and legend are set and the figure saved on exit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, dpi=120)
    try:
        yield ax
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=legend_size)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
