// Graphile Worker: enqueue rate, drain rate and idle pickup latency, no-op jobs.
// Without this, Worker logs one "Completed task" line per job, which would
// dominate the cost of a no-op handler.
process.env.NO_LOG_SUCCESS = "1";

const { Client } = require("pg");
const { run, makeWorkerUtils, Logger } = require("graphile-worker");
const { settings, SKIP, now, sleep, rate, latency, within, counter, startSignal, pickup } = require("./common");

const L = "graphile-worker";
const concurrency = Number(process.env.GRAPHILE_CONCURRENCY || 24);
const poolSize = Number(process.env.GRAPHILE_POOL || concurrency + 1);
const localQueue = Number(process.env.GRAPHILE_LOCAL_QUEUE || 500);
const db = `peers_graphile_${process.pid}`;
const connectionString = `${settings.pgUrl}/${db}`;

// Keep warnings and errors, drop info/debug chatter.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`${L} [${level}] ${message}`);
});

async function admin(sql) {
  const c = new Client({ connectionString: `${settings.pgUrl}/postgres`, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

async function main() {
  try {
    await admin(`CREATE DATABASE ${db}`);
  } catch (e) {
    console.log(`SKIP ${L}: PostgreSQL unreachable or unusable at ${settings.pgUrl} (${e.message})`);
    process.exit(SKIP);
  }
  let runner, utils;
  try {
    utils = await makeWorkerUtils({ connectionString, logger });
    await utils.migrate(); // schema setup is not part of any figure

    // Context, not a Graphile figure: what one durable commit costs on this
    // PostgreSQL. Every add, fetch and completion waits on at least one.
    const commits = await utils.withPgClient(async (c) => {
      await c.query("create table commit_probe (x int)");
      const out = [];
      for (let i = 0; i < 50; i++) {
        const t = now();
        await c.query("insert into commit_probe values (1)");
        out.push(now() - t);
      }
      return out;
    });
    latency("postgres", "one-row INSERT commit (context)", commits, "commit");

    // 1. Enqueue: addJobs (one add_jobs call per batch), batches in sequence.
    let t0 = now();
    for (let i = 0; i < settings.jobs; i += settings.batch) {
      const n = Math.min(settings.batch, settings.jobs - i);
      await utils.addJobs(Array.from({ length: n }, (_, k) => ({ identifier: "noop", payload: { i: i + k } })));
    }
    rate(L, `enqueue  ${settings.jobs} jobs, addJobs in batches of ${settings.batch}`, settings.jobs, now() - t0, "enqueue");

    // 2. Drain: the clock includes starting the runner. Completions are batched
    // and written after the handler returns, so "done" is when the jobs table
    // is empty, not when the last handler ran.
    const ran = counter(settings.jobs);
    const started = startSignal();
    const taskList = { noop: async () => ran.hit(), pickup: async () => started.mark() };
    let notifications = 0;
    t0 = now();
    runner = await run({
      connectionString,
      concurrency,
      maxPoolSize: poolSize,
      noHandleSignals: true,
      logger,
      taskList,
      // Batching settings from the project's performance page.
      preset: { worker: { localQueue: { size: localQueue }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    });
    runner.events.on("pool:listen:notification", ({ message }) => {
      if (message.channel === "jobs:insert") notifications++;
    });
    const empty = async () => {
      const left = (c) => c.query("select 1 from graphile_worker.jobs limit 1");
      while ((await utils.withPgClient(left)).rowCount > 0) await sleep(2);
    };
    await within(300000, "drain", ran.done.then(empty));
    rate(
      L,
      `drain    ${settings.jobs} jobs, concurrency ${concurrency}, pool ${poolSize}, localQueue ${localQueue}, completeJobBatchDelay 0`,
      settings.jobs,
      now() - t0,
      "drain",
    );

    // 3. Pickup latency on the same, now idle, runner. It learns of new jobs by
    // LISTEN "jobs:insert" (the default runner); pollInterval stays at its 2 s
    // default, so a pickup by polling would show up as hundreds of ms.
    await sleep(500);
    notifications = 0;
    const { picked, added } = await pickup(settings.samples, (i) => utils.addJob("pickup", { i }), started.next);
    latency(L, `pickup   addJob → handler start, idle (NOTIFY seen for ${notifications}/${settings.samples})`, picked, "pickup");
    latency(L, `add      one addJob call, during the pickup run`, added, "add");
  } finally {
    if (runner) await runner.stop();
    if (utils) await utils.release();
    await admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  }
}

main().catch((e) => {
  console.error(`${L} failed:`, e);
  process.exit(1);
});
