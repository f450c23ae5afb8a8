'use strict'
// Workers as real Node processes: docs/node-sdk.md's quickstart run as
// written (its code block, the package installed under its name), and a
// worker killed with SIGKILL mid-job whose job then runs in another.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Client, Worker } = require('../lib/index.js')
const { startServer, workerKey: newWorkerKey, finished: finishedIn } = require('./server.js')

let server
let client
let workerKey
let dir

before(async () => {
  server = await startServer()
  client = new Client({ url: server.url, apiKey: server.adminKey })
  workerKey = await newWorkerKey(server)
  // An app directory with the package installed as `@chronos/sdk`.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-node-app-'))
  fs.mkdirSync(path.join(dir, 'node_modules', '@chronos'), { recursive: true })
  fs.symlinkSync(path.resolve(__dirname, '..'), path.join(dir, 'node_modules', '@chronos', 'sdk'), 'dir')
})

after(async () => {
  await server?.stop()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

/** Runs `file` in the app directory; resolves its output as it comes. */
function run(file) {
  const child = spawn(process.execPath, [file], {
    cwd: dir,
    env: { ...process.env, CHRONOS_URL: server.url, CHRONOS_WORKER_KEY: workerKey },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  async function waitFor(text, within = 15_000) {
    const deadline = Date.now() + within
    while (!out.includes(text)) {
      if (Date.now() > deadline) assert.fail(`no "${text}" in:\n${out}`)
      if (child.exitCode !== null) assert.fail(`exited (${child.exitCode}) before "${text}":\n${out}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }
  return { child, exited, waitFor, output: () => out }
}

const finished = (id, within = 30_000) => finishedIn(client, id, within)

test("the quickstart's worker runs as written, and stops on SIGTERM", async () => {
  const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'node-sdk.md'), 'utf8')
  const code = doc.match(/```js\n(\/\/ worker\.mjs\n[\s\S]*?)```/)?.[1]
  assert.ok(code, 'docs/node-sdk.md has the // worker.mjs block')
  fs.writeFileSync(path.join(dir, 'worker.mjs'), code)
  const worker = run('worker.mjs')
  await worker.waitFor('Worker connected; waiting for jobs')
  const job = await client.createJob({ name: 'Greet', handler: 'hello', payload: { name: 'Ada' } })
  await worker.waitFor(`Hello, Ada! (job ${job.id}, attempt 1)`)
  const done = await finished(job.id)
  assert.equal(done.status, 'completed')
  assert.deepEqual(done.result, { greeted: 'Ada' })
  worker.child.kill('SIGTERM')
  const { code: exit } = await worker.exited
  assert.equal(exit, 0, worker.output())
})

test("a worker killed mid-job: its job runs again in another", async () => {
  fs.writeFileSync(
    path.join(dir, 'hang.mjs'),
    `import { Worker } from '@chronos/sdk'
const worker = new Worker({ url: process.env.CHRONOS_URL, apiKey: process.env.CHRONOS_WORKER_KEY })
worker.handle('node-crash', async (job) => {
  console.log('started ' + job.id)
  await new Promise(() => {})
})
await worker.start()
console.log('connected')
`,
  )
  const doomed = run('hang.mjs')
  await doomed.waitFor('connected')
  const job = await client.createJob({ name: 'crash', handler: 'node-crash', max_retries: 2 })
  await doomed.waitFor(`started ${job.id}`)
  doomed.child.kill('SIGKILL')
  await doomed.exited
  // Another worker: it gets the job once the server gives up on the first
  // (its 15-second grace to reconnect).
  const rescuer = new Worker({ url: server.url, apiKey: workerKey, handleSignals: false })
  rescuer.handle('node-crash', (j) => ({ rescued: j.attempt }))
  await rescuer.start()
  const done = await finished(job.id, 40_000)
  assert.equal(done.status, 'completed')
  assert.deepEqual(done.result, { rescued: 2 })
  await rescuer.stop()
})

test('a worker never keeps the process alive when not running', async () => {
  fs.writeFileSync(
    path.join(dir, 'idle.mjs'),
    `import { Worker } from '@chronos/sdk'
const idle = new Worker({ url: process.env.CHRONOS_URL, apiKey: process.env.CHRONOS_WORKER_KEY })
idle.handle('never', () => null)
const stopped = new Worker({ url: process.env.CHRONOS_URL, apiKey: process.env.CHRONOS_WORKER_KEY })
stopped.handle('never', () => null)
await stopped.start()
await stopped.stop()
console.log('stopped')
`,
  )
  const p = run('idle.mjs')
  const exit = await Promise.race([
    p.exited,
    new Promise((r) => setTimeout(() => r('still running'), 10_000)),
  ])
  if (exit === 'still running') p.child.kill('SIGKILL')
  assert.deepEqual(exit, { code: 0, signal: null }, p.output())
  assert.match(p.output(), /stopped/)
})
