'use strict'
// The shared vectors in proto/vectors: every push signature case verifies
// as it says, every worker-protocol job frame carries what a handler's job
// is made of, every signed callback is verified and read (and every refused
// one refused with its code), and a publish's answer comes back as its shape.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Client, ChronosError, verifySignature, parseCallback, parseUnsignedCallback } = require('../lib/index.js')
const { httpStandIn } = require('./standin.js')

const vectors = (name) =>
  JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'proto', 'vectors', name), 'utf8'))

test('signature vectors verify as they say', () => {
  const { cases, window_seconds } = vectors('signature.json')
  assert.ok(cases.length > 0)
  for (const c of cases) {
    const headers = { 'Chronos-Signature': c.signature, 'Chronos-Timestamp': c.timestamp }
    const valid = verifySignature(c.secret, headers, c.body, { toleranceSeconds: window_seconds, now: c.now })
    assert.equal(valid, c.valid, c.about)
    assert.equal(verifySignature(c.secret, headers, Buffer.from(c.body), { now: c.now }), c.valid, c.about)
  }
})

test('job frames hold what a handler gets', () => {
  const { server } = vectors('worker.json')
  const jobs = server.filter((f) => f.type === 'job')
  assert.ok(jobs.length > 0)
  for (const frame of jobs) {
    for (const field of ['id', 'name', 'handler', 'payload', 'attempt', 'max_retries', 'timeout']) {
      assert.ok(field in frame.job, `job frame without ${field}`)
    }
    assert.ok(frame.lease.token && frame.lease.expires_at)
  }
})

/** `value` without its `added_later` fields, at every depth. */
function known(value) {
  if (Array.isArray(value)) return value.map(known)
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'added_later').map(([k, v]) => [k, known(v)]))
  }
  return value
}

const signedHeaders = (c) => {
  const headers = {}
  if (c.signature !== null) headers['Chronos-Signature'] = c.signature
  if (c.timestamp !== null) headers['Chronos-Timestamp'] = c.timestamp
  return headers
}

test('signed callbacks are verified and read as their kind; refused ones say why', () => {
  const { secret, window_seconds: toleranceSeconds, callbacks, refused } = vectors('callbacks.json')
  assert.ok(callbacks.some((c) => c.kind === 'group'))
  for (const c of callbacks) {
    for (const body of [c.body, Buffer.from(c.body)]) {
      const read = parseCallback(secret, signedHeaders(c), body, { toleranceSeconds, now: c.now })
      assert.deepEqual(read, c.event, c.about)
      assert.equal('results' in read ? 'group' : 'delivery', c.kind, c.about)
    }
    assert.deepEqual(parseUnsignedCallback(c.body), c.event, c.about)
  }
  for (const c of refused) {
    assert.throws(
      () => parseCallback([secret], signedHeaders(c), c.body, { toleranceSeconds, now: c.now }),
      (e) => e instanceof ChronosError && e.code === c.error,
      c.about,
    )
  }
})

test("a publish's answer is a fan-out or one message", async () => {
  const { published } = vectors('callbacks.json')
  assert.ok(published.some((c) => c.fan_out))
  for (const c of published) {
    const standIn = await httpStandIn((method, url) =>
      method === 'POST' && (url === '/v1/messages' || url === '/v1/queues/regional/messages')
        ? [202, c.answer]
        : [404, { error: { code: 'not_found', message: url } }])
    try {
      const client = new Client({ url: standIn.url, apiKey: 'chrns_test' })
      const read = c.route === 'message'
        ? await client.sendMessage({ url: 'https://api.example.com/hook' })
        : await client.publish('regional', {})
      assert.deepEqual(read, known(c.answer), c.about)
      assert.equal(read.fan_out === true, c.fan_out, c.about)
    } finally {
      await standIn.close()
    }
  }
})
