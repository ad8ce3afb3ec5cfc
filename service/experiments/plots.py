"""The report's plots as PNG bytes: conversion per group with its interval, the cumulative
uplift against the control by day since the first exposure, and the distribution of
predicted 12-month customer value. Drawn on matplotlib `Figure`s (no global pyplot state:
safe in a server's threads)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from service.experiments.report import Report
from service.experiments.stats import proportions

PLOTS = ("conversion", "uplift", "lifetime_value")


def draw(report: Report, name: str) -> bytes:
    """One plot of PLOTS, as PNG. Raises KeyError for another name."""
    makers = {"conversion": _conversion, "uplift": _uplift, "lifetime_value": _lifetime_value}
    fig = Figure(figsize=(7, 4), dpi=100, layout="constrained")
    makers[name](report, fig)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _title(report: Report) -> str:
    what = f"experiment {report.experiment}" if report.experiment else "holdout"
    return f"{what}, {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"


def _titled(ax: Any, what: str, report: Report) -> None:
    ax.set_title(f"{what}\n{_title(report)}", fontsize=9)


def _conversion(report: Report, fig: Figure) -> None:
    ax = fig.subplots()
    groups = report.groups
    if not groups:
        ax.text(0.5, 0.5, "no exposures in this period", ha="center", va="center")
        return
    rates = np.array([g.conversion.estimate for g in groups])
    low = rates - np.array([g.conversion.low for g in groups])
    high = np.array([g.conversion.high for g in groups]) - rates
    colours = ["#888888" if g.held_out else "#2b6cb0" for g in groups]
    ax.bar([g.name for g in groups], rates, yerr=[low, high], capsize=6, color=colours)
    for i, g in enumerate(groups):
        label = f"{g.conversion.estimate:.1%}\n{g.customers:,} customers"
        ax.text(i, rates[i] / 2, label, ha="center", va="center", color="white", fontsize=9)
    ax.set_ylabel(f"bought within {report.attribution_days:g} days")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    _titled(ax, "Conversion with 95% intervals", report)


def _uplift(report: Report, fig: Figure) -> None:
    ax = fig.subplots()
    control = report.comparisons[0].control if report.comparisons else None
    by_day = report.by_day
    if control is None or by_day.empty:
        ax.text(0.5, 0.5, "no control group to compare with", ha="center", va="center")
        return
    base = by_day[by_day["group"] == control][["day", "customers", "converted"]]
    for x in report.comparisons:
        arm = by_day[by_day["group"] == x.group].merge(base, on="day", suffixes=("", "_c"))
        counts = arm[["converted", "customers", "converted_c", "customers_c"]].to_numpy(int)
        diffs = [proportions(*map(int, row)) for row in counts]
        days = arm["day"].to_numpy()
        ax.plot(days, [d.estimate for d in diffs], marker="o", label=f"{x.group} - {control}")
        ax.fill_between(days, [d.low for d in diffs], [d.high for d in diffs], alpha=0.2)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("days since first exposure")
    ax.set_ylabel("incremental conversion")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:+.0%}")
    ax.legend(fontsize=8)
    _titled(ax, "Cumulative uplift against the control, with 95% intervals", report)


def _lifetime_value(report: Report, fig: Figure) -> None:
    ax = fig.subplots()
    values = report.lifetime_value.predicted_12m.to_numpy(dtype=float)
    if len(values) == 0:
        ax.text(0.5, 0.5, "too few customers to fit the value model", ha="center", va="center")
        return
    top = float(np.quantile(values, 0.99))
    ax.hist(np.clip(values, 0, top), bins=40, color="#2f855a")
    mean = float(values.mean())
    ax.axvline(mean, color="black", linestyle="--", linewidth=1)
    ax.annotate(f"mean {mean:,.0f}", (mean, ax.get_ylim()[1] * 0.9), xytext=(4, 0),
                textcoords="offset points", fontsize=8)  # fmt: skip
    ax.set_xlabel("predicted value over the next 12 months (BG/NBD + Gamma-Gamma)")
    ax.set_ylabel("customers")
    ax.set_title(f"Customer lifetime value at {report.until:%Y-%m-%d} "
                 f"({len(values):,} customers; top 1% clipped)", fontsize=9)  # fmt: skip
