'use strict'
// The Chronos SDK for Node. The protocol lives in the Rust SDK; this
// package is its binding (native.js) and the JavaScript that makes it read
// well: a Worker, a Client of Promises, ChronosError, and verifySignature.

const native = require('../native.js')
const { Client } = require('./client.js')
const { ChronosError } = require('./errors.js')
const { Worker, PermanentError, RetryAfter } = require('./worker.js')

/**
 * Whether a push request was signed by Chronos with `secret` (any of the
 * comma-separated `v1=` values) within `toleranceSeconds` (default 300).
 * Pass the raw body as received (a Buffer or string), not re-serialized JSON.
 */
function verifySignature(secret, headers, rawBody, { toleranceSeconds = 300, now } = {}) {
  const plain = {}
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value !== undefined && value !== null) plain[name] = Array.isArray(value) ? value.map(String) : String(value)
  }
  const nowSeconds = now === undefined ? undefined : Math.floor(now)
  return native.verifySignatureNative(secret, plain, rawBody, toleranceSeconds, nowSeconds)
}

module.exports = { Client, Worker, PermanentError, RetryAfter, ChronosError, verifySignature }
