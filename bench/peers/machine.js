// Prints what the figures were measured on. Never fails: an unreachable
// service is reported as such (the peer scripts decide about skipping).
const fs = require("node:fs");
const os = require("node:os");
const { Client } = require("pg");
const IORedis = require("ioredis");
const { settings } = require("./common");

const cpu = (fs.readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m) || [])[1] || "unknown CPU";
const mem = `${Math.round(os.totalmem() / 2 ** 30)} GiB`;
const pkg = (n) => require(`${n}/package.json`).version;

async function postgres() {
  const c = new Client({ connectionString: `${settings.pgUrl}/postgres`, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    const v = (await c.query("show server_version")).rows[0].server_version;
    const sc = (await c.query("show synchronous_commit")).rows[0].synchronous_commit;
    return `PostgreSQL ${v}, synchronous_commit ${sc}`;
  } catch (e) {
    return `PostgreSQL unreachable at ${settings.pgUrl} (${e.message})`;
  } finally {
    await c.end().catch(() => {});
  }
}

async function redis() {
  const r = new IORedis({
    host: settings.redisHost,
    port: settings.redisPort,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  let failure; // ioredis reports the cause here, the rejection only says "closed"
  r.on("error", (e) => (failure = e));
  try {
    await r.connect();
    const v = ((await r.info("server")).match(/redis_version:(\S+)/) || [])[1];
    const [, aof] = await r.config("GET", "appendonly");
    const [, fsync] = await r.config("GET", "appendfsync");
    return `Redis ${v}, appendonly ${aof} (appendfsync ${fsync})`;
  } catch (e) {
    return `Redis unreachable at ${settings.redisHost}:${settings.redisPort} (${(failure || e).message})`;
  } finally {
    r.disconnect();
  }
}

(async () => {
  console.log(`machine  ${cpu}, ${os.cpus().length} cores, ${mem}, Node ${process.versions.node}`);
  console.log(`services ${await postgres()}; ${await redis()}`);
  console.log(`packages graphile-worker ${pkg("graphile-worker")}, bullmq ${pkg("bullmq")}, ioredis ${pkg("ioredis")}, pg ${pkg("pg")}`);
  console.log(`settings PEERS_JOBS=${settings.jobs} PEERS_BATCH=${settings.batch} PEERS_SAMPLES=${settings.samples}`);
})();
