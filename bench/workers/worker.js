// chronos-bench --sdk node: one Node process of Chronos workers (`work`) or
// one producer (`create`), written with the Node SDK, speaking the bench's
// line protocol (bench/src/sdk.rs):
//
//   node worker.js work --url U --key K --handler H --workers W --concurrency C --every E --total T
//     W workers of C slots, an async no-op handler for H; prints `ready`, waits for `go` on
//     stdin, starts them, prints `connected`; `ran N` at every E-th run and the T-th; on `stop`
//     (or the end of stdin) stops them gracefully and prints `stopped N`.
//   node worker.js create --url U --key K --handler H --jobs N --batch B
//     prints `ready`, waits for `go`, creates N jobs with client.createJobs, B per call, one
//     call at a time, and prints `created N`.
//
// The SDK is the package bench/sdk-setup builds (release) into bench/.sdk/node, or the one
// CHRONOS_BENCH_NODE_SDK names.
'use strict'

const path = require('node:path')
const readline = require('node:readline')

const sdk = process.env.CHRONOS_BENCH_NODE_SDK || path.join(__dirname, '..', '.sdk', 'node')
const { Worker, Client } = require(path.join(sdk, 'lib', 'index.js'))

// Pipes are written synchronously on Linux: a line is out when this returns.
const say = (line) => process.stdout.write(`${line}\n`)

function parse(argv) {
  const [role, ...rest] = argv
  const flags = {}
  for (let i = 0; i < rest.length; i += 2) {
    if (!rest[i].startsWith('--') || rest[i + 1] === undefined) throw new Error(`bad argument ${rest[i]}`)
    flags[rest[i].slice(2)] = rest[i + 1]
  }
  return { role, flags }
}

// The bench's commands, one a line; null once stdin ends.
const pending = []
let waiting = null
let ended = false
const input = readline.createInterface({ input: process.stdin })
input.on('line', (line) => (waiting ? (waiting(line.trim()), (waiting = null)) : pending.push(line.trim())))
input.on('close', () => {
  ended = true
  if (waiting) waiting(null)
})
const command = () =>
  pending.length ? Promise.resolve(pending.shift()) : ended ? Promise.resolve(null) : new Promise((r) => (waiting = r))

async function expect(word) {
  const line = await command()
  if (line !== word) throw new Error(`expected \`${word}\`, got ${line === null ? 'the end of stdin' : `\`${line}\``}`)
}

async function work(f) {
  const [workers, concurrency, every, total] = [f.workers, f.concurrency, f.every, f.total].map(Number)
  let runs = 0
  const all = []
  for (let i = 0; i < workers; i++) {
    const worker = new Worker({
      url: f.url,
      apiKey: f.key,
      concurrency,
      workerId: `bench-node-${f.handler}-${i}`,
      handleSignals: false,
    })
    worker.handle(f.handler, async () => {
      runs++
      if (runs % every === 0 || runs === total) say(`ran ${runs}`)
    })
    all.push(worker)
  }
  say('ready')
  await expect('go')
  await Promise.all(all.map((w) => w.start()))
  say('connected')
  for (;;) {
    const line = await command()
    if (line === null || line === 'stop') break
  }
  await Promise.all(all.map((w) => w.stop()))
  say(`stopped ${runs}`)
}

async function create(f) {
  const [jobs, batch] = [f.jobs, f.batch].map(Number)
  const client = new Client({ url: f.url, apiKey: f.key })
  say('ready')
  await expect('go')
  for (let from = 0; from < jobs; from += batch) {
    const n = Math.min(batch, jobs - from)
    const items = await client.createJobs(Array.from({ length: n }, () => ({ name: 'bench', handler: f.handler })))
    const refused = items.find((item) => item.error)
    if (refused) throw new Error(`the server refused a bench job: ${JSON.stringify(refused.error)}`)
  }
  say(`created ${jobs}`)
}

const { role, flags } = parse(process.argv.slice(2))
const roles = { work, create }
if (!roles[role]) {
  console.error('usage: worker.js work|create --url U --key K …')
  process.exit(2)
}
roles[role](flags).then(
  () => process.exit(0),
  (e) => {
    console.error(`worker.js ${role}:`, e)
    process.exit(1)
  },
)
