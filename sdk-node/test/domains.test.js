'use strict'
// Verified domains and schedules' skipped runs against a real server. No
// challenge is served here: verifying fails, saying so.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { Client, ChronosError } = require('../lib/index.js')
const { startServer } = require('./server.js')

let server
let client

before(async () => {
  server = await startServer()
  client = new Client({ url: server.url, apiKey: server.adminKey })
})

after(async () => {
  await server?.stop()
})

const is = (code, status) => (e) => {
  assert.ok(e instanceof ChronosError, e)
  assert.equal(e.code, code, e.message)
  if (status !== undefined) assert.equal(e.status, status, e.message)
  return true
}

test('a domain: added, listed, read, not verified, deleted', async () => {
  // A URL is normalized to its host; the answer holds both challenges.
  const added = await client.addDomain('https://API.Example.test/hook')
  assert.deepEqual([added.domain, added.status, added.method], ['api.example.test', 'pending', null])
  const { well_known: wellKnown, dns_txt: txt } = added.verification
  assert.equal(wellKnown.url, 'https://api.example.test/.well-known/chronos-verification.txt')
  assert.deepEqual([txt.name, txt.type, txt.value], ['_chronos-verification.api.example.test', 'TXT', wellKnown.content])

  assert.deepEqual(await client.listDomains(), [added])
  assert.deepEqual(await client.getDomain(added.id), added)
  await assert.rejects(client.verifyDomain('api.example.test'), is('verification_failed', 422))
  await assert.rejects(client.verifyDomain('other.example.test'), is('not_found', 404))

  assert.equal(await client.deleteDomain(added.id), undefined)
  assert.deepEqual(await client.listDomains(), [])
  await assert.rejects(client.getDomain(added.id), is('not_found', 404))
  await assert.rejects(client.getDomain('not-a-uuid'), is('invalid_argument'))
})

test('a schedule\'s skipped runs', async () => {
  const schedule = await client.createSchedule({ name: 'report', handler: 'report', interval: { value: 1, unit: 'day' } })
  assert.equal(schedule.warning, undefined)
  assert.deepEqual(await client.listSkippedRuns(schedule.id, { limit: 10 }), { data: [], next_cursor: null })
  assert.deepEqual(await client.listSkippedRuns(schedule.id), { data: [], next_cursor: null })
  await assert.rejects(client.listSkippedRuns('0193a0a0-0000-7000-8000-000000000000'), is('not_found', 404))
})
