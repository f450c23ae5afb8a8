'use strict'
// The Client against a real server: jobs, schedules, messages, and errors
// as ChronosError with the server's code.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { Client, ChronosError } = require('../lib/index.js')
const { startServer, workerKey } = require('./server.js')

let server
let client

before(async () => {
  server = await startServer()
  client = new Client({ url: server.url, apiKey: server.adminKey })
})

after(async () => {
  await server?.stop()
})

test('jobs: create, get, list, cancel, retry, executions', async () => {
  const job = await client.createJob({
    name: 'Send follow-up',
    handler: 'send-email',
    payload: { userId: 'usr_123' },
    delay: { value: 2, unit: 'hour' },
  })
  assert.equal(job.status, 'scheduled')
  assert.deepEqual(job.payload, { userId: 'usr_123' })
  assert.equal((await client.getJob(job.id)).id, job.id)
  const page = await client.listJobs({ handler: 'send-email', scheduleId: 'null' })
  assert.deepEqual(page.data.map((j) => j.id), [job.id])
  const cancelled = await client.cancelJob(job.id)
  assert.equal(cancelled.status, 'cancelled')
  const retried = await client.retryJob(job.id)
  assert.equal(retried.status, 'queued')
  const runs = await client.listExecutions(job.id)
  assert.deepEqual(runs.data, [])
  // The second fits the schema but is more than ten years ahead: refused alone.
  const batch = await client.createJobs([
    { name: 'a', handler: 'h' },
    { name: 'b', handler: 'h', delay: { value: 100000, unit: 'week' } },
  ])
  assert.ok('job' in batch[0])
  assert.equal(batch[1].error.code, 'validation_failed')
  assert.equal(batch[1].error.field, 'delay.value')
})

test('errors are ChronosError with the server code', async () => {
  await assert.rejects(client.getJob('01a20b10-0000-7000-8000-000000000099'), (e) => {
    assert.ok(e instanceof ChronosError)
    assert.equal(e.code, 'not_found')
    assert.equal(e.status, 404)
    return true
  })
  await assert.rejects(client.createJob({ name: 'x', handler: 'h', timeout: 0 }), (e) => {
    assert.equal(e.code, 'validation_failed')
    assert.equal(e.field, 'timeout')
    assert.equal(e.status, 400)
    return true
  })
  // A misspelt field is refused before any request.
  await assert.rejects(client.createJob({ name: 'x', handler: 'h', paylod: {} }), (e) => {
    assert.equal(e.code, 'invalid_argument')
    assert.match(e.message, /paylod/)
    return true
  })
  const stranger = new Client({ url: server.url, apiKey: 'chrns_0000000000000000_00' })
  await assert.rejects(stranger.listJobs(), (e) => e.code === 'unauthorized' && e.status === 401)
  const nobody = new Client({ url: 'http://127.0.0.1:1', apiKey: server.adminKey })
  await assert.rejects(nobody.listJobs(), (e) => e.code === 'unreachable' && e.status === null)
})

test('schedules: create, list, pause, resume, trigger, next runs', async () => {
  const schedule = await client.createSchedule({
    name: 'Standup',
    handler: 'standup',
    cron: '0 9 * * 1-5',
    timezone: 'America/New_York',
  })
  assert.equal(schedule.status, 'active')
  assert.equal(schedule.next_fire_at, schedule.next_run_at)
  const runs = await client.nextRuns(schedule.id, 3)
  assert.equal(runs.length, 3)
  assert.equal(runs[0], schedule.next_run_at)
  const paused = await client.pauseSchedule(schedule.id)
  assert.equal(paused.status, 'paused')
  for (const alias of ['enabled', 'schedule_type', 'schedule', 'timeout_ms', 'retries']) {
    assert.ok(!(alias in paused), `${alias} left the native answer`)
  }
  const job = await client.triggerSchedule(schedule.id)
  assert.equal(job.schedule_id, schedule.id)
  assert.deepEqual(await client.listScheduleExecutions(schedule.id, { limit: 10 }), { data: [], next_cursor: null })
  assert.equal((await client.resumeSchedule(schedule.id)).status, 'active')
  const renamed = await client.updateSchedule(schedule.id, { name: 'Daily standup' })
  assert.equal(renamed.name, 'Daily standup')
  const listed = await client.listSchedules({ status: 'active' })
  assert.ok(listed.data.some((s) => s.id === schedule.id))
  await assert.rejects(
    client.createSchedule({ name: 'bad', handler: 'h', cron: '61 * * * *' }),
    (e) => e.code === 'validation_failed' && e.field === 'cron',
  )
  await client.archiveSchedule(schedule.id)
  await client.deleteSchedule(schedule.id)
  await assert.rejects(client.getSchedule(schedule.id), (e) => e.code === 'not_found')
})

test('the worker endpoints over HTTP: poll, extend, ack, fail', async () => {
  const http = new Client({ url: server.url, apiKey: await workerKey(server) })
  const a = await client.createJob({ name: 'a', handler: 'node-http', max_retries: 0 })
  const b = await client.createJob({ name: 'b', handler: 'node-http', max_retries: 0 })
  const leased = await http.poll({ handlers: ['node-http'], max_jobs: 2, wait_seconds: 5 })
  const lease = new Map(leased.map((l) => [l.job.id, l.lease]))
  assert.deepEqual([...lease.keys()].sort(), [a.id, b.id].sort())
  const extended = await http.extend(lease.get(a.id).token, 600)
  assert.ok(Date.parse(extended.expires_at) > Date.now() + 300_000, extended.expires_at)
  const done = await http.ack(lease.get(a.id).token, { sent: true })
  assert.equal(done.status, 'completed')
  assert.deepEqual(done.result, { sent: true })
  const failed = await http.fail({ token: lease.get(b.id).token, error: 'no such customer', retryable: false })
  assert.equal(failed.status, 'failed')
  assert.equal(failed.last_error, 'no such customer')
  assert.deepEqual(await http.poll({ handlers: ['node-http'] }), [])
  await assert.rejects(http.ack('not-a-token'), (e) => e.code === 'invalid_argument' && /token/.test(e.message))
})

test('messages are accepted and deduplicated', async () => {
  const message = {
    url: 'https://api.example.com/send-reminder',
    delay: 3600,
    deduplication_id: 'reminder-u_123',
  }
  const accepted = await client.sendMessage(message)
  assert.ok(!('fan_out' in accepted)) // one message: a url, no target group
  assert.ok(accepted.message_id)
  assert.ok(accepted.scheduled_at)
  await assert.rejects(client.sendMessage(message), (e) => e.code === 'duplicate_message' && e.status === 409)
})

test('queues: create, list, update, pause, resume, unblock, publish, delete', async () => {
  const created = await client.createQueue({ name: 'email-sends', concurrency: 5, default_target_url: 'https://api.example.com/send' })
  assert.equal(created.name, 'email-sends')
  assert.equal(created.concurrency, 5)
  assert.equal(created.max_retries, 3)
  assert.equal(created.ordering, 'fifo')
  assert.equal(created.status, 'active')
  assert.ok(!('stats' in created))
  const names = (await client.listQueues()).map((q) => q.name)
  assert.ok(names.includes('default') && names.includes('email-sends'), names.join())
  await assert.rejects(client.createQueue({ name: 'email-sends' }), (e) => e.code === 'queue_exists' && e.status === 409)

  // Only what the patch gives changes: undefined is left out, null removes a limit.
  const changed = await client.updateQueue('email-sends', { retries: 7, concurrency: undefined })
  assert.equal(changed.concurrency, 5)
  assert.equal(changed.max_retries, 7)
  assert.equal((await client.updateQueue('email-sends', { concurrency: null })).concurrency, null)
  await assert.rejects(client.updateQueue('email-sends', { retires: 1 }), (e) => e.code === 'invalid_argument' && /retires/.test(e.message))
  assert.equal((await client.pauseQueue('email-sends')).status, 'paused')
  assert.equal((await client.resumeQueue('email-sends')).status, 'active')
  assert.equal((await client.unblockQueue('email-sends')).blocked, false)

  // A message goes to the queue's default target, with its retries.
  const accepted = await client.publish('email-sends', { body: 'hello', delay: 3600 })
  assert.equal(accepted.queue, 'email-sends')
  const message = await client.getJob(accepted.message_id)
  assert.equal(message.queue, 'email-sends')
  assert.equal(message.max_retries, 7)
  assert.equal(message.run_at, accepted.scheduled_at)

  // A pull job in the queue, with a concurrency key.
  const keyed = await client.createJob({ name: 'keyed', handler: 'send', queue: 'email-sends', concurrency_key: 'customer-42' })
  assert.equal(keyed.queue, 'email-sends')
  assert.equal(keyed.concurrency_key, 'customer-42')
  assert.deepEqual(await client.getJob(keyed.id), keyed)
  const plain = await client.createJob({ name: 'plain', handler: 'send' })
  assert.equal(plain.concurrency_key, null)
  await assert.rejects(client.createJob({ name: 'k', handler: 'h', concurrency_key: '' }), (e) => e.field === 'concurrency_key')

  const got = await client.getQueue('email-sends')
  assert.deepEqual(
    [got.stats.queued, got.stats.running, got.stats.scheduled],
    [1, 0, 1],
  )
  await assert.rejects(client.getQueue('typo'), (e) => e.code === 'queue_not_found' && e.status === 404)
  await assert.rejects(client.createJob({ name: 'n', handler: 'h', queue: 'typo' }), (e) => e.code === 'queue_not_found' && e.field === 'queue')
  await assert.rejects(client.pauseQueue('..'), (e) => e.code === 'invalid_argument')
  await assert.rejects(client.deleteQueue('email-sends'), (e) => e.code === 'queue_not_empty' && e.status === 409)
  await client.deleteQueue('email-sends', { force: true })
  await assert.rejects(client.getQueue('email-sends'), (e) => e.code === 'queue_not_found')
  assert.equal((await client.getJob(keyed.id)).status, 'cancelled')
  await assert.rejects(client.deleteQueue('default', { force: true }), (e) => e.code === 'default_queue')
})

test('the error vectors come back from the server as ChronosError', async () => {
  const fs = require('node:fs')
  const path = require('node:path')
  const vectors = JSON.parse(
    fs.readFileSync(path.join(__dirname, '..', '..', 'proto', 'vectors', 'errors.json'), 'utf8'),
  )
  const held = await client.createJob({ name: 'k', handler: 'h', idempotency_key: 'vector-key', delay: { value: 1, unit: 'hour' } })
  const cases = {
    get_unknown_job: () => client.getJob('01a20b10-0000-7000-8000-000000000099'),
    timeout_zero: () => client.createJob({ name: 'x', handler: 'h', timeout: 0 }),
    bad_key: () => new Client({ url: server.url, apiKey: 'chrns_0000000000000000_00' }).listJobs(),
    idempotency_conflict: () => client.createJob({ name: 'k', handler: 'h', idempotency_key: 'vector-key' }),
  }
  let checked = 0
  for (const v of vectors.errors) {
    if (!v.case) continue
    await assert.rejects(cases[v.case](), (e) => {
      assert.ok(e instanceof ChronosError, v.case)
      assert.equal(e.code, v.body.error.code, v.case)
      assert.equal(e.status, v.status, v.case)
      assert.equal(e.field, v.body.error.field ?? null, v.case)
      return true
    })
    checked++
  }
  assert.equal(checked, Object.keys(cases).length)
  assert.ok(held.id)
})
