// A small reader of the Prometheus text format (what the server's /metrics
// answers): samples by name and labels, and histogram quantiles.

/** One sample: its labels and value. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** Samples by metric name. */
export type Metrics = Map<string, Sample[]>;

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the text format (comments and malformed lines are skipped). */
export function parse(text: string): Metrics {
  const out: Metrics = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const value = m[3] === '+Inf' ? Infinity : Number(m[3]);
    if (Number.isNaN(value)) continue;
    const list = out.get(m[1]) ?? [];
    list.push({ labels, value });
    out.set(m[1], list);
  }
  return out;
}

/** One bucket of a histogram: its upper bound and the count in it (not cumulative). */
export interface Bucket {
  le: number;
  count: number;
}

/** A histogram read from `<name>_bucket`, `_sum` and `_count`. */
export interface Histogram {
  buckets: Bucket[];
  count: number;
  sum: number;
}

/** The histogram `name` (label sets summed), or undefined when it is absent. */
export function histogram(metrics: Metrics, name: string): Histogram | undefined {
  const rows = metrics.get(`${name}_bucket`);
  if (!rows) return undefined;
  const cumulative = new Map<number, number>();
  for (const r of rows) {
    const le = r.labels.le === '+Inf' ? Infinity : Number(r.labels.le);
    if (Number.isNaN(le)) continue;
    cumulative.set(le, (cumulative.get(le) ?? 0) + r.value);
  }
  const bounds = [...cumulative.keys()].sort((a, b) => a - b);
  let previous = 0;
  const buckets = bounds.map((le) => {
    const c = cumulative.get(le) ?? 0;
    const bucket = { le, count: Math.max(0, c - previous) };
    previous = c;
    return bucket;
  });
  const total = (n: string) => (metrics.get(n) ?? []).reduce((a, s) => a + s.value, 0);
  return { buckets, count: total(`${name}_count`), sum: total(`${name}_sum`) };
}

/** The q-quantile (0..1) of a histogram, interpolated within its bucket as Prometheus does. */
export function quantile(h: Histogram, q: number): number | undefined {
  const total = h.buckets.reduce((a, b) => a + b.count, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let seen = 0;
  let lower = 0;
  for (const b of h.buckets) {
    if (seen + b.count >= rank && b.count > 0) {
      if (!Number.isFinite(b.le)) return lower;
      return lower + (b.le - lower) * ((rank - seen) / b.count);
    }
    seen += b.count;
    if (Number.isFinite(b.le)) lower = b.le;
  }
  return lower;
}

/** Seconds as a short duration (`850 µs`, `12 ms`, `1.4 s`). */
export function formatSeconds(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '—';
  if (s < 0.001) return `${Math.round(s * 1e6)} µs`;
  if (s < 1) return `${(s * 1000).toFixed(s < 0.01 ? 1 : 0)} ms`;
  return `${s.toFixed(s < 10 ? 2 : 1)} s`;
}
