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

module.exports = { startServer }
