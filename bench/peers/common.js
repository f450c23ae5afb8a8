// Shared settings and helpers for the peer benchmarks.
const { performance } = require("node:perf_hooks");

const int = (name, dflt) => {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number.parseInt(v, 10);
  if (!Number.isFinite(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
};

const settings = {
  jobs: int("PEERS_JOBS", 20000),
  batch: int("PEERS_BATCH", 1000),
  samples: int("PEERS_SAMPLES", 300),
  pgUrl: process.env.PEERS_PG_URL || "postgres://postgres@127.0.0.1:5432",
  redisHost: process.env.PEERS_REDIS_HOST || "127.0.0.1",
  redisPort: int("PEERS_REDIS_PORT", 6379),
};

// Exit code the run script reads as "peer skipped" (service unreachable),
// as opposed to a crash in the benchmark itself.
const SKIP = 3;

const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Each figure is printed for people, and again as one machine-readable line,
// `RESULT {"peer", "metric", …}`, which `chronos-bench --mode compare` reads.
function result(peer, metric, fields) {
  console.log(`RESULT ${JSON.stringify({ peer, metric, ...fields })}`);
}

function rate(label, what, n, ms, metric) {
  const perSecond = Math.round((n * 1000) / ms);
  console.log(`${label} ${what}: ${perSecond} jobs/s (${(ms / 1000).toFixed(2)} s)`);
  if (metric) result(label, metric, { jobs: n, seconds: ms / 1000, jobs_per_s: perSecond });
}

// Same percentile rule as chronos-bench: index round((n-1)*q) of the sorted samples.
function latency(label, what, samples, metric) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.round((s.length - 1) * q)];
  const ms = (x) => x.toFixed(2);
  console.log(`${label} ${what}, ${s.length} samples: p50 ${ms(at(0.5))} ms, p99 ${ms(at(0.99))} ms, max ${ms(s[s.length - 1])} ms`);
  if (metric) {
    const round = (x) => Math.round(x * 1000) / 1000;
    result(label, metric, { samples: s.length, p50_ms: round(at(0.5)), p99_ms: round(at(0.99)), max_ms: round(s[s.length - 1]) });
  }
}

// Bounds every wait, so a stuck peer fails the run (and still cleans up)
// instead of hanging it.
function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A promise that resolves once `hit()` has been called `n` times.
function counter(n) {
  let count = 0;
  let resolve;
  const done = new Promise((r) => (resolve = r));
  return { done, hit: () => ++count === n && resolve() };
}

// Hands a handler's start time to whoever waits for the next pickup job.
function startSignal() {
  let waiter = null;
  return {
    next: () => new Promise((r) => (waiter = r)),
    mark: () => {
      const t = now();
      const w = waiter;
      waiter = null;
      if (w) w(t);
    },
  };
}

// Pickup latency: the worker is idle; for each sample, take the time just before
// the add call, wait for the call to return and the handler to report its start
// time, then leave a short gap (as chronos-bench does) so the system is idle
// again. The add call's own time is kept too: on PostgreSQL it is one durable
// commit, which explains much of the pickup time.
async function pickup(samples, add, handlerStarted) {
  const picked = [];
  const added = [];
  for (let i = 0; i < samples; i++) {
    const started = handlerStarted();
    const t0 = now();
    await add(i);
    added.push(now() - t0);
    picked.push((await within(5000, `pickup sample ${i}`, started)) - t0);
    await sleep(20);
  }
  return { picked, added };
}

module.exports = { settings, SKIP, now, sleep, rate, latency, within, counter, startSignal, pickup };
