"""The report in words and tables: what the CLI prints and writes, and the admin page shows."""

from __future__ import annotations

from collections.abc import Sequence

from service.experiments.report import Report
from service.experiments.stats import Difference

Table = tuple[str, list[str], list[list[str]]]


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:+.1%}" if signed else f"{x:.1%}"


def _money(x: float | None, signed: bool = False) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:+,.2f}" if signed else f"{x:,.2f}"


def _interval(d: Difference, fmt: str) -> str:
    show = _pct if fmt == "pct" else _money
    return f"{show(d.estimate, True)} [{show(d.low, True)}, {show(d.high, True)}]"


def tables(report: Report) -> list[Table]:
    """Titled tables: the groups, the increments against the control, attribution, KPIs."""
    groups = [
        [g.name + (" (held out)" if g.held_out else ""), f"{g.customers:,}", f"{g.exposures:,}",
         _pct(g.click_rate), f"{_pct(g.conversion.estimate)} [{_pct(g.conversion.low)}, "
         f"{_pct(g.conversion.high)}]", _money(g.revenue_per_customer)]
        for g in report.groups
    ]  # fmt: skip
    increments = [
        [f"{x.group} vs {x.control}", _interval(x.conversion, "pct"),
         _pct(x.conversion.relative, True), f"{x.conversion.p_value:.3g}",
         _interval(x.revenue_per_customer, "money")]
        for x in report.comparisons
    ]  # fmt: skip
    attributed = [
        [str(a["rule"]), str(a["kind"]), str(a["exposure_channel"]), f"{a['purchases']:,}",
         _money(float(a["revenue"])), f"{a['cross_channel']:,}"]
        for a in report.attributed
    ]  # fmt: skip
    cc, churn, ltv = report.cross_channel, report.churn, report.lifetime_value
    kpis = [
        ["cross-channel buyers (browsed in one channel, bought in another)",
         f"{cc.cross_buyers:,} = {_pct(cc.share_of_buyers)} of {cc.buyers:,} buyers, "
         f"{_pct(cc.rate_of_browsers)} of {cc.browsers:,} browsers"],
        [f"churn rate over {churn.horizon_days:g} days (the churn model's label)",
         f"{_pct(churn.rate)}: {churn.churned:,} of the {churn.active_before:,} who bought "
         f"in the year to {churn.as_of:%Y-%m-%d} bought nothing in the {churn.horizon_days:g} "
         "days after"],
        ["historic value per customer (revenue to date)",
         f"mean {_money(ltv.historic_mean)}, median {_money(ltv.historic_median)} "
         f"({ltv.customers:,} customers)"],
        ["predicted 12-month value (BG/NBD + Gamma-Gamma)",
         f"mean {_money(ltv.predicted_12m_mean)}, median {_money(ltv.predicted_12m_median)}, "
         f"total {_money(ltv.predicted_12m_total)}"],
        ["value model checked on the period (mean absolute error per customer)",
         f"model {_money(ltv.check_mae_model)} vs same-as-last-period "
         f"{_money(ltv.check_mae_last_period)} ({ltv.check_customers:,} customers)"],
    ]  # fmt: skip
    return [
        ("Groups", ["group", "customers", "exposures", "click rate", "conversion [95% CI]",
                    "revenue / customer"], groups),
        ("Against the control", ["comparison", "incremental conversion [95% CI]", "relative",
                                 "p-value", "incremental revenue / customer [95% CI]"],
         increments),
        (f"Attributed purchases (within {report.attribution_days:g} days)",
         ["rule", "answer", "given in", "purchases", "revenue", "bought in another channel"],
         attributed),
        ("Omnichannel KPIs", ["KPI", "value"], kpis),
    ]  # fmt: skip


def markdown(report: Report, plots: Sequence[str] = ()) -> str:
    """The report as Markdown (with the plots' files when given)."""
    what = f"experiment `{report.experiment}`" if report.experiment else "the global holdout"
    lines = [
        f"# Omni report: {what}",
        "",
        f"{report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC; answers: "
        f"{', '.join(report.kinds)}; outcomes within {report.attribution_days:g} days of each "
        "customer's first exposure (held-out customers from when they would have been "
        "contacted).",
    ]
    for title, columns, rows in tables(report):
        lines += ["", f"## {title}", "", "| " + " | ".join(columns) + " |",
                  "|" + "---|" * len(columns)]  # fmt: skip
        lines += ["| " + " | ".join(row) + " |" for row in rows] or ["| (none) |"]
    for name in plots:
        lines += ["", f"![{name.removesuffix('.png')}]({name})"]
    return "\n".join(lines) + "\n"
