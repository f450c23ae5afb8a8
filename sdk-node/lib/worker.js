'use strict'
// The worker: the Rust SDK's (one WebSocket, leases, heartbeats,
// reconnects), its handlers these JavaScript functions. Each job gets an
// AbortSignal and `extend()`; a handler's return value is the job's result,
// and a throw its failure.

const native = require('../native.js')
const { call, fromNative } = require('./errors.js')

/** Throw it from a handler to fail the job for good: no retry. */
class PermanentError extends Error {
  constructor(message) {
    super(message)
    this.name = 'PermanentError'
  }
}

/** Throw it from a handler to be retried after `seconds`, not the backoff. */
class RetryAfter extends Error {
  constructor(seconds, message) {
    super(message ?? `retry in ${seconds} s`)
    this.name = 'RetryAfter'
    this.seconds = seconds
  }
}

class Worker {
  /**
   * @param {{ url: string, apiKey: string, concurrency?: number, workerId?: string,
   *           shutdownGraceSeconds?: number, handleSignals?: boolean }} options
   *   Left out, `concurrency` and `shutdownGraceSeconds` take the Rust SDK's
   *   defaults (4 and 30; sdk-rust/manifest.json).
   */
  constructor({ url, apiKey, concurrency, workerId, shutdownGraceSeconds, handleSignals = true }) {
    this._handlers = new Map()
    // Per running job: its AbortController (once made), whether it was cancelled.
    this._running = new Map()
    this._handleSignals = handleSignals
    this._started = false
    // Jobs come in batches (`_take`) and outcomes go back in batches
    // (`_flush`): each crossing of the binding costs more than a no-op job.
    this._outcomes = []
    this._native = new native.NativeWorker(
      { url, apiKey, concurrency, workerId, shutdownGraceSeconds },
      () => this._take(),
      (id) => this._cancel(id),
    )
    let settle
    /** Settles when the worker has stopped (rejects if it stopped on an error). */
    this.closed = new Promise((resolve, reject) => {
      settle = { resolve, reject }
    })
    // Nobody awaiting `closed` is not an unhandled rejection: start() reports it too.
    this.closed.catch(() => {})
    this._settle = settle
  }

  /**
   * Registers the handler of jobs named `name`: `(job) => result`, sync or
   * async. `job` has `id`, `name`, `handler`, `payload`, `attempt`, `signal`
   * and `extend(seconds)`.
   */
  handle(name, fn) {
    try {
      this._native.handle(name)
    } catch (e) {
      throw fromNative(e)
    }
    this._handlers.set(name, fn)
    return this
  }

  _take() {
    for (const [key, job, wasCancelled] of JSON.parse(this._native.takeJobs())) {
      this._run(key, job, wasCancelled)
    }
  }

  async _run(key, job, wasCancelled) {
    const fn = this._handlers.get(job.handler)
    // The AbortController is made when the handler first reads `signal`:
    // most never do, and an AbortSignal costs more than the rest of a job.
    const state = { controller: null, cancelled: wasCancelled }
    this._running.set(job.id, state)
    // The job comes with the wire's names (`HostedJob::handler_json`).
    const context = {
      id: job.id,
      name: job.name,
      handler: job.handler,
      payload: job.payload,
      attempt: job.attempt,
      maxRetries: job.max_retries,
      timeout: job.timeout,
      get signal() {
        if (!state.controller) {
          state.controller = new AbortController()
          if (state.cancelled) state.controller.abort(cancelled())
        }
        return state.controller.signal
      },
      extend: (seconds) => call(this._native.extend(job.id, seconds)),
    }
    if (job.schedule_id != null) context.scheduleId = job.schedule_id
    let outcome
    try {
      if (!fn) throw new Error(`this worker has no handler for ${JSON.stringify(job.handler)}`)
      const result = await fn(context)
      outcome = { ok: result === undefined ? null : result }
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e)
      if (e instanceof PermanentError) outcome = { error: { message, permanent: true } }
      else if (e instanceof RetryAfter) outcome = { error: { message, retry_in: e.seconds } }
      else outcome = { error: { message } }
    } finally {
      if (this._running.get(job.id) === state) this._running.delete(job.id)
    }
    this._done(key, outcome)
  }

  _cancel(id) {
    const state = this._running.get(id)
    if (!state) return
    state.cancelled = true
    state.controller?.abort(cancelled())
  }

  _done(key, outcome) {
    let text
    try {
      text = JSON.stringify(outcome)
    } catch (e) {
      text = JSON.stringify({ error: { message: `the handler failed: the result is not JSON: ${e.message}` } })
    }
    // Every outcome settled in this turn of the event loop goes back in one call.
    if (this._outcomes.push(`[${key},${text}]`) === 1) setImmediate(() => this._flush())
  }

  _flush() {
    const outcomes = this._outcomes
    this._outcomes = []
    this._native.settle(`[${outcomes.join(',')}]`)
  }

  /** Connects; resolves once the server has welcomed the worker. */
  async start() {
    try {
      this._native.build()
    } catch (e) {
      throw fromNative(e)
    }
    this._started = true
    const running = call(this._native.run())
    running.then(
      () => this._closed(),
      (e) => this._closed(e),
    )
    if (this._handleSignals) {
      this._onSignal = () => this._native.stop()
      process.once('SIGINT', this._onSignal)
      process.once('SIGTERM', this._onSignal)
    }
    const connected = call(this._native.connected())
    // A fatal error (a refused key) rejects start() rather than waiting.
    await Promise.race([connected, running.then(() => {})])
  }

  /**
   * Stops gracefully: no new jobs; those in hand get the grace to finish.
   * Resolves once stopped. Before start(), the worker stops as soon as it
   * has connected (and this resolves at once).
   */
  async stop() {
    this._native.stop()
    if (this._started) await this.closed.catch(() => {})
  }

  _closed(error) {
    if (this._onSignal) {
      process.removeListener('SIGINT', this._onSignal)
      process.removeListener('SIGTERM', this._onSignal)
    }
    if (error) this._settle.reject(error)
    else this._settle.resolve()
  }
}

function cancelled() {
  return new Error('the job was cancelled, or the worker stopped')
}

module.exports = { Worker, PermanentError, RetryAfter }
