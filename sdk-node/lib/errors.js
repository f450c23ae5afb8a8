'use strict'
// Errors from the binding: a Chronos error crosses napi as a marker and its
// fields in JSON (see src/error.rs); here it becomes a ChronosError.

const MARKER = 'CHRONOS_ERROR:'

/** An error from the Chronos server (or the SDK), with the server's code. */
class ChronosError extends Error {
  constructor({ code, status, message, field }) {
    super(message)
    this.name = 'ChronosError'
    /** The server's stable code, e.g. `not_found`, `validation_failed`. */
    this.code = code
    /** The HTTP status, or null when no answer came. */
    this.status = status ?? null
    /** The request field at fault, when the server named one. */
    this.field = field ?? null
  }
}

/** Turns the binding's error into a ChronosError; other errors pass. */
function fromNative(e) {
  if (e && typeof e.message === 'string' && e.message.startsWith(MARKER)) {
    return new ChronosError(JSON.parse(e.message.slice(MARKER.length)))
  }
  return e
}

/** Awaits a binding call, rethrowing its error as a ChronosError. */
async function call(promise) {
  try {
    return await promise
  } catch (e) {
    throw fromNative(e)
  }
}

module.exports = { ChronosError, fromNative, call }
