'use strict'
// The Worker against a real server: jobs created through the Client run in
// its handlers, sync and async; failures retry unless permanent; extend
// keeps a lease; cancel aborts job.signal; stop() drains.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { Client, Worker, PermanentError, RetryAfter, ChronosError } = require('../lib/index.js')
const { startServer, workerKey: newWorkerKey, finished: finishedIn } = require('./server.js')

let server
let client
let workerKey

before(async () => {
  server = await startServer()
  client = new Client({ url: server.url, apiKey: server.adminKey })
  workerKey = await newWorkerKey(server)
})

after(async () => {
  await server?.stop()
})

const finished = (id, within) => finishedIn(client, id, within)

function worker(options = {}) {
  return new Worker({ url: server.url, apiKey: workerKey, concurrency: 4, handleSignals: false, ...options })
}

test('sync and async handlers run jobs created through the Client', async () => {
  const w = worker()
    .handle('node-sync', (job) => ({ greeted: job.payload.name, attempt: job.attempt }))
    .handle('node-async', async (job) => {
      await new Promise((r) => setTimeout(r, 20))
      return `async ${job.payload.name}`
    })
  await w.start()
  const a = await client.createJob({ name: 'a', handler: 'node-sync', payload: { name: 'Ada' } })
  const b = await client.createJob({ name: 'b', handler: 'node-async', payload: { name: 'Bo' } })
  assert.deepEqual((await finished(a.id)).result, { greeted: 'Ada', attempt: 1 })
  assert.equal((await finished(b.id)).result, 'async Bo')
  const connected = await client.listWorkers()
  assert.ok(connected.some((c) => c.handlers.includes('node-sync') && c.sdk.startsWith('chronos-rust/')), JSON.stringify(connected))
  await w.stop()
  await w.closed
})

test('a throw retries, PermanentError does not, RetryAfter sets the delay', async () => {
  const seen = new Map()
  const w = worker()
    .handle('node-flaky', (job) => {
      seen.set(job.id, job.attempt)
      if (job.attempt < 2) throw new Error('not yet')
      return 'ok'
    })
    .handle('node-permanent', () => {
      throw new PermanentError('bad input')
    })
    .handle('node-later', (job) => {
      if (job.attempt < 2) throw new RetryAfter(1, 'busy')
      return 'later'
    })
  await w.start()
  const flaky = await client.createJob({ name: 'f', handler: 'node-flaky', max_retries: 3 })
  const permanent = await client.createJob({ name: 'p', handler: 'node-permanent', max_retries: 3 })
  const later = await client.createJob({ name: 'l', handler: 'node-later', max_retries: 3 })
  const f = await finished(flaky.id)
  assert.equal(f.status, 'completed')
  assert.equal(f.attempt, 2)
  const p = await finished(permanent.id)
  assert.equal(p.status, 'failed')
  assert.equal(p.attempt, 1)
  assert.equal(p.last_error, 'bad input')
  const l = await finished(later.id)
  assert.equal(l.status, 'completed')
  const runs = (await client.listExecutions(later.id)).data.reverse()
  const gap = Date.parse(runs[1].started_at) - Date.parse(runs[0].finished_at)
  assert.ok(gap >= 900, `retried after ${gap} ms`)
  await w.stop()
})

test('extend keeps a lease past the timeout; cancel aborts job.signal', async () => {
  let aborted
  const w = worker()
    .handle('node-long', async (job) => {
      await job.extend(10)
      await new Promise((r) => setTimeout(r, 2500))
      return 'done'
    })
    .handle('node-cancel', (job) =>
      new Promise((resolve) => {
        job.signal.addEventListener('abort', () => {
          aborted = job.id
          resolve('stopped')
        })
      }),
    )
  await w.start()
  const long = await client.createJob({ name: 'long', handler: 'node-long', timeout: 1, max_retries: 0 })
  const cancel = await client.createJob({ name: 'c', handler: 'node-cancel' })
  // Running, then cancelled: its handler hears it.
  for (let i = 0; i < 100 && (await client.getJob(cancel.id)).status !== 'running'; i++) {
    await new Promise((r) => setTimeout(r, 50))
  }
  await client.cancelJob(cancel.id)
  const l = await finished(long.id)
  assert.equal(l.status, 'completed', l.last_error ?? '')
  assert.equal(l.attempt, 1)
  assert.equal(aborted, cancel.id)
  await w.stop()
})

test('stop() drains: the job in hand finishes first', async () => {
  let release
  const started = new Promise((r) => { release = r })
  const w = worker().handle('node-drain', async () => {
    release()
    await new Promise((r) => setTimeout(r, 500))
    return 'drained'
  })
  await w.start()
  const job = await client.createJob({ name: 'd', handler: 'node-drain' })
  await started
  await w.stop()
  const done = await client.getJob(job.id)
  assert.equal(done.status, 'completed')
  assert.equal(done.result, 'drained')
})

test('stop() before start(): the worker stops as soon as it has connected', async () => {
  const w = worker().handle('node-early', () => null)
  await w.stop()
  await w.start()
  await w.closed
  // Started once: a second start is refused.
  await assert.rejects(w.start(), (e) => e instanceof ChronosError && e.code === 'invalid_argument')
})

test('a refused key rejects start() with a ChronosError', async () => {
  const w = new Worker({ url: server.url, apiKey: 'chrns_0000000000000000_00', handleSignals: false })
  w.handle('x', () => null)
  await assert.rejects(w.start(), (e) => e instanceof ChronosError && e.code === 'unauthorized' && e.status === 401)
  await assert.rejects(w.closed)
})
