// Charts from the server's own /metrics (admin key): sandboxes by state,
// sampled every few seconds while the page is open, and the create and
// exec latency histograms.

import { useEffect, useState } from 'preact/hooks';
import type { Api } from '../../api';
import { ErrorBox, Loading } from '../../components/ui';
import { SANDBOX_STATES } from '../../types';
import { BucketChart, LineChart } from './charts';
import { formatSeconds, histogram, parse, quantile, type Histogram, type Metrics } from './prom';

/** How often /metrics is read. */
const PERIOD_MS = 5_000;
/** Samples kept (an hour at PERIOD_MS). */
const KEEP = 720;

const COLORS: Record<string, string> = {
  creating: 'var(--warn)',
  running: 'var(--ok)',
  stopped: 'var(--muted)',
  hibernated: 'var(--accent)',
  error: 'var(--danger)',
};

interface Point {
  time: number;
  counts: Record<string, number>;
}

/** Samples of sandboxes by state, kept across visits of the page while the tab lives. */
const history: Point[] = [];

function stateCounts(metrics: Metrics): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of metrics.get('warren_sandboxes') ?? []) counts[s.labels.state] = s.value;
  return counts;
}

function Latency({ title, h }: { title: string; h?: Histogram }) {
  return (
    <div class="card">
      <h3>{title}</h3>
      {h ? (
        <>
          <p class="muted">
            {h.count} samples · mean {formatSeconds(h.count ? h.sum / h.count : undefined)} · p50 {formatSeconds(quantile(h, 0.5))} · p95{' '}
            {formatSeconds(quantile(h, 0.95))} · p99 {formatSeconds(quantile(h, 0.99))}
          </p>
          <BucketChart buckets={h.buckets} label={`${title}: count per latency bucket`} />
        </>
      ) : (
        <p class="empty">Not reported by this server.</p>
      )}
    </div>
  );
}

/** The metrics section of the admin page. */
export function MetricsView({ api }: { api: Api }) {
  const [metrics, setMetrics] = useState<Metrics>();
  const [error, setError] = useState<Error>();
  const [, setTick] = useState(0);

  useEffect(() => {
    const abort = new AbortController();
    const sample = async () => {
      try {
        const res = await api.fetch('GET', '/metrics', { signal: abort.signal });
        const text = await res.text();
        const m = parse(text.slice(0, 4_000_000));
        history.push({ time: Date.now(), counts: stateCounts(m) });
        if (history.length > KEEP) history.splice(0, history.length - KEEP);
        setMetrics(m);
        setError(undefined);
        setTick((t) => t + 1);
      } catch (err) {
        if (!abort.signal.aborted) setError(err as Error);
      }
    };
    void sample();
    const timer = setInterval(sample, PERIOD_MS);
    return () => {
      abort.abort();
      clearInterval(timer);
    };
  }, [api]);

  const series = SANDBOX_STATES.map((state) => ({
    name: state,
    color: COLORS[state] ?? 'var(--text)',
    values: history.map((p) => p.counts[state] ?? 0),
  }));
  return (
    <div class="admin-metrics">
      <ErrorBox error={error} />
      <Loading loading={!metrics && !error} label="Reading /metrics…" />
      {metrics && (
        <>
          <div class="card">
            <h3>Sandboxes by state</h3>
            <p class="muted">Sampled every {PERIOD_MS / 1000} s while this page is open.</p>
            <LineChart series={series} times={history.map((p) => p.time)} label="Sandboxes by state over time" />
          </div>
          <div class="grid admin-latency">
            <Latency title="Create latency" h={histogram(metrics, 'warren_sandbox_create_duration_seconds')} />
            <Latency title="Exec latency" h={histogram(metrics, 'warren_exec_duration_seconds')} />
          </div>
        </>
      )}
    </div>
  );
}
