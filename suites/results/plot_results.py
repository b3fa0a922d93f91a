"""Plots of a longseq results file: time and peak memory per rank against sequence length.

Usage: plot_results.py RESULTS OUT_DIR

RESULTS is a longseq results file (HDF5, format longseq-results-1, or JSON lines of records).
One figure per pass (and per device/dtype when the file holds several), each with a log-log plot
of the median time and one of the peak memory per rank against the sequence length: one line per
mixer and rank count, its least-squares slope in the legend. Every figure is written as PNG and
SVG into OUT_DIR; each file written is printed as "wrote PATH".
"""

import json
import math
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FORMAT = "longseq-results-1"
FIGURE_FIELDS = ("pass", "device", "dtype")
LINE_FIELDS = ("mixer", "ranks")
# Configuration fields that tell lines apart when they vary (see suites/results/run_record.h).
OTHER_CONFIG = ("batch", "heads", "kv_heads", "head_dim", "causal", "layout", "strategy", "seed",
                "features", "redraw_interval", "state_size", "local_chunk", "momentum",
                "momentum_step")


def plain(value):
    """An h5py attribute value as a Python str, int or float."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8")
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray) and value.size == 1:
        return plain(value.reshape(()).item())
    return value


def read_records(path):
    with open(path, "rb") as probe:
        first = probe.read(4096).lstrip()
    if not first or first.startswith(b"{"):
        with open(path, encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]
    import h5py

    with h5py.File(path, "r") as results:
        found = plain(results.attrs.get("format", b""))
        if found != FORMAT:
            sys.exit(f"{path}: not a {FORMAT} results file (format '{found}')")
        runs = results["runs"]
        return [{name: plain(value) for name, value in runs[key].attrs.items()}
                for key in sorted(runs.keys(), key=int)]


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def slope(points):
    """Least-squares slope of log(y) against log(x)."""
    usable = [(x, y) for x, y in points if x > 0 and y > 0]
    if len({x for x, _ in usable}) < 2:
        return None
    xs, ys = zip(*usable)
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def varying(records, names):
    return [n for n in names if len({str(r.get(n, "")) for r in records}) > 1]


def label_of(record, names):
    parts = []
    for name in names:
        if name == "mixer":
            parts.append(str(record.get("mixer", "?")))
        elif name == "ranks":
            ranks = record.get("ranks", "?")
            parts.append(f"{ranks} rank" + ("" if ranks == 1 else "s"))
        else:
            parts.append(f"{name}={record.get(name, '')}")
    return ", ".join(parts)


def series(records, field, scale):
    """(seq, value) of every record with both; the median per seq for drawing."""
    points = [(float(r["seq"]), float(r[field]) * scale) for r in records
              if is_number(r.get("seq")) and is_number(r.get(field))]
    by_seq = {}
    for x, y in points:
        by_seq.setdefault(x, []).append(y)
    drawn = sorted((x, float(np.median(ys))) for x, ys in by_seq.items())
    return points, drawn


def draw(axes, lines, field, scale, ylabel, title):
    for label, records in lines:
        points, drawn = series(records, field, scale)
        if not drawn:
            continue
        fitted = slope(points)
        legend = label if fitted is None else f"{label} (slope {fitted:.2f})"
        xs, ys = zip(*drawn)
        axes.loglog(xs, ys, marker="o", label=legend)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("sequence length (tokens)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")


def file_stem(values):
    text = "_".join(str(v) for v in values if str(v))
    return "results_" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", text) or "all")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_results.py RESULTS OUT_DIR")
    path, out_dir = sys.argv[1], sys.argv[2]
    records = [r for r in read_records(path)
               if r.get("status", "ok") == "ok" and is_number(r.get("seq"))
               and is_number(r.get("median_s"))]
    if not records:
        print("no successful runs to plot", file=sys.stderr)
        return
    os.makedirs(out_dir, exist_ok=True)
    figure_fields = ["pass"] + varying(records, FIGURE_FIELDS[1:])
    line_fields = list(LINE_FIELDS) + varying(records, OTHER_CONFIG)
    figures = {}
    for record in records:
        key = tuple(record.get(n, "") for n in figure_fields)
        figures.setdefault(key, []).append(record)
    for key, members in figures.items():
        lines = {}
        for record in members:
            lines.setdefault(label_of(record, line_fields), []).append(record)
        lines = sorted(lines.items())
        heading = ", ".join(f"{n} {v}" for n, v in zip(figure_fields, key) if str(v))
        figure, (time_axes, memory_axes) = plt.subplots(1, 2, figsize=(13, 5))
        draw(time_axes, lines, "median_s", 1.0, "median time (s)", f"time against length: {heading}")
        draw(memory_axes, lines, "peak_mem_bytes", 1.0 / 2**20, "peak memory per rank (MiB)",
             f"memory against length: {heading}")
        figure.tight_layout()
        stem = os.path.join(out_dir, file_stem(key))
        for extension in ("png", "svg"):
            target = f"{stem}.{extension}"
            figure.savefig(target, dpi=120)
            print(f"wrote {target}")
        plt.close(figure)


if __name__ == "__main__":
    main()
