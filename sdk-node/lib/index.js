'use strict'
// The Chronos SDK for Node. The protocol lives in the Rust SDK; this
// package is its binding (native.js) and the JavaScript that makes it read
// well: a Worker, a Client of Promises, ChronosError, verifySignature, and
// parseCallback for the endpoint a callback queue delivers to.

const native = require('../native.js')
const { Client } = require('./client.js')
const { ChronosError, fromNative } = require('./errors.js')
const { Worker, PermanentError, RetryAfter } = require('./worker.js')

/** Headers as the binding takes them: each value a string or a list of strings. */
function plainHeaders(headers) {
  const plain = {}
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value !== undefined && value !== null) plain[name] = Array.isArray(value) ? value.map(String) : String(value)
  }
  return plain
}

const seconds = (now) => (now === undefined ? undefined : Math.floor(now))

/**
 * Whether a push request was signed by Chronos with `secret` (any of the
 * comma-separated `v1=` values) within `toleranceSeconds` (default 300).
 * Pass the raw body as received (a Buffer or string), not re-serialized JSON.
 */
function verifySignature(secret, headers, rawBody, { toleranceSeconds = 300, now } = {}) {
  return native.verifySignatureNative(secret, plainHeaders(headers), rawBody, toleranceSeconds, seconds(now))
}

/**
 * A callback request, verified and read: the request must be signed with
 * `secret` (or any of an array of secrets) within `toleranceSeconds`
 * (default 300), then its raw body is read as one delivery's outcome, or a
 * fan-out's group callback (the one with `results`). Throws a ChronosError:
 * `invalid_signature`, or `invalid_callback` for a body that is not one.
 */
function parseCallback(secret, headers, rawBody, { toleranceSeconds = 300, now } = {}) {
  const secrets = Array.isArray(secret) ? secret : [secret]
  try {
    return native.parseCallbackNative(secrets, plainHeaders(headers), rawBody, toleranceSeconds, seconds(now))
  } catch (e) {
    throw fromNative(e)
  }
}

/** A callback's raw body read without a signature check: for a callback queue without a signing secret. */
function parseUnsignedCallback(rawBody) {
  try {
    return native.parseUnsignedCallbackNative(rawBody)
  } catch (e) {
    throw fromNative(e)
  }
}

module.exports = {
  Client,
  Worker,
  PermanentError,
  RetryAfter,
  ChronosError,
  verifySignature,
  parseCallback,
  parseUnsignedCallback,
}
