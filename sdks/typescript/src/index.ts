// @warren-sh/sdk: the TypeScript client of Warren, the self-hosted sandbox
// platform for AI agents.

export { Sandbox, SandboxPaginator, CREATE_TIMEOUT_MS } from './sandbox.js';
export type { SandboxOptions, SandboxListOptions, SandboxUpdate } from './sandbox.js';
export { SandboxEvents } from './events.js';
export type { SandboxEvent, SandboxEventsOptions } from './events.js';
export { Exec, CommandHandle } from './exec.js';
export type {
  ProcessOptions,
  RunOptions,
  StartOptions,
  OutputHandlers,
  ProcessResult,
  OutputChunk,
  Signal,
} from './exec.js';
export { Files, WatchHandle } from './files.js';
export type {
  WriteData,
  ReadOptions,
  WriteOptions,
  WriteEntry,
  WriteInfo,
  EntryInfo,
  FileStat,
  FilesystemEvent,
  WatchOptions,
  UploadSource,
} from './files.js';
export { Pty, PtyHandle } from './pty.js';
export type { PtyCreateOptions, PtyHandlers, PtyResult } from './pty.js';
export { Checkpoints } from './checkpoints.js';
export { Agent, AgentSession } from './agent.js';
export type {
  AgentKind,
  AgentInfo,
  AgentCapabilities,
  AgentEvent,
  AgentEventType,
  AgentStartOptions,
  AgentAttachOptions,
  EventsOptions,
  InstallOptions,
  InstallProgress,
  SessionInfo,
  SessionState,
  SessionEnd,
  SessionHandlers,
  PermissionMode,
  PermissionDecision,
  Item,
  ItemContent,
  ItemData,
  ItemDeltaData,
  PermissionRequestedData,
  PermissionResolvedData,
  QuestionRequestedData,
  QuestionResolvedData,
  UsageData,
  SessionEndedData,
} from './agent.js';
export { Desktop, DesktopStream } from './desktop.js';
export type {
  DesktopStartOptions,
  DesktopStatus,
  DesktopProcess,
  ScreenshotOptions,
  Region,
  MouseButton,
  Window,
  WindowList,
  LaunchOptions,
  Launched,
  Recording,
  RecordingOptions,
  StreamUrl,
  StreamUrlOptions,
} from './desktop.js';
export { Browser } from './browser.js';
export type {
  BrowserStartOptions,
  BrowserStatus,
  BrowserPage,
  BrowserElement,
  BrowserSnapshot,
  NavigateOptions,
  BrowserScreenshotOptions,
  CdpEndpoint,
} from './browser.js';
export { Admin, Templates } from './admin.js';
export type { TemplateInfo, Tenant, NewTenant, ApiKeyCreated, ApiKeyInfo, KeyFormat, CreateKeyOptions } from './admin.js';
export type { RestoreOptions, PatchOptions, ExportOptions, ImportData, DiffOptions } from './checkpoints.js';
export { packTar, unpackTar } from './tar.js';
export type { TarEntry, TarEntryType, UploadEntry } from './tar.js';
export {
  WarrenError,
  InvalidRequestError,
  AuthError,
  ForbiddenError,
  NotFoundError,
  ConflictError,
  EditConflictError,
  PatchFailedError,
  PayloadTooLargeError,
  RateLimitError,
  TimeoutError,
  UnavailableError,
  ConnectionError,
} from './errors.js';
export type { ErrorCode, ProblemDetails } from './errors.js';
export { DEFAULT_API_URL, DEFAULT_REQUEST_TIMEOUT_MS } from './config.js';
export type { ConnectionOptions } from './config.js';
export type { CallOptions } from './http.js';
export type { WebSocketConstructor, WebSocketLike } from './ws.js';
export type {
  SandboxInfo,
  SandboxState,
  SandboxResources,
  NetworkPolicy,
  CommandResult,
  ProcessInfo,
  CheckpointInfo,
  CheckpointDiff,
  DiffChange,
  DiffItem,
  DiffKind,
  FileDiff,
  Patch,
} from './types.js';

/** Version of this SDK. */
export const VERSION = '0.1.0';
