"""The stress lab's report: one self-contained HTML file (plotly, its script inlined: it opens
offline, from a file or an email) with the numbers of ``summary`` and the paths' time series.

Charts: the price paths; the insurance fund and the vault over time; with ``[options]`` the
options AMM's NAV, cap utilizations and quoted share; open interest and the
notional liquidated; liquidations by stage; the distributions behind VaR and LaR; the margin
backtest's exceedances (loss against margin held, per account-period); the parameter frontier.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go  # type: ignore[import-untyped]
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from clearhouse.sim.stress.run import PathResult
from clearhouse.sim.venue import USDC

PATHS_DRAWN_MAX = 50  # price paths drawn (the rest are in the JSON)
BACKTEST_POINTS_MAX = 20_000  # account-periods drawn in the exceedance chart


def write_report(path: Path, summary: Mapping[str, Any], results: Sequence[PathResult]) -> Path:
    """Write the HTML report of one run (``summary`` as ``summary.summarize`` builds it)."""
    figures = [
        ("Price paths", _price_paths(results)),
        ("Insurance fund and vault", _backstops(results)),
        ("Open interest and notional liquidated", _open_interest(results)),
        ("Liquidations by stage", _stages(summary)),
        ("Insolvent debt and liquidated notional across paths (VaR, LaR)", _tails(summary)),
        ("Margin backtest: loss over each period against the margin held", _backtest(results)),
        ("Parameters: capital efficiency against VaR", _frontier(summary)),
    ]
    if any(r.options is not None for r in results):
        figures.insert(2, ("Options AMM: NAV and cap utilization", _options_amm(results)))
    body = [f"<h1>{html.escape(str(summary['scenario']))}</h1>", _table(summary),
            _options_table(summary)]  # fmt: skip
    for title, figure in figures:
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(figure.to_html(full_html=False, include_plotlyjs=False))
    body.append("<h2>The numbers (JSON)</h2><pre>" + html.escape(json.dumps(summary, indent=2))
                + "</pre>")  # fmt: skip
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(str(summary['scenario']))}: stress report</title>"
        f"<script>{get_plotlyjs()}</script>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}th{background:#f4f4f4}pre{font-size:11px}</style>"
        "</head><body>" + "\n".join(body) + "</body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def _table(summary: Mapping[str, Any]) -> str:
    columns = [
        ("point", "parameters"), ("var_usdc", "VaR p95 (USDC)"), ("lar_usdc", "LaR p95 (USDC)"),
        ("fund_drawdown_usdc", "fund drawdown"), ("vault_drawdown_usdc", "vault drawdown"),
        ("adl_events", "ADL events"), ("coverage", "coverage"),
        ("breaches_per_250", "breaches / 250"), ("capital_efficiency", "leverage allowed"),
        ("deficit_usdc", "deficit"),
    ]  # fmt: skip
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in columns)
    rows = []
    for point in summary["points"]:
        cells = []
        for key, _ in columns:
            value = point.get(key, point.get("backtest", {}).get(key, ""))
            text = json.dumps(value) if isinstance(value, dict) else _fmt(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


OPTIONS_COLUMNS = (
    ("drawdown_usdc", "AMM drawdown (USDC)"), ("nav_low_usdc", "AMM NAV low"),
    ("utilization_max", "max cap utilization"), ("quoted_share_min", "quoted share, min"),
    ("fills", "fills"), ("premium_usdc", "premium (USDC)"), ("hedges", "hedges"),
    ("hedge_filled_share", "hedge filled"), ("liquidated_paths", "liquidated paths"),
    ("violations", "limit violations"),
)  # fmt: skip


def _options_table(summary: Mapping[str, Any]) -> str:
    """The options AMM's numbers per grid point (nothing without ``[options]``)."""
    rows = [(p["point"], p["options_amm"]) for p in summary["points"] if "options_amm" in p]
    if not rows:
        return ""
    head = "<th>parameters</th>" + "".join(f"<th>{html.escape(t)}</th>" for _, t in OPTIONS_COLUMNS)
    lines = []
    for point, numbers in rows:
        cells = [json.dumps(point) if point else "scenario"]
        for key, _ in OPTIONS_COLUMNS:
            value = numbers.get(key)
            cells.append(json.dumps(value) if isinstance(value, dict) else _fmt(value))
        lines.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f"<h2>Options AMM</h2><table><tr>{head}</tr>{''.join(lines)}</table>"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _label(result: PathResult) -> str:
    point = ", ".join(f"{k}={v}" for k, v in result.point.items())
    return f"seed {result.seed}" + (f" ({point})" if point else "")


def _price_paths(results: Sequence[PathResult]) -> go.Figure:
    figure = go.Figure()
    for result in results[:PATHS_DRAWN_MAX]:
        series = result.series
        figure.add_scatter(x=series["t_hours"], y=series["index"], mode="lines",
                           name=_label(result), line={"width": 1})  # fmt: skip
    figure.update_layout(xaxis_title="hours", yaxis_title="index (USD)", height=420)
    return figure


def _backstops(results: Sequence[PathResult]) -> go.Figure:
    figure = go.Figure()
    for result in results[:PATHS_DRAWN_MAX]:
        series = result.series
        figure.add_scatter(x=series["t_hours"], y=series["fund"], mode="lines",
                           name=f"fund, {_label(result)}")  # fmt: skip
        figure.add_scatter(x=series["t_hours"], y=series["vault"], mode="lines", yaxis="y2",
                           name=f"vault, {_label(result)}", line={"dash": "dot"})  # fmt: skip
    # The vault is often a hundred times the fund: each on its own axis.
    figure.update_layout(
        xaxis_title="hours", yaxis_title="insurance fund (USDC)", height=420,
        yaxis2={"title": "vault NAV (USDC, dotted)", "overlaying": "y", "side": "right"},
    )  # fmt: skip
    return figure


def _options_amm(results: Sequence[PathResult]) -> go.Figure:
    """Each path's AMM NAV (left axis) and its largest cap utilization, vega, gamma or delta
    (right axis: 1 is a full cap), with the share of active options it quoted."""
    figure = go.Figure()
    for result in results[:PATHS_DRAWN_MAX]:
        if result.options is None:
            continue
        series = result.options.series
        figure.add_scatter(x=series["t_hours"], y=series["nav"], mode="lines",
                           name=f"NAV, {_label(result)}")  # fmt: skip
        for kind in ("vega", "gamma", "delta"):
            figure.add_scatter(x=series["t_hours"], y=series[kind], mode="lines", yaxis="y2",
                               name=f"{kind} / cap, {_label(result)}",
                               line={"dash": "dot", "width": 1})  # fmt: skip
        figure.add_scatter(x=series["t_hours"], y=series["quoted_share"], mode="lines",
                           yaxis="y2", name=f"quoted share, {_label(result)}",
                           line={"dash": "dash", "width": 1})  # fmt: skip
    figure.update_layout(
        xaxis_title="hours", yaxis_title="AMM NAV (USDC)", height=420,
        yaxis2={"title": "utilization of a cap, share quoted", "overlaying": "y", "side": "right"},
    )  # fmt: skip
    return figure


def _open_interest(results: Sequence[PathResult]) -> go.Figure:
    figure = go.Figure()
    for result in results[:PATHS_DRAWN_MAX]:
        series = result.series
        figure.add_scatter(x=series["t_hours"], y=series["open_interest"], mode="lines",
                           name=f"open interest, {_label(result)}")  # fmt: skip
        figure.add_scatter(x=series["t_hours"], y=series["liquidated"], mode="lines",
                           name=f"liquidated, {_label(result)}", line={"dash": "dot"})  # fmt: skip
    figure.update_layout(xaxis_title="hours", yaxis_title="USDC", height=420)
    return figure


def _stages(summary: Mapping[str, Any]) -> go.Figure:
    figure = go.Figure()
    stages = sorted({s for p in summary["points"] for s in p["steps"]})
    for stage in stages:
        figure.add_bar(name=stage, x=[_point_name(p) for p in summary["points"]],
                       y=[p["steps"].get(stage, 0) for p in summary["points"]])  # fmt: skip
    figure.update_layout(barmode="stack", yaxis_title="steps, all paths", height=380)
    return figure


def _tails(summary: Mapping[str, Any]) -> go.Figure:
    figure = go.Figure()
    for point in summary["points"]:
        name = _point_name(point)
        figure.add_histogram(x=point["per_path"]["insolvent_debt_usdc"], opacity=0.6,
                             name=f"insolvent debt, {name}")  # fmt: skip
        figure.add_histogram(x=point["per_path"]["liquidated_usdc"], opacity=0.6,
                             name=f"liquidated, {name}")  # fmt: skip
    figure.update_layout(barmode="overlay", xaxis_title="USDC per path", yaxis_title="paths",
                         height=380)  # fmt: skip
    return figure


def _backtest(results: Sequence[PathResult]) -> go.Figure:
    margins: list[float] = []
    losses: list[float] = []
    for result in results:
        room = BACKTEST_POINTS_MAX - len(margins)
        margins += [m / USDC for m in result.margins[:room]]
        losses += [loss / USDC for loss in result.losses[:room]]
    breached = [loss > margin for margin, loss in zip(margins, losses, strict=True)]
    figure = go.Figure()
    figure.add_scatter(
        x=margins, y=losses, mode="markers", name="account-periods",
        marker={"size": 4, "color": ["#d62728" if b else "#1f77b4" for b in breached]},
    )  # fmt: skip
    top = max([*margins, *losses, 1.0])
    figure.add_scatter(x=[0, top], y=[0, top], mode="lines", name="loss = margin",
                       line={"dash": "dash", "color": "#888"})  # fmt: skip
    figure.update_layout(xaxis_title="initial margin held (USDC)",
                         yaxis_title="loss over the period (USDC)", height=420)  # fmt: skip
    return figure


def _frontier(summary: Mapping[str, Any]) -> go.Figure:
    points = summary["points"]
    recommended = (summary.get("recommendation") or {}).get("point")
    figure = go.Figure()
    figure.add_scatter(
        x=[p["var_usdc"] for p in points], y=[p["capital_efficiency"] for p in points],
        text=[_point_name(p) for p in points], mode="markers+text", textposition="top center",
        name="grid points",
        marker={"size": 10, "color": ["#2ca02c" if p["point"] == recommended else "#1f77b4"
                                      for p in points]},
    )  # fmt: skip
    figure.update_layout(xaxis_title="VaR p95 of insolvent debt (USDC)",
                         yaxis_title="average leverage allowed", height=420)  # fmt: skip
    return figure


def _point_name(point: Mapping[str, Any]) -> str:
    values = point["point"]
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "scenario"
