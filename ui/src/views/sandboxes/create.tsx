// The create form: template, resources, env, labels, network, timeouts,
// auto-checkpoint.

import { useState } from 'preact/hooks';
import type { Api } from '../../api';
import type { CreateSandbox as CreateBody, Sandbox, Template } from '../../types';
import { Button, ErrorBox, Field } from '../../components/ui';
import { useAction, useLoad } from '../../hooks';

/** `K=V` lines (or comma-separated) as a map; rejects a line without `=`. */
export function parsePairs(text: string, what: string): Record<string, string> | undefined {
  const pairs: Record<string, string> = {};
  for (const line of text.split(/[\n,]/).map((l) => l.trim()).filter(Boolean)) {
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`${what}: "${line}" is not KEY=VALUE`);
    pairs[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return Object.keys(pairs).length ? pairs : undefined;
}

const num = (value: string) => (value.trim() === '' ? undefined : Number(value));

export function CreateSandbox({ api, onCreated }: { api: Api; onCreated: (sandbox: Sandbox) => void }) {
  const templates = useLoad((signal) => api.get<{ items: Template[] }>('/v1/templates', undefined, signal), [api]);
  const [form, setForm] = useState({
    template: 'base',
    cpus: '',
    memory_mb: '',
    disk_mb: '',
    timeout_secs: '',
    ttl_secs: '',
    envs: '',
    labels: '',
    egress: '',
    allow: '',
    auto_checkpoint: false,
    auto_wake: false,
  });
  const [run, busy, error] = useAction();
  const set = (name: keyof typeof form) => (e: Event) => {
    const input = e.currentTarget as HTMLInputElement;
    setForm({ ...form, [name]: input.type === 'checkbox' ? input.checked : input.value });
  };

  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      const body: CreateBody = {
        template: form.template || undefined,
        timeout_secs: num(form.timeout_secs),
        ttl_secs: num(form.ttl_secs),
        envs: parsePairs(form.envs, 'Environment'),
        labels: parsePairs(form.labels, 'Labels'),
        resources: { cpus: num(form.cpus), memory_mb: num(form.memory_mb), disk_mb: num(form.disk_mb) },
        network:
          form.egress || form.allow.trim()
            ? {
                egress: (form.egress || undefined) as 'allow' | 'deny' | undefined,
                allow: form.allow.trim() ? form.allow.split(/[\s,]+/).filter(Boolean) : undefined,
              }
            : undefined,
        auto_checkpoint: form.auto_checkpoint || undefined,
        auto_wake: form.auto_wake || undefined,
      };
      onCreated(await api.post<Sandbox>('/v1/sandboxes', body));
    });
  };

  const names = templates.data?.items.map((t) => t.name) ?? [];
  if (!names.includes('base')) names.unshift('base');
  return (
    <form class="card create-form" onSubmit={submit} aria-label="New sandbox">
      <div class="grid">
        <Field label="Template">
          <select name="template" value={form.template} onChange={set('template')}>
            {names.map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </Field>
        <Field label="CPUs">
          <input name="cpus" inputMode="decimal" placeholder="1" value={form.cpus} onInput={set('cpus')} />
        </Field>
        <Field label="Memory (MiB)">
          <input name="memory_mb" inputMode="numeric" placeholder="512" value={form.memory_mb} onInput={set('memory_mb')} />
        </Field>
        <Field label="Disk (MiB)">
          <input name="disk_mb" inputMode="numeric" placeholder="server default" value={form.disk_mb} onInput={set('disk_mb')} />
        </Field>
        <Field label="Idle timeout (s)">
          <input name="timeout_secs" inputMode="numeric" placeholder="300" value={form.timeout_secs} onInput={set('timeout_secs')} />
        </Field>
        <Field label="Lifetime (s)" hint="Deleted after this long; empty: never.">
          <input name="ttl_secs" inputMode="numeric" value={form.ttl_secs} onInput={set('ttl_secs')} />
        </Field>
        <Field label="Network egress">
          <select name="egress" value={form.egress} onChange={set('egress')}>
            <option value="">server default</option>
            <option value="allow">allow</option>
            <option value="deny">deny</option>
          </select>
        </Field>
        <Field label="Allowed hosts" hint="With egress deny: these only.">
          <input name="allow" placeholder="pypi.org, 10.0.0.0/8" value={form.allow} onInput={set('allow')} />
        </Field>
      </div>
      <div class="grid">
        <Field label="Environment" hint="KEY=VALUE, one per line.">
          <textarea name="envs" rows={3} value={form.envs} onInput={set('envs')} />
        </Field>
        <Field label="Labels" hint="key=value, one per line.">
          <textarea name="labels" rows={3} value={form.labels} onInput={set('labels')} />
        </Field>
      </div>
      <div class="checks">
        <label>
          <input type="checkbox" name="auto_checkpoint" checked={form.auto_checkpoint} onChange={set('auto_checkpoint')} /> Checkpoint after every
          command
        </label>
        <label>
          <input type="checkbox" name="auto_wake" checked={form.auto_wake} onChange={set('auto_wake')} /> Wake on use when hibernated
        </label>
      </div>
      <ErrorBox error={error} />
      <Button type="submit" kind="primary" busy={busy}>
        Create
      </Button>
    </form>
  );
}
