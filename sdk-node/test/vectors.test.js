'use strict'
// The shared vectors in proto/vectors: every push signature case verifies
// as it says, and every worker-protocol job frame carries what a handler's
// job is made of.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { verifySignature } = require('../lib/index.js')

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
