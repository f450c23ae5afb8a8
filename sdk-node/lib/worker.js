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
   */
  constructor({ url, apiKey, concurrency, workerId, shutdownGraceSeconds, handleSignals = true }) {
    this._controllers = new Map()
    this._handleSignals = handleSignals
    this._native = new native.NativeWorker(
      { url, apiKey, concurrency, workerId, shutdownGraceSeconds },
      (id) => this._controllers.get(id)?.abort(new Error('the job was cancelled, or the worker stopped')),
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
      this._native.handle(name, (job) => this._run(fn, job))
    } catch (e) {
      throw fromNative(e)
    }
    return this
  }

  async _run(fn, job) {
    const controller = new AbortController()
    this._controllers.set(job.id, controller)
    const context = {
      ...job,
      signal: controller.signal,
      extend: (seconds) => call(this._native.extend(job.id, seconds)),
    }
    try {
      const result = await fn(context)
      return { ok: result === undefined ? null : result }
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e)
      if (e instanceof PermanentError) return { error: { message, permanent: true } }
      if (e instanceof RetryAfter) return { error: { message, retry_in: e.seconds } }
      return { error: { message } }
    } finally {
      this._controllers.delete(job.id)
    }
  }

  /** Connects; resolves once the server has welcomed the worker. */
  async start() {
    try {
      this._native.build()
    } catch (e) {
      throw fromNative(e)
    }
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

  /** Stops gracefully: no new jobs; those in hand get the grace to finish. */
  async stop() {
    this._native.stop()
    await this.closed.catch(() => {})
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

module.exports = { Worker, PermanentError, RetryAfter }
