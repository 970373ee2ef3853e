"""One self-contained HTML page: the Vega runtime and every chart's spec and data inlined, so
the file opens from disk with no network. Sections are (title, html) pairs; a chart is a
`Figure`, drawn by vega-embed, or its reason in words where it was not measured."""

from __future__ import annotations

import functools
import html
import json

import pandas as pd

from harness.report.charts import Figure

# a wide table or chart scrolls inside its own box (as GitHub's tables do), so the page is
# never wider than the window
STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px auto;
       max-width: 1500px; color: #222; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 19px; margin-top: 32px;
  border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.sub { color: #555; margin-top: 0; }
table.facts { border-collapse: collapse; font-size: 14px; margin: 8px 0; display: block;
               width: max-content; max-width: 100%; overflow-x: auto; }
table.facts th, table.facts td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; }
table.facts th { background: #f5f5f5; } td.num { text-align: right; }
.chart, .chart.vega-embed { display: block; margin: 12px 0 20px 0; max-width: 100%;
                            overflow-x: auto; }
p, li { overflow-wrap: break-word; }
.missing { border: 1px dashed #bbb; background: #fafafa; padding: 10px 14px; margin: 10px 0;
           color: #555; }
pre.answer { font-size: 11px; overflow-x: auto; background: #fcfcfc; border: 1px solid #eee;
             padding: 8px; }
ul.warnings li, ul.caveats li { margin: 3px 0; }
.badge { display: inline-block; border-radius: 3px; padding: 1px 6px; margin: 1px 2px 1px 0;
         font-size: 12px; border: 1px solid; }
.badge.sev-critical { background: #fdecea; color: #b71c1c; border-color: #e57373;
                      font-weight: bold; }
.badge.sev-warning { background: #fff4e0; color: #8a5300; border-color: #f0b429; }
.badge.sev-info { background: #f3f3f3; color: #555; border-color: #ccc; }
ul.caveats li.sev-critical { color: #b71c1c; } ul.caveats li.sev-info { color: #666; }
table.decision td { vertical-align: top; }
"""

EMBED = """
const specs = JSON.parse(document.getElementById('chart-specs').textContent);
for (const [id, spec] of Object.entries(specs)) {
  vegaEmbed('#' + id, spec, {actions: false, renderer: 'svg'})
    .then(() => document.getElementById(id).setAttribute('data-rendered', 'yes'))
    .catch((err) => console.error('chart ' + id + ': ' + err));
}
"""


@functools.cache
def vega_bundle() -> str:
    """vega, vega-lite and vega-embed in one script (vl-convert's bundle, no dependencies)."""
    import vl_convert

    return vl_convert.javascript_bundle()


def escape(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(value).replace("</", "<\\/")


def facts_table(rows: list[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table class=facts>{body}</table>"


def frame_table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    """A frame as a plain table; numbers right-aligned with their format ('$' first: a dollar
    amount), NaN as '-'."""
    formats = formats or {}
    head = "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
    rows = []
    for record in frame.to_dict("records"):
        cells = []
        for column, value in record.items():
            if value is None or (isinstance(value, float) and pd.isna(value)):
                cells.append("<td class=num>-</td>")
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                spec = formats.get(column, ",.4g")
                text = "$" + format(value, spec[1:]) if spec.startswith("$") \
                    else format(value, spec)
                cells.append(f"<td class=num>{escape(text)}</td>")
            else:
                cells.append(f"<td>{escape(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class=facts><tr>{head}</tr>{''.join(rows)}</table>"


def missing_box(text: str) -> str:
    return f"<div class=missing>{escape(text)}</div>"


def figure_html(fig: Figure) -> str:
    if fig.spec is None:
        return (f"<div class=missing data-figure='{escape(fig.key)}'><b>{escape(fig.title)}"
                f"</b>: {escape(fig.reason)}</div>")
    return f"<div class=chart id='chart-{escape(fig.key)}' data-figure='{escape(fig.key)}'></div>"


def page(title: str, subtitle: str, sections: list[tuple[str, str]],
         figures: list[Figure]) -> str:
    """The whole document: styles, sections, the runtime and the specs, all inline."""
    specs = {f"chart-{fig.key}": fig.spec for fig in figures if fig.spec is not None}
    body = "".join(f"<section><h2>{escape(name)}</h2>{content}</section>"
                   for name, content in sections)
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p class=sub>{escape(subtitle)}</p>{body}"
        f"<script>{vega_bundle()}</script>"
        f"<script type='application/json' id='chart-specs'>{_script_json(specs)}</script>"
        f"<script>{EMBED}</script></body></html>\n")


def figures_html(figures: list[Figure], *keys: str) -> str:
    return "".join(figure_html(fig) for fig in figures if fig.key in keys)
