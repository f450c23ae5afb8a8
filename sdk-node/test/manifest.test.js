'use strict'
// The SDK against sdk-rust/manifest.json, the Rust SDK's surface: the
// Client has exactly the Rust client's methods and properties (in
// camelCase), and the Client and Worker take the Rust SDK's defaults.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Client, Worker } = require('../lib/index.js')
const { startServer } = require('./server.js')

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'sdk-rust', 'manifest.json'), 'utf8'))
const camel = (name) => manifest.node_names[name] ?? name.replace(/_([a-z])/g, (_, c) => c.toUpperCase())

let server

before(async () => {
  server = await startServer()
})

after(async () => {
  await server?.stop()
})

test("the Client's methods and properties are the Rust client's", () => {
  const own = Object.getOwnPropertyNames(Client.prototype).filter((n) => n !== 'constructor')
  const isGetter = (n) => typeof Object.getOwnPropertyDescriptor(Client.prototype, n).get === 'function'
  assert.deepEqual(own.filter((n) => !isGetter(n)).sort(), manifest.client.methods.map(camel).sort())
  assert.deepEqual(own.filter(isGetter).sort(), manifest.client.properties.map(camel).sort())
  assert.deepEqual(Object.keys(manifest.only_in.node), [], 'Node has nothing of its own yet: list it here')
})

test("the Client's defaults are the Rust SDK's", async () => {
  const { defaults } = manifest.client
  const client = new Client({ url: server.url, apiKey: server.adminKey })
  assert.equal(client.timeoutSeconds, defaults.timeout_seconds)
  assert.equal(client.baseUrl, `${server.url}/`)
  assert.equal(new Client({ url: server.url, apiKey: 'k', timeoutSeconds: 2.5 }).timeoutSeconds, 2.5)
  assert.equal(new Client({ url: server.url, apiKey: 'k', timeoutSeconds: null }).timeoutSeconds, null)
  const schedule = await client.createSchedule({ name: 'manifest', handler: 'h', cron: '*/5 * * * *' })
  assert.equal((await client.nextRuns(schedule.id)).length, defaults.next_runs_count)
})

test("the Worker's options and defaults are the Rust SDK's", () => {
  const { defaults, options } = manifest.worker
  const worker = new Worker({ url: server.url, apiKey: 'k' })
  const settings = worker._native.settings()
  assert.equal(settings.concurrency, defaults.concurrency)
  assert.equal(settings.shutdownGraceSeconds, defaults.shutdown_grace_seconds)
  assert.equal(worker._handleSignals, defaults.handle_signals)
  // Every option, by its camelCase name, reaches the worker.
  assert.deepEqual(options.map(camel), ['concurrency', 'workerId', 'shutdownGraceSeconds', 'handleSignals'])
  const set = new Worker({ url: server.url, apiKey: 'k', concurrency: 7, workerId: 'w-7', shutdownGraceSeconds: 5, handleSignals: false })
  assert.deepEqual(set._native.settings(), { concurrency: 7, workerId: 'w-7', shutdownGraceSeconds: 5 })
  assert.equal(set._handleSignals, false)
})
