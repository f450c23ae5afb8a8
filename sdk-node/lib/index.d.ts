// The Chronos SDK for Node: types of what lib/index.js exports.

export type JobStatus = 'scheduled' | 'queued' | 'running' | 'completed' | 'failed' | 'cancelled'
export type TimeUnit = 'second' | 'minute' | 'hour' | 'day' | 'week'
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

export interface HttpTarget {
  url: string
  method?: HttpMethod
  headers?: Record<string, string>
}

export type Delivery =
  | { type: 'pull' }
  | { type: 'push'; http: HttpTarget; signing_secret_id?: string }

/** `POST /v1/jobs`. Timestamps are RFC 3339 strings. */
export interface CreateJob {
  name: string
  handler: string
  payload?: unknown
  delay?: { value: number; unit: TimeUnit }
  scheduled_for?: string
  idempotency_key?: string
  timeout?: number
  max_retries?: number
  /** Must name one of the organization's queues (default `default`). */
  queue?: string
  /** Groups the job with others of its queue for the queue's per-key limits: 1 to 255 characters. */
  concurrency_key?: string
  priority?: number
  delivery?: Delivery
}

export interface Job {
  id: string
  name: string
  handler: string | null
  payload: unknown
  status: JobStatus
  queue: string
  concurrency_key: string | null
  priority: number
  delivery: Delivery
  run_at: string
  attempt: number
  max_retries: number
  timeout: number
  schedule_id: string | null
  /** For a schedule's fire: the due time it was made for. */
  fire_at?: string
  idempotency_key: string | null
  /** Why a `scheduled` job is held: `endpoint_disabled` while its push endpoint is disabled. */
  held_reason?: string
  /** The fan-out a delivery is part of. */
  fan_out_id?: string
  /** The queue a delivery's outcome is published to. */
  callback_queue_id?: string
  result: unknown
  last_error: string | null
  created_at: string
  updated_at: string
  finished_at: string | null
}

export interface Execution {
  id: string
  job_id: string
  attempt: number
  status: 'running' | 'completed' | 'failed' | 'timed_out' | 'released'
  worker_id: string | null
  http_status: number | null
  response_body: string | null
  response_truncated: boolean
  /** `utf-8`, or `base64` for an answer that was not UTF-8; present with a body. */
  response_body_encoding?: 'utf-8' | 'base64'
  error: string | null
  duration_ms: number | null
  started_at: string
  finished_at: string | null
}

export interface List<T> {
  data: T[]
  next_cursor: string | null
}

/** One item of `createJobs`: the job, or why it was refused. */
export type BatchItem = { job: Job } | { error: { code: string; message: string; field?: string } }

export interface JobQuery {
  status?: JobStatus[]
  handler?: string
  queue?: string
  /** A schedule's id, or `'null'` for one-off jobs only. */
  scheduleId?: string
  limit?: number
  cursor?: string
}

export interface PageQuery {
  limit?: number
  cursor?: string
}

interface MessageFields {
  method?: HttpMethod
  headers?: Record<string, string>
  body?: string
  delay?: number
  scheduled_at?: string
  deduplication_id?: string
  retries?: number
  signing_secret_id?: string
  /** Groups the message with others of the `default` queue for its per-key limits: 1 to 255 characters. */
  concurrency_key?: string
  /** The queue (its id or name) each delivery's outcome is published to once it ends for good (see `Callback`). */
  callback_queue_id?: string
  /** `every_attempt`: each failed attempt with retries to follow calls back too (`final: false`). Default `outcome`. */
  callback_on?: CallbackOn
}

/**
 * `POST /v1/messages`: a one-shot HTTP request to `url`, or one to each
 * member of the target group `default_target_group_id` (a fan-out).
 */
export type CreateMessage =
  | (MessageFields & { url: string; default_target_group_id?: never })
  | (MessageFields & { default_target_group_id: string; url?: never })

export interface MessageAccepted {
  message_id: string
  scheduled_at: string
}

/** The answer to a publish that fanned out across a target group: one message per member. */
export interface FanOutAccepted {
  fan_out: true
  fan_out_id: string
  /** One per member, in the members' order. */
  message_ids: string[]
  count: number
  queue: string
  scheduled_at: string
}

/** What `sendMessage` resolves to: one message, or a fan-out (`'fan_out' in answer`). */
export type MessagePublished = FanOutAccepted | MessageAccepted

export type QueueOrdering = 'fifo' | 'lifo'
/** What a job that dies does to its queue. */
export type FailureMode = 'continue' | 'block' | 'pause'
export type QueueState = 'active' | 'paused'

/** `POST /v1/queues` (see docs/queues.md): `name` and the settings to change from the defaults. */
export interface CreateQueue {
  /** 1 to 128 letters, digits, `-`, `_`, `.` or `:`; can't change. */
  name: string
  /** Jobs running at once, 1 to 100 (default 1: strictly in order); `null`: no limit. */
  concurrency?: number | null
  /** Retries of a job that doesn't set its own `max_retries` (default 3). */
  retries?: number
  ordering?: QueueOrdering
  failure_mode?: FailureMode
  rate_limit?: number
  rate_period_seconds?: number
  key_concurrency?: number
  key_rate_limit?: number
  key_rate_period_seconds?: number
  signing_secret_id?: string
  /** Where a message published without a `url` goes. */
  default_target_url?: string
  /** Or the target group (its id) such a message fans out across. */
  default_target_group_id?: string
  /** The queue (its id or name) the outcomes of this queue's messages are published to. */
  callback_queue_id?: string
  /** `every_attempt`: this queue's messages call back after each failed attempt too, unless they say otherwise. */
  callback_on?: CallbackOn
}

/** `PATCH /v1/queues/{name}`: only the fields given change; `null` removes a limit or a default. */
export interface UpdateQueue {
  concurrency?: number | null
  retries?: number
  ordering?: QueueOrdering
  failure_mode?: FailureMode
  rate_limit?: number | null
  rate_period_seconds?: number | null
  key_concurrency?: number | null
  key_rate_limit?: number | null
  key_rate_period_seconds?: number | null
  signing_secret_id?: string | null
  default_target_url?: string | null
  default_target_group_id?: string | null
  callback_queue_id?: string | null
  callback_on?: CallbackOn
}

/** What a queue holds now (`getQueue` only). */
export interface QueueStats {
  running: number
  queued: number
  scheduled: number
  oldest_queued_at: string | null
  /** A queue of one slot whose next job's handler no connected worker serves: that handler. */
  waiting_for_handler: string | null
}

/** A queue, as every queue route answers it. */
export interface Queue {
  id: string
  name: string
  concurrency: number | null
  max_retries: number
  ordering: QueueOrdering
  failure_mode: FailureMode
  status: QueueState
  rate_limit: number | null
  rate_period_seconds: number | null
  key_concurrency: number | null
  key_rate_limit: number | null
  key_rate_period_seconds: number | null
  signing_secret_id: string | null
  default_target_url: string | null
  default_target_group_id: string | null
  callback_queue_id: string | null
  callback_on: CallbackOn
  blocked: boolean
  blocked_message_count: number
  created_at: string
  updated_at: string
  /** `getQueue` only. */
  stats?: QueueStats
  /** On create, when `default_target_url`'s domain is not verified and the plan requires it: that target takes ten jobs a day until it is. */
  warning?: string
}

/** `POST /v1/queues/{name}/messages`: `POST /v1/messages`'s fields but `retries` and `signing_secret_id`, which come from the queue. */
export interface PublishMessage {
  /** The queue's `default_target_url` when left out. */
  url?: string
  method?: HttpMethod
  headers?: Record<string, string>
  body?: string
  delay?: number
  scheduled_at?: string
  deduplication_id?: string
  /** Groups the message with the queue's others for its per-key limits: 1 to 255 characters. */
  concurrency_key?: string
  /** The queue (its id or name) each delivery's outcome is published to; the queue's own when left out. */
  callback_queue_id?: string
  /** `every_attempt`: each failed attempt with retries to follow calls back too (`final: false`). Default `outcome`. */
  callback_on?: CallbackOn
  /** A target group (its id) to fan out across instead of `url` and the queue's defaults. */
  default_target_group_id?: string
}

export interface QueueMessageAccepted {
  message_id: string
  queue: string
  scheduled_at: string
}

/** What `publish` resolves to: one message, or a fan-out (`'fan_out' in answer`). */
export type QueuePublished = FanOutAccepted | QueueMessageAccepted

/** `createTargetGroup`: a named set of endpoints a publish fans out to. */
export interface CreateTargetGroup {
  /** Unique in the organization: 1 to 200 characters. */
  name: string
}

export interface TargetGroup {
  id: string
  name: string
  created_at: string
  updated_at: string
}

/** `addMember`: an endpoint of a target group. */
export interface CreateMember {
  /** An `https` URL (plain `http` only where the server allows private targets). */
  target_url: string
  method?: HttpMethod
  /** Sent with every delivery to this member; they win over the message's. */
  headers?: Record<string, string>
}

export interface Member {
  id: string
  target_url: string
  method: HttpMethod
  /** Sensitive ones (`Authorization`, …) read `***redacted***`. */
  headers: Record<string, string>
  created_at: string
}

/** A fan-out's overall outcome: `running` until its last delivery ends. */
export type FanOutStatus = 'running' | 'all_succeeded' | 'partial' | 'all_failed'

/** One delivery of a fan-out. */
export interface FanOutResult {
  message_id: string
  target_url: string
  /** The delivery's status: `succeeded`, `failed` or `cancelled` once it ended; `scheduled`, `queued` or `running` before. */
  status: string
  http_status: number | null
}

/** `getFanOut`: a fan-out and each of its deliveries now. */
export interface FanOut {
  id: string
  target_group_id: string
  queue: string
  status: FanOutStatus
  count: number
  succeeded: number
  failed: number
  callback_queue_id: string | null
  created_at: string
  finished_at: string | null
  results: FanOutResult[]
}

export type CallbackStatus = 'succeeded' | 'failed'

/** A callback: one delivery's outcome, once it ended for good. */
/** Which ends of a delivery publish a callback. */
export type CallbackOn = 'outcome' | 'every_attempt'

export interface CallbackEvent {
  /** The delivery (its job id). */
  message_id: string
  fan_out_id: string | null
  status: CallbackStatus
  /** The target's answer to the last attempt; `null` if it got none. */
  http_status: number | null
  /** That answer's body, at most 64 KiB. */
  response_body: string | null
  /** `utf-8`, or `base64` for an answer that was not UTF-8. */
  response_body_encoding: string
  response_truncated: boolean
  attempts: number
  /** Why the last attempt failed; `null` when it succeeded. */
  error: string | null
  url: string
  method: HttpMethod
  created_at: string
  finished_at: string | null
  /** `true`: the delivery's outcome; `false`: a failed attempt with retries to follow (`callback_on: 'every_attempt'`). */
  final: boolean
}

/** A fan-out's group callback, once its last delivery ended. */
export interface GroupCallbackEvent {
  fan_out_id: string
  status: Exclude<FanOutStatus, 'running'>
  results: FanOutResult[]
}

/** What a callback queue delivers: tell them apart with `'results' in callback`. */
export type Callback = CallbackEvent | GroupCallbackEvent

/** `POST /v1/schedules`, in any of its shapes (see docs/schedules.md). */
export interface CreateSchedule {
  name: string
  handler?: string
  payload?: unknown
  interval?: { value: number; unit: TimeUnit }
  cron?: string
  schedule_type?: 'cron' | 'interval'
  schedule?: string
  timezone?: string
  delivery?: Delivery
  url?: string
  method?: HttpMethod
  headers?: Record<string, string>
  body?: string
  signing_secret_id?: string
  timeout?: number
  timeout_ms?: number
  max_retries?: number
  retries?: number
  queue?: string
  /** The key each fire's job carries for its queue's per-key limits: 1 to 255 characters. A PATCH can't remove it (`null` is absent); a PUT without it does. */
  concurrency_key?: string
  priority?: number
  catch_up?: 'skip' | 'one' | 'all'
  overlap?: 'allow' | 'skip' | 'wait'
  enabled?: boolean
  failure_notify?: boolean
}

export type ScheduleStatus = 'active' | 'paused' | 'archived'

/** A worker connected over WebSocket, as `GET /v1/workers` shows it. */
export interface ConnectedWorker {
  worker_id: string
  session_id: string
  handlers: string[]
  max_in_flight: number
  /** Jobs it holds now. */
  in_flight: number
  sdk: string
  connected_at: string
  last_heartbeat_at: string
}

/** The right to run one attempt of a job until `expires_at`. */
export interface Lease {
  token: string
  expires_at: string
}

/** A job handed to a worker, with its lease (`poll`). */
export interface LeasedJob {
  job: Job
  lease: Lease
}

/** `POST /v1/workers/poll`. */
export interface PollRequest {
  handlers: string[]
  /** 1 to 100 (default 1). */
  max_jobs?: number
  /** Wait up to this long for a job when none is due, 0 to 60 (default 0). */
  wait_seconds?: number
  /** A name for this worker, shown on its executions. */
  worker_id?: string
}

/** `POST /v1/leases/fail`. */
export interface FailRequest {
  token: string
  error?: string
  /** False: fail for good (default true). */
  retryable?: boolean
  /** Retry after this many seconds instead of the backoff. */
  retry_in?: number
}

/** A schedule as `/v1/schedules` answers: one shape, whichever request shape created it. */
export interface Schedule {
  id: string
  name: string
  status: ScheduleStatus
  cron: string | null
  interval: { value: number; unit: TimeUnit } | null
  timezone: string
  handler: string | null
  payload: unknown
  delivery: Delivery
  url: string | null
  method: HttpMethod | null
  headers: Record<string, string> | null
  body: string | null
  signing_secret_id: string | null
  timeout: number
  max_retries: number
  queue: string
  concurrency_key: string | null
  priority: number
  catch_up: 'skip' | 'one' | 'all'
  overlap: 'allow' | 'skip' | 'wait'
  failure_notify: boolean
  last_status: JobStatus | null
  last_run_at: string | null
  next_run_at: string | null
  next_fire_at: string | null
  created_at: string
  updated_at: string
  /** On create, when its push target's domain is not verified and the plan requires it: that target takes ten jobs a day until it is. */
  warning?: string
}

/** An error as the server sends it, e.g. in a skipped run. */
export interface ErrorDetail {
  code: string
  message: string
  field?: string
  /** `quota_exceeded` and `unverified_domain_limit`: the window spent, `day` or `month`. */
  window?: 'day' | 'month'
  limit?: number
  used?: number
  resets_at?: string
  /** `unverified_domain_limit`: the (registrable) domain whose daily ten are spent. */
  domain?: string
}

/** A fire of a schedule that made no job: its organization's quota was spent. */
export interface SkippedRun {
  id: string
  schedule_id: string
  /** The due time that was skipped. */
  fire_at: string
  /** What a create would have answered: `quota_exceeded` or `unverified_domain_limit`. */
  error: ErrorDetail
  created_at: string
}

/**
 * What a key (or a person's role) may do in its organization. `admin` may
 * do everything there; `jobs:write` includes `jobs:read`; `worker` reaches
 * only the worker routes; `monitors:write` signals and manages monitors.
 * `instance:admin` reaches no organization's data, but creates
 * organizations on a server whose signup is closed and manages any.
 */
export type Scope = 'admin' | 'jobs:read' | 'jobs:write' | 'worker' | 'monitors:write' | 'instance:admin'

/** A person's role in an organization: `viewer` reads, `member` also writes jobs and monitors, `admin` holds `admin`, `owner` also makes owners and deletes the organization. */
export type Role = 'viewer' | 'member' | 'admin' | 'owner'

/** `createOrg`. */
export interface CreateOrganization {
  name: string
  /** 2 to 63 lowercase letters, digits and hyphens, not starting with a hyphen; names it in URLs. */
  slug: string
}

/** `updateOrg`: only the fields given change. */
export interface UpdateOrganization {
  name?: string
  slug?: string
  /** A plan's name: the instance administrator's alone to change. */
  plan?: string
}

/** A plan's limits; `null` limits nothing. */
export interface Plan {
  name: string
  messages_per_day: number | null
  messages_per_month: number | null
  min_interval_seconds: number | null
  max_retries: number | null
  verify_domains: boolean
}

/** One window's count. */
export interface UsageWindow {
  used: number
  limit: number | null
  resets_at: string
}

/** `usage()`: the plan, and the UTC day's and month's counts. */
export interface Usage {
  plan: Plan
  day: UsageWindow
  month: UsageWindow
}

export interface Organization {
  id: string
  slug: string
  name: string
  created_at: string
  /** What it may use: `unlimited` until the operator gives it another. */
  plan: string
  /** The caller's role in it, when the caller is a person (never for a key). */
  role?: Role
}

/** `createApiKey`, `createOrgApiKey`. */
export interface CreateApiKey {
  /** A label for people: 1 to 255 characters. */
  name: string
  /** At least one (default `['admin']`); `instance:admin` only from a key that holds it. */
  scopes?: Scope[]
  /** When the key stops working (RFC 3339, in the future); never when left out. */
  expires_at?: string
  /** The only queues the key may use (1 to 100); every queue when left out. */
  queues?: string[]
}

/** An API key as listed: never its secret. */
export interface ApiKey {
  /** The public part of the key: `chrns_<id>_…`. */
  id: string
  name: string
  scopes: Scope[]
  created_at: string
  revoked_at: string | null
  expires_at: string | null
  /** When a request last used it (updated at most once a minute). */
  last_used_at: string | null
  /** The only queues it may use; every queue when `null`. */
  queues: string[] | null
}

/** The answer to creating a key: the only time `key` is shown. */
export interface CreatedApiKey extends ApiKey {
  /** The full key (`chrns_…`). Store it now: the server keeps only a hash. */
  key: string
}

/** The answer to `createOrg`: the organization and its first admin key, shown this once. */
export interface CreatedOrganization extends Organization {
  api_key: CreatedApiKey
}

/** Where a domain's proof stands: `lapsed` once its daily checks failed for a week. */
export type DomainStatus = 'pending' | 'verified' | 'lapsed'

/** A domain of the organization, with the two ways to prove it (either will do). */
export interface Domain {
  id: string
  /** The host name; verifying a registrable domain (`example.com`) covers its subdomains. */
  domain: string
  status: DomainStatus
  verification: {
    /** Serve `content` at `url` (`https://{domain}/.well-known/chronos-verification.txt`). */
    well_known: { url: string; content: string }
    /** Or publish a TXT record `name` (`_chronos-verification.{domain}`) holding `value`. */
    dns_txt: { name: string; type: 'TXT'; value: string }
  }
  /** The challenge the last passing check found. */
  method: 'well_known' | 'dns_txt' | null
  verified_at: string | null
  /** The last check, by `verifyDomain` or the daily one. */
  checked_at: string | null
  /** Why the last check failed, if it did. */
  last_error: string | null
  created_at: string
}

/** A person. */
export interface User {
  id: string
  email: string
  name: string | null
  created_at: string
}

/** A person's membership of an organization. */
export interface Membership {
  user_id: string
  email: string
  name: string | null
  role: Role
  joined_at: string
}

/** `createInvite`. */
export interface CreateInvite {
  email: string
  /** Default `member`; only an owner invites owners. */
  role?: Role
}

export type InviteStatus = 'pending' | 'accepted' | 'revoked' | 'expired'

/** An invite; its token is never shown again after the answer that created (or resent) it. */
export interface Invite {
  id: string
  email: string
  role: Role
  status: InviteStatus
  created_at: string
  expires_at: string
  accepted_at: string | null
  revoked_at: string | null
}

/** The answer to `createInvite` and `resendInvite`. */
export interface CreatedInvite extends Invite {
  /** The single-use link to hand over: `{public-url}/invite#<token>`. */
  url: string
  /** The token the link carries, for `acceptInvite`. */
  token: string
  /** Whether the server also e-mailed the link (it has a mail server, and the mail went). */
  mailed: boolean
}

/** `acceptInvite`: someone new gives a password (at least 10 characters, not a common one) and may give a name; someone with an account gives theirs. */
export interface AcceptInvite {
  token: string
  name?: string
  password?: string
}

/** The answer to `acceptInvite`. */
export interface InviteAccepted {
  user: User
  /** The organization, with the person's `role` in it. */
  organization: Organization
  /** The session's CSRF token (the session cookie is not kept by this client). */
  csrf_token: string
}

/** An error from the server (or the SDK), with the server's code. */
export declare class ChronosError extends Error {
  readonly name: 'ChronosError'
  /** The server's stable code, e.g. `not_found`, `validation_failed`. */
  readonly code: string
  /** The HTTP status, or null when no answer came. */
  readonly status: number | null
  /** The request field at fault, when the server named one. */
  readonly field: string | null
}

export interface ClientOptions {
  url: string
  apiKey: string
  /** How long one request may take, in seconds (default 30); `null`: no limit. */
  timeoutSeconds?: number | null
}

/** The Rust SDK's client; its methods in camelCase (sdk-rust/manifest.json). */
export declare class Client {
  constructor(options: ClientOptions)
  /** The server's base URL, as the client uses it (ending in `/`). */
  readonly baseUrl: string
  /** How long one request may take, in seconds; `null` for no limit. */
  readonly timeoutSeconds: number | null
  createJob(job: CreateJob): Promise<Job>
  createJobs(jobs: CreateJob[]): Promise<BatchItem[]>
  getJob(id: string): Promise<Job>
  listJobs(query?: JobQuery): Promise<List<Job>>
  cancelJob(id: string): Promise<Job>
  retryJob(id: string): Promise<Job>
  listExecutions(id: string, page?: PageQuery): Promise<List<Execution>>
  /** Sends a one-shot HTTP request, or fans one out across a target group. */
  sendMessage(message: CreateMessage): Promise<MessagePublished>
  /** Creates a queue (a key with the `admin` scope). */
  createQueue(queue: CreateQueue): Promise<Queue>
  /** One queue, with what it holds now (`stats`). */
  getQueue(name: string): Promise<Queue>
  /** Every queue of the organization, by name. */
  listQueues(): Promise<Queue[]>
  /** Changes the settings `patch` gives; `null` removes a limit or a default. */
  updateQueue(name: string, patch: UpdateQueue): Promise<Queue>
  /** Deletes a queue that holds no unfinished job; `force: true` cancels them first. */
  deleteQueue(name: string, options?: { force?: boolean }): Promise<void>
  /** Nothing more of the queue starts; running jobs finish. */
  pauseQueue(name: string): Promise<Queue>
  resumeQueue(name: string): Promise<Queue>
  /** Starts a queue a dead job blocked (`failure_mode: 'block'`) again. */
  unblockQueue(name: string): Promise<Queue>
  /** Publishes a message onto a queue: it inherits the queue's signing secret, retries and limits. */
  publish(queue: string, message: PublishMessage): Promise<QueuePublished>
  /** Creates a target group (a key with the `admin` scope). */
  createTargetGroup(group: CreateTargetGroup): Promise<TargetGroup>
  getTargetGroup(id: string): Promise<TargetGroup>
  /** Every target group of the organization, oldest first. */
  listTargetGroups(): Promise<TargetGroup[]>
  renameTargetGroup(id: string, name: string): Promise<TargetGroup>
  /** Deletes a group and its members; refused (`target_group_in_use`) while a queue names it as its default. */
  deleteTargetGroup(id: string): Promise<void>
  /** Adds an endpoint to a group: it receives the publishes made from now on. */
  addMember(groupId: string, member: CreateMember): Promise<Member>
  listMembers(groupId: string): Promise<Member[]>
  removeMember(groupId: string, memberId: string): Promise<void>
  /** A fan-out (the `fan_out_id` of a publish) and each of its deliveries now. */
  getFanOut(id: string): Promise<FanOut>
  /** Creates an organization, with its first admin key (signup closed: a key with `instance:admin`). */
  createOrg(org: CreateOrganization): Promise<CreatedOrganization>
  /** The caller's organizations: a key's own. */
  listOrgs(): Promise<Organization[]>
  getOrg(slug: string): Promise<Organization>
  /** Renames an organization or changes its slug (`admin`). */
  updateOrg(slug: string, patch: UpdateOrganization): Promise<Organization>
  /** Deletes an organization and everything it owns: an owner, or a key with `instance:admin`. */
  deleteOrg(slug: string): Promise<void>
  /** Creates a key in the client key's own organization (`admin`); `key` is shown this once. */
  createApiKey(key: CreateApiKey): Promise<CreatedApiKey>
  /** The organization's plan, and the jobs it has created this UTC day and month (`GET /v1/usage`). */
  usage(): Promise<Usage>
  /** Begins verifying a domain (a host name or a URL; `admin`): resolves to its challenges, `pending`, or `verified` if it already is. */
  addDomain(domain: string): Promise<Domain>
  /** Checks a domain's challenges now (`admin`); rejects with `verification_failed` saying what each found. */
  verifyDomain(domain: string): Promise<Domain>
  /** Every domain of the organization, newest first. */
  listDomains(): Promise<Domain[]>
  getDomain(id: string): Promise<Domain>
  /** Forgets a domain (`admin`): where the plan requires it, its push targets are limited again. */
  deleteDomain(id: string): Promise<void>
  /** The keys of the client key's own organization, never their secrets. */
  listApiKeys(): Promise<ApiKey[]>
  /** Revokes a key (its `id`): requests with it are refused from now on. */
  revokeApiKey(id: string): Promise<ApiKey>
  /** Creates a key in the organization `slug` names (`admin` there, or `instance:admin`). */
  createOrgApiKey(slug: string, key: CreateApiKey): Promise<CreatedApiKey>
  listOrgApiKeys(slug: string): Promise<ApiKey[]>
  /** An organization's members and their roles. */
  listOrgMembers(slug: string): Promise<Membership[]>
  /** Changes a member's role (`admin`; only an owner makes owners; the last owner stays one). */
  updateOrgMember(slug: string, userId: string, role: Role): Promise<Membership>
  removeOrgMember(slug: string, userId: string): Promise<void>
  /** Invites someone by e-mail: hand over the answer's `url`, single-use for 7 days. */
  createInvite(slug: string, invite: CreateInvite): Promise<CreatedInvite>
  /** An organization's invites, newest first, with their `status`. */
  listInvites(slug: string): Promise<Invite[]>
  /** Withdraws a pending invite: its link stops working. */
  revokeInvite(slug: string, id: string): Promise<Invite>
  /** A new link for a pending invite (the old one stops working), valid 7 days more. */
  resendInvite(slug: string, id: string): Promise<CreatedInvite>
  /** Accepts an invite with its token; someone new gives a password. */
  acceptInvite(accept: AcceptInvite): Promise<InviteAccepted>
  createSchedule(schedule: CreateSchedule): Promise<Schedule>
  getSchedule(id: string): Promise<Schedule>
  listSchedules(page?: PageQuery & { status?: ScheduleStatus }): Promise<List<Schedule>>
  updateSchedule(id: string, patch: Partial<CreateSchedule>): Promise<Schedule>
  deleteSchedule(id: string): Promise<void>
  pauseSchedule(id: string): Promise<Schedule>
  resumeSchedule(id: string): Promise<Schedule>
  archiveSchedule(id: string): Promise<Schedule>
  /** Fires the schedule now; resolves to the job it created. */
  triggerSchedule(id: string): Promise<Job>
  /** The next `count` (1 to 100, default 10) due times. */
  nextRuns(id: string, count?: number): Promise<string[]>
  /** The executions of the jobs a schedule created, newest first. */
  listScheduleExecutions(id: string, page?: PageQuery): Promise<List<Execution>>
  /** The fires of a schedule that made no job because the quota was spent, newest first (the newest 100 are kept). */
  listSkippedRuns(id: string, page?: PageQuery): Promise<List<SkippedRun>>
  /** The workers connected over WebSocket (`GET /v1/workers`). */
  listWorkers(): Promise<ConnectedWorker[]>
  /** Leases due jobs of the given handlers (a key with the `worker` scope). */
  poll(request: PollRequest): Promise<LeasedJob[]>
  /** Completes the attempt a lease holds, storing `result` on the job. */
  ack(token: string, result?: unknown): Promise<Job>
  /** Fails the attempt a lease holds: retried while retries remain, unless not retryable. */
  fail(request: FailRequest): Promise<Job>
  /** Moves a lease's deadline to `seconds` from now. */
  extend(token: string, seconds: number): Promise<Lease>
}

/**
 * Whether a push request was signed by Chronos with `secret` (any of the
 * comma-separated `v1=` values), its `Chronos-Timestamp` within
 * `toleranceSeconds` (default 300) of now. Pass the raw body as received.
 */
export declare function verifySignature(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  rawBody: string | Buffer,
  options?: { toleranceSeconds?: number; now?: number },
): boolean

/**
 * A callback request, verified and read: signed with `secret` (or any of
 * several) within `toleranceSeconds` (default 300) of now, its raw body
 * read without the fields this version does not know. Throws a
 * `ChronosError`: `invalid_signature`, or `invalid_callback` for a body
 * that is not a callback.
 */
export declare function parseCallback(
  secret: string | string[],
  headers: Record<string, string | string[] | undefined>,
  rawBody: string | Buffer,
  options?: { toleranceSeconds?: number; now?: number },
): Callback

/** A callback's raw body, read without a signature check: for a callback queue without a signing secret. */
export declare function parseUnsignedCallback(rawBody: string | Buffer): Callback

/** The job a handler gets. */
export interface JobContext {
  id: string
  name: string
  handler: string
  payload: any
  /** 1 for the first attempt. */
  attempt: number
  maxRetries: number
  /** Seconds this attempt may run before its lease ends (see `extend`). */
  timeout: number
  scheduleId?: string
  /** Aborts when the job is cancelled, or when a stopping worker's grace runs out. */
  signal: AbortSignal
  /** Moves this attempt's deadline to `seconds` from now. */
  extend(seconds: number): Promise<void>
}

export interface WorkerOptions {
  url: string
  /** A key with the `worker` scope. */
  apiKey: string
  /** Jobs run at once (default 4, the Rust SDK's). */
  concurrency?: number
  workerId?: string
  /** At stop, how long jobs in hand get to finish (default 30). */
  shutdownGraceSeconds?: number
  /** Stop gracefully on SIGINT and SIGTERM (default true). */
  handleSignals?: boolean
}

export declare class Worker {
  constructor(options: WorkerOptions)
  /** Registers the handler of jobs named `name`; its return value is the job's result. */
  handle(name: string, handler: (job: JobContext) => unknown | Promise<unknown>): this
  /** Connects; resolves once the server has welcomed the worker. */
  start(): Promise<void>
  /**
   * Stops gracefully: no new jobs; those in hand get the grace to finish.
   * Before `start()`, the worker stops as soon as it has connected.
   */
  stop(): Promise<void>
  /** Settles when the worker has stopped. */
  readonly closed: Promise<void>
}

/** Throw it from a handler to fail the job for good: no retry. */
export declare class PermanentError extends Error {
  constructor(message: string)
}

/** Throw it from a handler to be retried after `seconds` instead of the backoff. */
export declare class RetryAfter extends Error {
  constructor(seconds: number, message?: string)
  readonly seconds: number
}
