// Small shared pieces: buttons that show they are working, errors, spinners.

import type { ComponentChildren, JSX } from 'preact';
import { useDelayed } from '../hooks';

/** A spinner with an accessible label. */
export function Spinner({ label = 'Loading' }: { label?: string }) {
  return <span class="spinner" role="status" aria-label={label} />;
}

/** A spinner shown only when `loading` lasts more than 100 ms. */
export function Loading({ loading, label }: { loading: boolean; label?: string }) {
  const shown = useDelayed(loading);
  return shown ? (
    <div class="loading">
      <Spinner label={label} /> {label ?? 'Loading…'}
    </div>
  ) : null;
}

/** The error's message (a problem's detail), never a stack. */
export function ErrorBox({ error }: { error?: Error }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      {error.message}
    </div>
  );
}

type ButtonProps = JSX.ButtonHTMLAttributes<HTMLButtonElement> & {
  busy?: boolean;
  kind?: 'primary' | 'danger' | 'plain';
  children: ComponentChildren;
};

/** A button; `busy` disables it and shows a spinner after 100 ms. */
export function Button({ busy = false, kind = 'plain', children, ...rest }: ButtonProps) {
  const shown = useDelayed(busy);
  return (
    <button type="button" {...rest} class={`btn btn-${kind} ${rest.class ?? ''}`} disabled={busy || rest.disabled} aria-busy={busy}>
      {shown && <Spinner label="Working" />}
      {children}
    </button>
  );
}

/** A labelled form field. */
export function Field({ label, children, hint }: { label: string; children: ComponentChildren; hint?: string }) {
  return (
    <label class="field">
      <span class="field-label">{label}</span>
      {children}
      {hint && <span class="field-hint">{hint}</span>}
    </label>
  );
}

/** A state as a coloured badge. */
export function StateBadge({ state }: { state: string }) {
  return <span class={`badge state-${state}`}>{state}</span>;
}

/** Bytes as a short human size. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** An RFC 3339 time as a short local time. */
export function formatTime(time?: string | null): string {
  if (!time) return '—';
  const date = new Date(time);
  return Number.isNaN(date.getTime()) ? time : date.toLocaleString();
}
