'use strict'
// Forward compatibility (proto/vectors/forward.json): the SDK reads what a
// newer server sends — fields it does not know, at any depth, and frames
// of a kind it does not know — played by stand-ins that send the vectors;
// and the real server still refuses unknown fields in what clients send.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Client, Worker, ChronosError } = require('../lib/index.js')
const { httpStandIn, wsStandIn } = require('./standin.js')
const { startServer } = require('./server.js')

const vectors = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', '..', 'proto', 'vectors', 'forward.json'), 'utf8'),
)

/** `value` without its `added_later` fields, at every depth. */
function known(value) {
  if (Array.isArray(value)) return value.map(known)
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'added_later').map(([k, v]) => [k, known(v)]))
  }
  return value
}

const frame = (type, action) => vectors.frames.find((f) => f.type === type && (!action || f.action === action))

test('the client reads answers holding fields it does not know', async () => {
  const { answers } = vectors
  const standIn = await httpStandIn((method, url) => {
    if (method === 'GET' && url === `/v1/jobs/${answers.job.id}`) return [200, answers.job]
    if (method === 'GET' && url.startsWith('/v1/jobs?')) return [200, answers.jobs]
    if (method === 'GET' && url.endsWith('/executions')) return [200, answers.executions]
    if (method === 'POST' && url === '/v1/workers/poll') return [200, answers.leased]
    return [404, answers.error]
  })
  try {
    const client = new Client({ url: standIn.url, apiKey: 'chrns_test' })
    assert.deepEqual(await client.getJob(answers.job.id), known(answers.job))
    assert.deepEqual(await client.listJobs({ limit: 2 }), known(answers.jobs))
    assert.deepEqual(await client.listExecutions(answers.job.id), known(answers.executions))
    assert.deepEqual(await client.poll({ handlers: ['send-email'] }), known(answers.leased.data))
    await assert.rejects(client.getJob('01a20b10-0000-7000-8000-000000000099'), (e) => {
      assert.ok(e instanceof ChronosError)
      assert.equal(e.code, answers.error.error.code)
      assert.equal(e.status, 404)
      return true
    })
  } finally {
    await standIn.close()
  }
})

test('the worker runs a job frame holding fields it does not know', async () => {
  const job = frame('job')
  const token = job.lease.token
  const standIn = await wsStandIn()
  const seen = []
  const worker = new Worker({ url: standIn.url, apiKey: 'chrns_test', handleSignals: false })
    .handle('send-email', async (j) => {
      seen.push(j)
      await j.extend(120) // its answer holds unknown fields too
      return { to: j.payload.userId }
    })
  const started = worker.start()
  try {
    const hello = await standIn.next()
    assert.equal(hello.type, 'hello')
    assert.deepEqual(hello.handlers, ['send-email'])
    standIn.send(frame('welcome'))
    await started
    for (const unknown of vectors.unknown_frames) standIn.send(unknown)
    standIn.send(job)
    assert.deepEqual(await standIn.next(), { type: 'extend', token, seconds: 120 })
    standIn.send(frame('accepted', 'extend'))
    assert.deepEqual(await standIn.next(), { type: 'ack', token, result: { to: 'usr_123' } })
    assert.equal(seen.length, 1)
    assert.equal(seen[0].id, job.job.id)
    assert.deepEqual(seen[0].payload, job.job.payload)
    const stopped = worker.stop()
    assert.deepEqual(await standIn.next(), { type: 'drain' })
    await stopped
  } finally {
    await standIn.close()
  }
})

test('the server refuses unknown fields in what clients send', async () => {
  const server = await startServer()
  try {
    assert.ok(vectors.requests.length >= 5)
    for (const r of vectors.requests) {
      const answer = await fetch(server.url + r.path, {
        method: 'POST',
        headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(r.body),
      })
      const body = await answer.json()
      assert.equal(answer.status, 400, JSON.stringify(body))
      assert.equal(body.error.code, 'unknown_field', JSON.stringify(body))
      assert.equal(body.error.field, r.field)
    }
  } finally {
    await server.stop()
  }
})
