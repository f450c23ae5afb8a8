'use strict'
// A real `chronos serve` for the tests: the binary cargo built, on the
// embedded store in a temporary directory and a free port.

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const BIN = process.env.CHRONOS_BIN ?? path.join(__dirname, '..', '..', 'target', 'debug', 'chronos')

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

/** The environment, without what could point the server at another store. */
function withoutStoreSettings() {
  const env = { ...process.env, CHRONOS_LOG: 'warn' }
  delete env.CHRONOS_DATABASE_URL
  delete env.CHRONOS_DATA_DIR
  delete env.CHRONOS_LISTEN
  return env
}

/** Starts a server; resolves once it printed its admin key and answers. */
async function startServer({ args = [] } = {}) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`no chronos binary at ${BIN}: run \`cargo build -p chronos-server\` (or set CHRONOS_BIN)`)
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-node-'))
  const port = await freePort()
  const child = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: withoutStoreSettings(),
  })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 20_000
  let adminKey
  while (Date.now() < deadline) {
    adminKey = adminKey ?? out.match(/chrns_[0-9a-f]+_[0-9a-f]+/)?.[0]
    if (adminKey) {
      try {
        const r = await fetch(`${url}/healthz`)
        if (r.ok) break
      } catch {}
    }
    if (child.exitCode !== null) throw new Error(`chronos serve exited: ${out}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  if (!adminKey) throw new Error(`chronos serve did not start: ${out}`)
  return {
    url,
    adminKey,
    output: () => out,
    async stop() {
      child.kill('SIGTERM')
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', resolve)))
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A new key with the `worker` scope, made with the admin key. */
async function workerKey(server) {
  const r = await fetch(`${server.url}/v1/api-keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'node worker', scopes: ['worker'] }),
  })
  if (!r.ok) throw new Error(`creating a worker key: ${r.status} ${await r.text()}`)
  return (await r.json()).key
}

/** Polls until the job is completed, failed or cancelled. */
async function finished(client, id, within = 15_000) {
  const deadline = Date.now() + within
  for (;;) {
    const job = await client.getJob(id)
    if (['completed', 'failed', 'cancelled'].includes(job.status)) return job
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status} after ${within} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

module.exports = { startServer, workerKey, finished }
