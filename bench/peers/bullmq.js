// BullMQ: enqueue rate, drain rate and idle pickup latency, no-op jobs.
const { Queue, Worker } = require("bullmq");
const IORedis = require("ioredis");
const { settings, SKIP, now, sleep, rate, latency, within, counter, startSignal, pickup } = require("./common");

const L = "bullmq";
const concurrency = Number(process.env.BULLMQ_CONCURRENCY || 100);
const name = `peers_bullmq_${process.pid}`;
const connection = { host: settings.redisHost, port: settings.redisPort };

async function reachable() {
  // Fail fast instead of ioredis' default endless reconnects.
  const r = new IORedis({ ...connection, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  let failure; // ioredis reports the cause here, the rejection only says "closed"
  r.on("error", (e) => (failure = e));
  try {
    await r.connect();
    await r.ping();
    return null;
  } catch (e) {
    return failure || e;
  } finally {
    r.disconnect();
  }
}

async function main() {
  const err = await reachable();
  if (err) {
    console.log(`SKIP ${L}: Redis unreachable at ${connection.host}:${connection.port} (${err.message})`);
    process.exit(SKIP);
  }
  // removeOnComplete: finished jobs are deleted, as Graphile Worker does; the
  // default keeps every finished job in Redis.
  const queue = new Queue(name, { connection, defaultJobOptions: { removeOnComplete: true } });
  let worker;
  try {
    // 1. Enqueue: addBulk in chunks, chunks in sequence.
    let t0 = now();
    for (let i = 0; i < settings.jobs; i += settings.batch) {
      const n = Math.min(settings.batch, settings.jobs - i);
      await queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: "noop", data: { i: i + k } })));
    }
    rate(L, `enqueue  ${settings.jobs} jobs, addBulk in chunks of ${settings.batch}`, settings.jobs, now() - t0, "enqueue");

    // 2. Drain: the clock includes starting the worker; a job counts once the
    // worker's "completed" event fires, i.e. after Redis has recorded it.
    const done = counter(settings.jobs);
    const started = startSignal();
    t0 = now();
    worker = new Worker(name, async (job) => (job.name === "pickup" ? started.mark() : undefined), {
      connection,
      concurrency,
    });
    worker.on("completed", (job) => job.name === "noop" && done.hit());
    worker.on("failed", (job, e) => console.error(`${L} job ${job && job.id} failed: ${e.message}`));
    await within(300000, "drain", done.done);
    rate(L, `drain    ${settings.jobs} jobs, 1 worker, concurrency ${concurrency}, removeOnComplete`, settings.jobs, now() - t0, "drain");

    // 3. Pickup latency on the same, now idle, worker (blocked waiting on Redis).
    await sleep(500);
    const { picked, added } = await pickup(settings.samples, (i) => queue.add("pickup", { i }), started.next);
    latency(L, `pickup   add → handler start, idle`, picked, "pickup");
    latency(L, `add      one add call, during the pickup run`, added, "add");
  } finally {
    if (worker) await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

main().catch((e) => {
  console.error(`${L} failed:`, e);
  process.exit(1);
});
