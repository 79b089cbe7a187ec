// Charts drawn with plain SVG: lines over time, and a histogram's buckets.

import type { Bucket } from './prom';
import { formatSeconds } from './prom';

const W = 800;
const H = 200;
const PAD = { left: 36, right: 8, top: 8, bottom: 22 };

/** One line of a line chart. */
export interface Series {
  name: string;
  /** A CSS colour (a theme variable works). */
  color: string;
  values: number[];
}

/** Lines over evenly spaced samples (oldest left); `times` labels the ends. */
export function LineChart({ series, times, label }: { series: Series[]; times: number[]; label: string }) {
  const n = times.length;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i: number) => PAD.left + (n <= 1 ? 0 : (i * (W - PAD.left - PAD.right)) / (n - 1));
  const y = (v: number) => H - PAD.bottom - (v * (H - PAD.top - PAD.bottom)) / max;
  const fmt = (t: number | undefined) => (t === undefined ? '' : new Date(t).toLocaleTimeString());
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label}>
        <line class="chart-axis" x1={PAD.left} y1={H - PAD.bottom} x2={W - PAD.right} y2={H - PAD.bottom} />
        <line class="chart-grid" x1={PAD.left} y1={PAD.top} x2={W - PAD.right} y2={PAD.top} />
        <text class="chart-tick" x={PAD.left - 4} y={PAD.top + 4} text-anchor="end">
          {max}
        </text>
        <text class="chart-tick" x={PAD.left - 4} y={H - PAD.bottom} text-anchor="end">
          0
        </text>
        <text class="chart-tick" x={PAD.left} y={H - 6}>
          {fmt(times[0])}
        </text>
        <text class="chart-tick" x={W - PAD.right} y={H - 6} text-anchor="end">
          {fmt(times[n - 1])}
        </text>
        {series.map((s) => (
          <polyline
            key={s.name}
            fill="none"
            stroke={s.color}
            stroke-width="2"
            vector-effect="non-scaling-stroke"
            points={s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}
          />
        ))}
      </svg>
      <figcaption class="chart-legend">
        {series.map((s) => (
          <span key={s.name}>
            <span class="chart-swatch" style={{ background: s.color }} /> {s.name} {s.values[s.values.length - 1] ?? 0}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

/** A histogram's buckets as bars (empty leading and trailing buckets left out). */
export function BucketChart({ buckets, label }: { buckets: Bucket[]; label: string }) {
  let first = buckets.findIndex((b) => b.count > 0);
  let last = buckets.length - 1 - [...buckets].reverse().findIndex((b) => b.count > 0);
  if (first < 0) {
    return <p class="empty">No samples yet.</p>;
  }
  first = Math.max(0, first - 1);
  last = Math.min(buckets.length - 1, last + 1);
  const shown = buckets.slice(first, last + 1);
  const max = Math.max(1, ...shown.map((b) => b.count));
  const bw = (W - PAD.left - PAD.right) / shown.length;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label}>
        <line class="chart-axis" x1={PAD.left} y1={H - PAD.bottom} x2={W - PAD.right} y2={H - PAD.bottom} />
        <text class="chart-tick" x={PAD.left - 4} y={PAD.top + 4} text-anchor="end">
          {max}
        </text>
        {shown.map((b, i) => {
          const h = (b.count * (H - PAD.top - PAD.bottom)) / max;
          const x = PAD.left + i * bw;
          return (
            <g key={b.le}>
              <rect class="chart-bar" x={x + 1} y={H - PAD.bottom - h} width={Math.max(1, bw - 2)} height={h}>
                <title>
                  ≤ {Number.isFinite(b.le) ? formatSeconds(b.le) : '∞'}: {b.count}
                </title>
              </rect>
              {(i % Math.ceil(shown.length / 6) === 0 || i === shown.length - 1) && (
                <text class="chart-tick" x={x + bw / 2} y={H - 6} text-anchor="middle">
                  {Number.isFinite(b.le) ? formatSeconds(b.le) : '∞'}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
