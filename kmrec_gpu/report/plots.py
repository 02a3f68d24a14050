"""The report's figures, drawn with Matplotlib's Agg canvas.

``Figure`` + ``FigureCanvasAgg`` instead of ``pyplot``: no global backend switch and no
figure registry, so building a report inside another program (a notebook, the test
suite) neither changes its backend nor leaks figures. Each PNG is written to a temporary
file in its folder and renamed over the target, so a crash never leaves half a picture.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kmrec_gpu.results import atomic_path

_FOOTER_CHARS_PER_IN = 16  # 6.5 pt monospace, with a margin
_FOOTER_LINE_IN = 0.13


@dataclass(frozen=True)
class Line:
    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    mark_x: float | None = None  # a chosen point, e.g. the elbow a run picked


@dataclass(frozen=True)
class Panel:
    title: str
    xlabel: str
    ylabel: str
    lines: tuple[Line, ...]
    log: bool = True


def save_png(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        # no Software entry: the same rows give the same bytes whatever Matplotlib
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})


def draw(panels: Sequence[Panel], *, title: str, footer: str, path: Path) -> Path:
    """Panels side by side, the provenance footer under them."""
    width = 6.4 * len(panels)
    foot = textwrap.wrap(footer, int(_FOOTER_CHARS_PER_IN * width)) or [""]
    foot_in = 0.25 + _FOOTER_LINE_IN * len(foot)
    height = 4.6 + foot_in
    fig = Figure(figsize=(width, height))
    fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.1 / len(panels) + 0.03, right=0.98, top=0.88,
                        bottom=(foot_in + 0.45) / height, wspace=0.28)
    for n, panel in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), n + 1)
        for line in panel.lines:
            (drawn,) = ax.plot(line.xs, line.ys, marker="o", markersize=3.5, linewidth=1.2,
                               label=line.label)
            if line.mark_x is not None and line.mark_x in line.xs:
                ax.plot([line.mark_x], [line.ys[line.xs.index(line.mark_x)]], marker="s",
                        markersize=8, fillstyle="none", color=drawn.get_color())
        if panel.log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_title(panel.title, fontsize=9)
        ax.set_xlabel(panel.xlabel, fontsize=8)
        ax.set_ylabel(panel.ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
        if panel.lines:
            ax.legend(fontsize=6.5, loc="best")
    fig.text(0.01, 0.01, "\n".join(foot), fontsize=6.5, va="bottom", ha="left",
             family="monospace")
    save_png(fig, path)
    return path
