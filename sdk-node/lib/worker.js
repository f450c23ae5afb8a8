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
    this._controllers = new Map()
    this._handleSignals = handleSignals
    this._started = false
    this._native = new native.NativeWorker(
      { url, apiKey, concurrency, workerId, shutdownGraceSeconds },
      (job) => this._run(job),
      (id) => this._controllers.get(id)?.abort(cancelled()),
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

  async _run(job) {
    const fn = this._handlers.get(job.handler)
    const controller = new AbortController()
    this._controllers.set(job.id, controller)
    // A cancellation told before the controller was in place.
    if (this._native.isCancelled(job.id)) controller.abort(cancelled())
    const context = {
      ...job,
      signal: controller.signal,
      extend: (seconds) => call(this._native.extend(job.id, seconds)),
    }
    try {
      if (!fn) throw new Error(`this worker has no handler for ${JSON.stringify(job.handler)}`)
      const result = await fn(context)
      return { ok: result === undefined ? null : result }
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e)
      if (e instanceof PermanentError) return { error: { message, permanent: true } }
      if (e instanceof RetryAfter) return { error: { message, retry_in: e.seconds } }
      return { error: { message } }
    } finally {
      if (this._controllers.get(job.id) === controller) this._controllers.delete(job.id)
    }
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
