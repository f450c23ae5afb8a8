'use strict'
// verifySignature: a signed request passes; a tampered body, a wrong secret
// or an old timestamp does not. parseCallback: a signed callback is read;
// one that does not verify, or is no callback, throws. The HMAC here is
// Node's own, independent of the Rust code that verifies.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { createHmac } = require('node:crypto')
const { ChronosError, verifySignature, parseCallback, parseUnsignedCallback } = require('../lib/index.js')

const secret = 'whsec_' + 'ab'.repeat(32)
const body = '{"handler":"hello","payload":{"n":1},"job_id":"j","attempt":1}'

function sign(value, ts, raw) {
  return 'v1=' + createHmac('sha256', value).update(`${ts}.${raw}`).digest('hex')
}

test('a signed request is accepted, in any header case, string or Buffer', () => {
  const ts = Math.floor(Date.now() / 1000)
  const headers = { 'chronos-signature': sign(secret, ts, body), 'chronos-timestamp': String(ts) }
  assert.equal(verifySignature(secret, headers, body), true)
  assert.equal(verifySignature(secret, headers, Buffer.from(body)), true)
  const upper = { 'Chronos-Signature': headers['chronos-signature'], 'Chronos-Timestamp': String(ts) }
  assert.equal(verifySignature(secret, upper, body), true)
})

test('during a rotation either value verifies', () => {
  const ts = Math.floor(Date.now() / 1000)
  const old = 'whsec_' + 'cd'.repeat(32)
  const headers = {
    'chronos-signature': `${sign(secret, ts, body)},${sign(old, ts, body)}`,
    'chronos-timestamp': String(ts),
  }
  assert.equal(verifySignature(secret, headers, body), true)
  assert.equal(verifySignature(old, headers, body), true)
})

test('a tampered body, a wrong secret, an old timestamp or no header are refused', () => {
  const ts = Math.floor(Date.now() / 1000)
  const headers = { 'chronos-signature': sign(secret, ts, body), 'chronos-timestamp': String(ts) }
  assert.equal(verifySignature(secret, headers, body.replace('1', '2')), false)
  assert.equal(verifySignature('whsec_other', headers, body), false)
  const old = ts - 301
  const stale = { 'chronos-signature': sign(secret, old, body), 'chronos-timestamp': String(old) }
  assert.equal(verifySignature(secret, stale, body), false)
  assert.equal(verifySignature(secret, stale, body, { toleranceSeconds: 600 }), true)
  assert.equal(verifySignature(secret, {}, body), false)
  assert.equal(verifySignature(secret, { 'chronos-timestamp': String(ts) }, body), false)
})

test('parseCallback reads a signed callback, with any of several secrets', () => {
  const ts = Math.floor(Date.now() / 1000)
  const event = {
    message_id: '01a20b10-0000-7000-8000-000000000011',
    fan_out_id: null,
    status: 'succeeded',
    http_status: 204,
    response_body: '',
    response_body_encoding: 'utf-8',
    response_truncated: false,
    attempts: 1,
    error: null,
    url: 'https://api.example.com/send-email',
    method: 'POST',
    created_at: '2026-12-07T11:20:00.000Z',
    finished_at: '2026-12-07T11:20:00.250Z',
    final: true,
  }
  const raw = JSON.stringify({ ...event, added_later: [1, 2] })
  const headers = { 'chronos-signature': sign(secret, ts, raw), 'chronos-timestamp': String(ts) }
  assert.deepEqual(parseCallback(secret, headers, raw), event)
  assert.deepEqual(parseCallback(['whsec_old', secret], headers, Buffer.from(raw)), event)
  assert.deepEqual(parseUnsignedCallback(raw), event)

  const refused = (f, code) => assert.throws(f, (e) => e instanceof ChronosError && e.code === code && e.status === null)
  refused(() => parseCallback('whsec_other', headers, raw), 'invalid_signature')
  refused(() => parseCallback(secret, {}, raw), 'invalid_signature')
  refused(() => parseCallback(secret, headers, raw.replace('204', '200')), 'invalid_signature')
  const old = ts - 301
  const stale = { 'chronos-signature': sign(secret, old, raw), 'chronos-timestamp': String(old) }
  refused(() => parseCallback(secret, stale, raw), 'invalid_signature')
  assert.deepEqual(parseCallback(secret, stale, raw, { toleranceSeconds: 600 }), event)
  refused(() => parseCallback([], headers, raw), 'invalid_argument')
  const job = '{"handler":"hello","payload":null}'
  refused(() => parseCallback(secret, { 'chronos-signature': sign(secret, ts, job), 'chronos-timestamp': String(ts) }, job), 'invalid_callback')
  refused(() => parseUnsignedCallback('not json'), 'invalid_callback')
})
