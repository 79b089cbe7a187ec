// Wire types of the API the console uses (see crates/warren-api).

/** An RFC 7807 problem document. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
}

export type SandboxState = 'creating' | 'running' | 'stopped' | 'hibernated' | 'error' | 'destroyed';
export const SANDBOX_STATES: SandboxState[] = ['creating', 'running', 'stopped', 'hibernated', 'error'];

export interface Sandbox {
  id: string;
  state: SandboxState;
  template: string;
  tenant_id?: string | null;
  created_at: string;
  expires_at?: string | null;
  last_active_at: string;
  timeout_secs: number;
  ttl_secs?: number | null;
  metadata: Record<string, string>;
  labels: Record<string, string>;
  resources: { cpus: number; memory_mb: number; pids: number; disk_mb?: number | null };
  network: { egress: 'allow' | 'deny'; allow: string[] };
  auto_checkpoint: boolean;
  auto_checkpoint_keep: number;
  auto_wake: boolean;
  from_checkpoint?: string | null;
}

export interface CreateSandbox {
  template?: string;
  timeout_secs?: number;
  ttl_secs?: number;
  envs?: Record<string, string>;
  labels?: Record<string, string>;
  resources?: { cpus?: number; memory_mb?: number; pids?: number; disk_mb?: number };
  network?: { egress?: 'allow' | 'deny'; allow?: string[] };
  auto_checkpoint?: boolean;
  auto_wake?: boolean;
}

/** One event of `GET /v1/events`. */
export interface SandboxEvent {
  sandbox_id: string;
  state: SandboxState;
  time: string;
  tenant_id?: string;
}

export interface Template {
  name: string;
  created_at: string;
}

export interface Checkpoint {
  id: string;
  name: string;
  sandbox_id: string;
  created_at: string;
  template: string;
  command?: string | null;
  exit_code?: number | null;
  auto: boolean;
}

export interface DiffItem {
  path: string;
  change: 'added' | 'modified' | 'deleted';
  size?: number;
  kind?: 'file' | 'dir' | 'symlink';
}

export interface Diff {
  items: DiffItem[];
  truncated: boolean;
}

export interface FileDiff {
  path: string;
  change: string;
  binary: boolean;
  unified: string;
  truncated: boolean;
}

export interface FileEntry {
  name: string;
  path: string;
  size: number;
  is_dir: boolean;
  is_symlink: boolean;
  mode: number;
  modified_at: string;
}

export interface ProcessInfo {
  id: string;
  pid: number;
  cmd?: string | null;
  argv?: string[] | null;
  tty: boolean;
  state: 'running' | 'exited';
  exit_code?: number | null;
  signal?: number | null;
  started_at: string;
  exited_at?: string | null;
}

export interface Preview {
  id: string;
  sandbox_id: string;
  port: number;
  auth: string;
  url: string;
  path_url: string;
  token?: string | null;
  created_at: string;
}
