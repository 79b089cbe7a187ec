// Public (camelCase) shapes of what the API returns, and their conversion
// from the snake_case wire bodies. Maps such as metadata, labels and env
// are user data: their keys are never renamed.

/** Lifecycle state of a sandbox. */
export type SandboxState = 'creating' | 'running' | 'stopped' | 'hibernated' | 'error' | 'destroyed';

/** CPU, memory and process limits of a sandbox. */
export interface SandboxResources {
  /** CPUs (fractional allowed). */
  cpus: number;
  /** Memory limit in MiB. */
  memoryMb: number;
  /** Maximum number of tasks. */
  pids: number;
  /** Most its disk may take beyond its template, MiB; `null`: no limit. */
  diskMb: number | null;
}

/** Outbound network policy. */
export interface NetworkPolicy {
  /** `allow` or `deny`. */
  egress: 'allow' | 'deny';
}

/** A sandbox as the server describes it. */
export interface SandboxInfo {
  /** `sbx_…`. */
  sandboxId: string;
  state: SandboxState;
  /** The template its disk was made from. */
  template: string;
  /** Owning tenant; `null` for sandboxes created with the admin key. */
  tenantId: string | null;
  createdAt: Date;
  /** When it will be destroyed (creation + ttl + extensions); `null` without a ttl. */
  expiresAt: Date | null;
  /** Last API activity; the idle timeout counts from here. */
  lastActiveAt: Date;
  /** Idle timeout in seconds (0: never stopped for idleness). */
  timeoutSecs: number;
  /** Lifetime in seconds, if any. */
  ttlSecs: number | null;
  metadata: Record<string, string>;
  labels: Record<string, string>;
  resources: SandboxResources;
  network: NetworkPolicy;
  /** Whether a checkpoint is taken after every `exec.run`. */
  autoCheckpoint: boolean;
  /** How many automatic checkpoints are kept, newest first. */
  autoCheckpointKeep: number;
  /** Whether a call that needs the sandbox's agent wakes it while it is hibernated. */
  autoWake: boolean;
  /** The checkpoint its disk was made from, if any. */
  fromCheckpoint: string | null;
}

/** @internal Wire shape of a sandbox. */
export interface WireSandbox {
  id: string;
  state: SandboxState;
  template: string;
  tenant_id: string | null;
  created_at: string;
  expires_at: string | null;
  last_active_at: string;
  timeout_secs: number;
  ttl_secs: number | null;
  metadata: Record<string, string>;
  labels: Record<string, string>;
  resources: { cpus: number; memory_mb: number; pids: number; disk_mb?: number | null };
  network: NetworkPolicy;
  auto_checkpoint: boolean;
  auto_checkpoint_keep: number;
  auto_wake: boolean;
  from_checkpoint?: string | null;
}

/** A date from an RFC 3339 string (`null` stays `null`). */
export function toDate(value: string): Date;
export function toDate(value: string | null | undefined): Date | null;
export function toDate(value: string | null | undefined): Date | null {
  return value ? new Date(value) : null;
}

/** @internal */
export function toSandboxInfo(w: WireSandbox): SandboxInfo {
  return {
    sandboxId: w.id,
    state: w.state,
    template: w.template,
    tenantId: w.tenant_id ?? null,
    createdAt: toDate(w.created_at),
    expiresAt: toDate(w.expires_at),
    lastActiveAt: toDate(w.last_active_at),
    timeoutSecs: w.timeout_secs,
    ttlSecs: w.ttl_secs ?? null,
    metadata: w.metadata ?? {},
    labels: w.labels ?? {},
    resources: {
      cpus: w.resources?.cpus,
      memoryMb: w.resources?.memory_mb,
      pids: w.resources?.pids,
      diskMb: w.resources?.disk_mb ?? null,
    },
    network: w.network,
    autoCheckpoint: w.auto_checkpoint,
    autoCheckpointKeep: w.auto_checkpoint_keep,
    autoWake: w.auto_wake ?? false,
    fromCheckpoint: w.from_checkpoint ?? null,
  };
}

/** Result of a command run to completion. A non-zero exit is a result, not an error. */
export interface CommandResult {
  /** Exit status, or `null` when a signal ended the process. */
  exitCode: number | null;
  /** Number of the signal that ended it, if any. */
  signal: number | null;
  stdout: string;
  stderr: string;
  /** Whether the timeout fired and the process group was killed. */
  timedOut: boolean;
  /** Whether stdout was cut at `maxOutputBytes`. */
  stdoutTruncated: boolean;
  /** Whether stderr was cut at `maxOutputBytes`. */
  stderrTruncated: boolean;
  /** Wall time from spawn to exit. */
  durationMs: number;
  /** Id of the checkpoint taken after the command (`autoCheckpoint` sandboxes only). */
  checkpoint?: string;
  /** Why no checkpoint could be taken after the command (`autoCheckpoint` sandboxes only). */
  checkpointError?: string;
}

/** @internal */
export interface WireRunResponse {
  exit_code: number | null;
  signal: number | null;
  stdout: string;
  stderr: string;
  timed_out: boolean;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  duration_ms: number;
  checkpoint?: string | null;
  checkpoint_error?: string | null;
}

/** @internal */
export function toCommandResult(w: WireRunResponse): CommandResult {
  const out: CommandResult = {
    exitCode: w.exit_code,
    signal: w.signal,
    stdout: w.stdout,
    stderr: w.stderr,
    timedOut: w.timed_out,
    stdoutTruncated: w.stdout_truncated,
    stderrTruncated: w.stderr_truncated,
    durationMs: w.duration_ms,
  };
  if (w.checkpoint) out.checkpoint = w.checkpoint;
  if (w.checkpoint_error) out.checkpointError = w.checkpoint_error;
  return out;
}

/** A managed (background) process in a sandbox. */
export interface ProcessInfo {
  /** `proc_…`: the handle the API uses. */
  id: string;
  /** Process id inside the sandbox (also its process group and session). */
  pid: number;
  /** The shell command, when started from a string. */
  cmd?: string;
  /** The argv, when started from an array. */
  argv?: string[];
  /** Whether it runs on a pseudo-terminal. */
  tty: boolean;
  state: 'running' | 'exited';
  exitCode: number | null;
  signal: number | null;
  startedAt: Date;
  exitedAt: Date | null;
  /** Byte cursor one past the last output byte so far. */
  outputCursor: number;
}

/** @internal */
export interface WireProcess {
  id: string;
  pid: number;
  cmd?: string;
  argv?: string[];
  tty: boolean;
  state: 'running' | 'exited';
  exit_code: number | null;
  signal: number | null;
  started_at: string;
  exited_at: string | null;
  output_cursor: number;
}

/** @internal */
export function toProcessInfo(w: WireProcess): ProcessInfo {
  const out: ProcessInfo = {
    id: w.id,
    pid: w.pid,
    tty: w.tty,
    state: w.state,
    exitCode: w.exit_code,
    signal: w.signal,
    startedAt: toDate(w.started_at),
    exitedAt: toDate(w.exited_at),
    outputCursor: w.output_cursor,
  };
  if (w.cmd !== undefined) out.cmd = w.cmd;
  if (w.argv !== undefined) out.argv = w.argv;
  return out;
}

/** A checkpoint: a read-only snapshot of a sandbox's disk. */
export interface CheckpointInfo {
  /** `ckpt_…`. */
  id: string;
  name: string;
  /** The sandbox it was taken of. */
  sandboxId: string;
  createdAt: Date;
  /** The command it follows (automatic checkpoints). */
  command?: string;
  /** Exit code of that command (automatic checkpoints). */
  exitCode?: number | null;
  /** Owning tenant; `null` for checkpoints of the admin key's sandboxes. */
  tenantId: string | null;
  /** The template the sandbox's disk was made from. */
  template: string;
  /** Whether it was taken automatically after an `exec.run` (`autoCheckpoint`). */
  auto: boolean;
  /** Whether it came from `Checkpoints.import` rather than a sandbox here. */
  imported: boolean;
}

/** @internal */
export interface WireCheckpoint {
  id: string;
  name: string;
  sandbox_id: string;
  created_at: string;
  command?: string | null;
  exit_code?: number | null;
  tenant_id?: string | null;
  template: string;
  auto?: boolean;
  imported?: boolean;
}

/** @internal */
export function toCheckpointInfo(w: WireCheckpoint): CheckpointInfo {
  const out: CheckpointInfo = {
    id: w.id,
    name: w.name,
    sandboxId: w.sandbox_id,
    createdAt: toDate(w.created_at),
    tenantId: w.tenant_id ?? null,
    template: w.template,
    auto: w.auto ?? false,
    imported: w.imported ?? false,
  };
  if (w.command != null) out.command = w.command;
  if (w.exit_code !== undefined) out.exitCode = w.exit_code;
  return out;
}

/** How a path changed between two disks (`unchanged` only in a file diff). */
export type DiffChange = 'added' | 'modified' | 'deleted' | 'unchanged';

/** What a changed path is (on the newer side when both have it). */
export type DiffKind = 'file' | 'dir' | 'symlink' | 'other';

/** One changed path of `checkpoints.diff`. */
export interface DiffItem {
  /** Absolute, as the sandbox sees it (`/home/user/x.txt`). */
  path: string;
  change: DiffChange;
  /** Bytes of a file or of a symlink's target; 0 for a directory. */
  size: number;
  kind: DiffKind;
}

/** What changed since a checkpoint: `checkpoints.diff`. */
export interface CheckpointDiff {
  /** Sorted by path; an added or deleted directory brings its contents along. */
  items: DiffItem[];
  /** Whether the list is incomplete (more than 10,000 changes, or the server's time limit). */
  truncated: boolean;
}

/** One file's unified diff: `checkpoints.diffFile`. */
export interface FileDiff {
  path: string;
  change: DiffChange;
  /** Whether either side is not text; `unified` is then `null`. */
  binary: boolean;
  /** `--- a/…`, `+++ b/…` and hunks with 3 lines of context; empty when unchanged. */
  unified: string | null;
  /** Whether either side is longer than the 1 MiB compared. */
  truncated: boolean;
}

/** A script attached to a checkpoint: it runs in every sandbox made from the checkpoint. */
export interface Patch {
  /** `pat_…`. */
  id: string;
  /** The checkpoint it belongs to. */
  checkpointId: string;
  name: string | null;
  /** The shell script (run with `sh -c` as root). */
  script: string;
  /** How long it may run, in milliseconds. */
  timeoutMs: number;
  createdAt: Date;
}

/** @internal */
export interface WirePatch {
  id: string;
  checkpoint_id: string;
  name?: string | null;
  script: string;
  timeout_ms: number;
  created_at: string;
}

/** @internal */
export function toPatch(w: WirePatch): Patch {
  return {
    id: w.id,
    checkpointId: w.checkpoint_id,
    name: w.name ?? null,
    script: w.script,
    timeoutMs: w.timeout_ms,
    createdAt: toDate(w.created_at),
  };
}

/** A list body: `{items, next_cursor}` (some routes answer a bare array). */
export type WireList<T> = { items: T[]; next_cursor?: string | null } | T[];

/** @internal The items of a list body. */
export function listItems<T>(body: WireList<T>): T[] {
  return Array.isArray(body) ? body : body.items;
}
