// Typed errors. Every failure the server reports is an RFC 7807 problem with
// a stable `code`; the SDK turns it into a WarrenError (or a subclass chosen
// by that code) so callers can branch with `instanceof` or on `err.code`.

/**
 * Stable problem codes the server and agents answer with. New codes may be
 * added at any time, so treat unknown strings as possible.
 */
export type ErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'sandbox_not_found'
  | 'process_not_found'
  | 'file_not_found'
  | 'checkpoint_not_found'
  | 'template_not_found'
  | 'tenant_not_found'
  | 'key_not_found'
  | 'preview_not_found'
  | 'agent_not_found'
  | 'session_not_found'
  | 'request_not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'edit_conflict'
  | 'already_exists'
  | 'directory_not_empty'
  | 'is_a_directory'
  | 'not_a_directory'
  | 'insufficient_storage'
  | 'process_not_running'
  | 'agent_not_installed'
  | 'session_ended'
  | 'invalid_transcript'
  | 'payload_too_large'
  | 'range_not_satisfiable'
  | 'unsupported_media_type'
  | 'path_not_allowed'
  | 'too_many_requests'
  | 'quota_exceeded'
  | 'patch_failed'
  | 'desktop_not_running'
  | 'window_not_found'
  | 'recording_not_found'
  | 'timeout'
  | 'unavailable'
  | 'internal'
  /** Client side: the server could not be reached or the connection broke. */
  | 'connection_error'
  /** Client side: `agent.install` reported an error. */
  | 'install_failed'
  | (string & {});

/** The fields of an RFC 7807 problem, as a WarrenError carries them. */
export interface ProblemDetails {
  /** Stable machine-readable code, e.g. `sandbox_not_found`. */
  code: ErrorCode;
  /** HTTP status; absent for failures on the client side (no answer). */
  status?: number;
  /** What went wrong, for people. */
  detail: string;
  /** Short summary of the problem type. */
  title?: string;
  /** URI of the problem type. */
  type?: string;
  /** The underlying error, if any. */
  cause?: unknown;
}

/** Base class of every error the SDK throws for a failed call. */
export class WarrenError extends Error {
  /** Stable machine-readable code, e.g. `sandbox_not_found`. */
  readonly code: ErrorCode;
  /** HTTP status of the answer; `undefined` when no answer came. */
  readonly status: number | undefined;
  /** What went wrong, for people. */
  readonly detail: string;
  /** Short summary of the problem type. */
  readonly title: string | undefined;
  /** URI of the problem type. */
  readonly type: string | undefined;

  /** Builds an error from problem details. */
  constructor(problem: ProblemDetails) {
    super(`${problem.detail} (${problem.code}${problem.status ? `, HTTP ${problem.status}` : ''})`, {
      cause: problem.cause,
    });
    this.name = new.target.name;
    this.code = problem.code;
    this.status = problem.status;
    this.detail = problem.detail;
    this.title = problem.title;
    this.type = problem.type;
  }
}

/** 400: the request was malformed or a value is invalid. */
export class InvalidRequestError extends WarrenError {}
/** 401: no API key, or a wrong one. */
export class AuthError extends WarrenError {}
/** 403: the key is valid but may not do this (or a path is not allowed). */
export class ForbiddenError extends WarrenError {}
/** 404: the sandbox, process, file, checkpoint, template, agent or session does not exist. */
export class NotFoundError extends WarrenError {}
/** 409: the call conflicts with the current state. */
export class ConflictError extends WarrenError {}
/** 409 `edit_conflict`: `files.edit` found its old text zero or several times. */
export class EditConflictError extends ConflictError {}
/**
 * 422 `patch_failed`: a patch of the checkpoint a sandbox is made from
 * failed (the sandbox is destroyed); `detail` has its exit code and output.
 */
export class PatchFailedError extends WarrenError {}
/** 413: the body is over the limit. */
export class PayloadTooLargeError extends WarrenError {}
/** 429: a rate limit or a tenant quota was reached; retry later. */
export class RateLimitError extends WarrenError {}
/** 504, or no answer in the client's request timeout. */
export class TimeoutError extends WarrenError {}
/** 503: the server or the sandbox's agent is unavailable. */
export class UnavailableError extends WarrenError {}
/** No answer: the server could not be reached or the connection broke. */
export class ConnectionError extends WarrenError {}

type ErrorClass = new (problem: ProblemDetails) => WarrenError;

const BY_CODE: Record<string, ErrorClass> = {
  invalid_request: InvalidRequestError,
  is_a_directory: InvalidRequestError,
  not_a_directory: InvalidRequestError,
  invalid_transcript: InvalidRequestError,
  unauthorized: AuthError,
  forbidden: ForbiddenError,
  path_not_allowed: ForbiddenError,
  edit_conflict: EditConflictError,
  agent_not_installed: ConflictError,
  session_ended: ConflictError,
  patch_failed: PatchFailedError,
  payload_too_large: PayloadTooLargeError,
  too_many_requests: RateLimitError,
  quota_exceeded: RateLimitError,
  timeout: TimeoutError,
  unavailable: UnavailableError,
  connection_error: ConnectionError,
};

const BY_STATUS: Record<number, ErrorClass> = {
  400: InvalidRequestError,
  401: AuthError,
  403: ForbiddenError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  429: RateLimitError,
  503: UnavailableError,
  504: TimeoutError,
};

/** The most specific error class for a problem: by code, then by status. */
export function errorFromProblem(problem: ProblemDetails): WarrenError {
  const cls =
    BY_CODE[problem.code] ??
    (problem.code.endsWith('_not_found') ? NotFoundError : undefined) ??
    (problem.status !== undefined ? BY_STATUS[problem.status] : undefined) ??
    WarrenError;
  return new cls(problem);
}

/** Reads a problem body (or any error body) of a failed response. */
export async function errorFromResponse(response: Response): Promise<WarrenError> {
  const text = await response.text().catch(() => '');
  let body: Record<string, unknown> | undefined;
  if (text) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
    } catch {
      // Not JSON (a proxy's HTML page, say): the text is the detail.
    }
  }
  const str = (value: unknown) => (typeof value === 'string' ? value : undefined);
  return errorFromProblem({
    code: str(body?.code) ?? codeForStatus(response.status),
    status: response.status,
    detail: str(body?.detail) ?? (text.trim().slice(0, 500) || response.statusText || 'request failed'),
    title: str(body?.title),
    type: str(body?.type),
  });
}

function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return 'invalid_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 413:
      return 'payload_too_large';
    case 429:
      return 'too_many_requests';
    case 503:
      return 'unavailable';
    case 504:
      return 'timeout';
    default:
      return 'internal';
  }
}
