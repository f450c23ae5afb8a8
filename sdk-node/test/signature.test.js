'use strict'
// verifySignature: a signed request passes; a tampered body, a wrong secret
// or an old timestamp does not. The HMAC here is Node's own, independent of
// the Rust code that verifies.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { createHmac } = require('node:crypto')
const { verifySignature } = require('../lib/index.js')

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
