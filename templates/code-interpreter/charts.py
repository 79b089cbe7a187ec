"""Chart data for matplotlib figures, computed inside a Python kernel.

The server runs this file in every Python kernel it starts (in a namespace of
its own, so nothing lands in the user's globals) and calls `register`, which
adds a display formatter for `matplotlib.figure.Figure` under CHART_MIME.
When the inline backend shows a figure, IPython asks every formatter, so the
figure's `display_data` carries this mime type beside `image/png`; the server
turns it into the result's `chart` field.

What is extracted, per axes: line charts (`Line2D`), scatter charts
(`PathCollection`), bar charts (`BarContainer`) and pie charts (`Wedge`).
A figure with several axes is a `superchart` of them. Anything else is
`unknown` with the title only. The JSON shapes are the ones E2B's clients
parse (`e2b_code_interpreter.charts`).
"""

CHART_MIME = "application/vnd.warren.chart+json"


def _text(value):
    return value if value else None


def _num(value):
    """A JSON-safe number (NaN and infinities are not JSON)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if f != f or f in (float("inf"), float("-inf")):
        return None
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


def _split_unit(label):
    """`"Time (s)"` → `("Time (s)", "s")`: E2B reports the unit in parentheses."""
    if label and label.endswith(")") and "(" in label:
        return label, label[label.rindex("(") + 1 : -1].strip() or None
    if label and label.endswith("]") and "[" in label:
        return label, label[label.rindex("[") + 1 : -1].strip() or None
    return label or None, None


def _is_dates(axis):
    import matplotlib.dates as mdates

    get = getattr(axis, "get_converter", None)
    converter = get() if get else getattr(axis, "converter", None)
    return isinstance(converter, mdates.DateConverter) or (
        type(converter).__module__ == "matplotlib.dates"
    )


def _axis(ax, which):
    axis = ax.xaxis if which == "x" else ax.yaxis
    dates = _is_dates(axis)
    ticks = axis.get_majorticklocs()
    labels = [t.get_text() for t in axis.get_majorticklabels()]
    if dates:
        import matplotlib.dates as mdates

        tick_values = [mdates.num2date(t).isoformat() for t in ticks]
        scale = "datetime"
    else:
        tick_values = [_num(t) for t in ticks]
        scale = axis.get_scale()
    label, unit = _split_unit(axis.get_label_text())
    return {
        f"{which}_label": label,
        f"{which}_unit": unit,
        f"{which}_ticks": tick_values,
        f"{which}_tick_labels": labels,
        f"{which}_scale": scale,
    }, dates


def _value(v, dates):
    if dates:
        import matplotlib.dates as mdates

        try:
            return mdates.num2date(float(v)).isoformat()
        except (TypeError, ValueError):
            return str(v)
    return _num(v)


def _points(xs, ys, xdates, ydates):
    return [[_value(x, xdates), _value(y, ydates)] for x, y in zip(xs, ys)]


def _series_label(artist, i):
    label = artist.get_label()
    return label if label and not label.startswith("_") else f"series {i}"


def _axes_chart(ax):
    from matplotlib.collections import PathCollection
    from matplotlib.container import BarContainer
    from matplotlib.patches import Wedge

    title = _text(ax.get_title())
    x, xdates = _axis(ax, "x")
    y, ydates = _axis(ax, "y")
    two_d = {"x_label": x["x_label"], "y_label": y["y_label"],
             "x_unit": x["x_unit"], "y_unit": y["y_unit"]}

    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    if bars:
        elements = []
        horizontal = any(getattr(c, "orientation", None) == "horizontal" for c in bars)
        tick_axis = ax.yaxis if horizontal else ax.xaxis
        names = {}
        for loc, text in zip(tick_axis.get_majorticklocs(), tick_axis.get_majorticklabels()):
            names[round(float(loc), 6)] = text.get_text()
        for i, container in enumerate(bars):
            group = _series_label(container, i)
            for patch in container.patches:
                if horizontal:
                    center, value = patch.get_y() + patch.get_height() / 2, patch.get_width()
                else:
                    center, value = patch.get_x() + patch.get_width() / 2, patch.get_height()
                label = names.get(round(center, 6), str(_num(center)))
                elements.append({"label": label, "group": group, "value": _num(value)})
        return {"type": "bar", "title": title, "elements": elements, **two_d}

    wedges = [p for p in ax.patches if isinstance(p, Wedge)]
    if wedges:
        texts = [t.get_text() for t in ax.texts]
        elements = []
        for i, w in enumerate(wedges):
            label = w.get_label()
            if not label or label.startswith("_"):
                label = texts[i] if i < len(texts) else f"slice {i}"
            elements.append({"label": label, "angle": _num(w.theta2 - w.theta1),
                             "radius": _num(w.r)})
        return {"type": "pie", "title": title, "elements": elements}

    lines = [l for l in ax.get_lines() if len(l.get_xdata()) > 0]
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    if lines or scatters:
        elements = []
        if lines:
            kind = "line"
            for i, line in enumerate(lines):
                elements.append({"label": _series_label(line, i), "points": _points(
                    line.get_xdata(orig=False), line.get_ydata(orig=False), xdates, ydates)})
        else:
            kind = "scatter"
            for i, coll in enumerate(scatters):
                offsets = coll.get_offsets()
                elements.append({"label": _series_label(coll, i), "points": _points(
                    [o[0] for o in offsets], [o[1] for o in offsets], xdates, ydates)})
        return {"type": kind, "title": title, "elements": elements, **x, **y}

    return {"type": "unknown", "title": title, "elements": []}


def chart_of(figure):
    """The chart data of a figure: one chart per axes, or a superchart."""
    axes = [ax for ax in figure.get_axes() if ax.get_visible()]
    if not axes:
        return None
    if len(axes) == 1:
        return _axes_chart(axes[0])
    suptitle = figure._suptitle.get_text() if getattr(figure, "_suptitle", None) else None
    return {"type": "superchart", "title": _text(suptitle),
            "elements": [_axes_chart(ax) for ax in axes]}


def _is_figure(obj):
    return any(
        (getattr(c, "__module__", None), c.__name__) == ("matplotlib.figure", "Figure")
        for c in type(obj).__mro__
    )


def register(ip):
    """Adds the chart formatter to IPython shell `ip` (idempotent).

    The formatter picks figures by their class instead of registering a
    printer for the type: matplotlib's inline backend drops every printer
    registered for `Figure` when it sets up its own.
    """
    from IPython.core.formatters import BaseFormatter
    from traitlets import ObjectName, Unicode

    class ChartFormatter(BaseFormatter):
        format_type = Unicode(CHART_MIME)
        _return_type = (dict,)
        print_method = ObjectName("_repr_warren_chart_")

        def __call__(self, obj):
            if not self.enabled or not _is_figure(obj):
                return None
            try:
                return chart_of(obj)
            except Exception:  # a chart we cannot read is no reason to lose the image
                return None

    formatters = ip.display_formatter.formatters
    if CHART_MIME not in formatters:
        formatters[CHART_MIME] = ChartFormatter(parent=ip.display_formatter)
