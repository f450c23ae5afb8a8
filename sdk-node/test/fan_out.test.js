'use strict'
// Target groups, fan-outs and callbacks against a real server that may push
// to loopback: a group and its members, a fan-out whose status is read until
// it ends, and its callbacks, delivered signed by their queue to a local
// receiver that verifies and reads them with parseCallback.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { Client, ChronosError, parseCallback } = require('../lib/index.js')
const { startServer } = require('./server.js')

let server
let client

before(async () => {
  server = await startServer({ args: ['--allow-private-targets'] })
  client = new Client({ url: server.url, apiKey: server.adminKey })
})

after(async () => {
  await server?.stop()
})

/** A local HTTP endpoint: records each request (its headers and raw body) and answers `/fail` 500, anything else 200. */
async function endpoint() {
  const received = []
  const waiting = []
  const srv = http.createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      received.push({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks) })
      res.writeHead(req.url === '/fail' ? 500 : 200, { 'content-type': 'application/json' })
      res.end('{"ok":true}')
      for (const w of waiting.splice(0)) w()
    })
  })
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  const base = `http://127.0.0.1:${srv.address().port}`
  return {
    url: (path) => base + path,
    received,
    /** Resolves the requests to `path` once `n` have arrived. */
    async waitFor(path, n, within = 20_000) {
      const deadline = Date.now() + within
      for (;;) {
        const got = received.filter((r) => r.path === path)
        if (got.length >= n) return got
        if (Date.now() > deadline) throw new Error(`${got.length} of ${n} requests to ${path} within ${within} ms`)
        await new Promise((r) => { waiting.push(r); setTimeout(r, 100) })
      }
    },
    close: () => new Promise((r) => srv.close(r)),
  }
}

test('target groups and their members', async () => {
  const targets = await endpoint()
  try {
    const group = await client.createTargetGroup({ name: 'regional-webhooks' })
    assert.equal(group.name, 'regional-webhooks')
    assert.deepEqual(await client.getTargetGroup(group.id), group)
    await assert.rejects(client.createTargetGroup({ name: 'regional-webhooks' }), (e) => {
      assert.ok(e instanceof ChronosError)
      return e.code === 'target_group_exists' && e.status === 409
    })
    // A misspelt field is refused before any request.
    await assert.rejects(client.createTargetGroup({ nmae: 'x' }), (e) => e.code === 'invalid_argument' && /nmae/.test(e.message))
    const renamed = await client.renameTargetGroup(group.id, 'regions')
    assert.equal(renamed.name, 'regions')
    assert.ok((await client.listTargetGroups()).some((g) => g.id === group.id && g.name === 'regions'))

    const eu = await client.addMember(group.id, {
      target_url: targets.url('/eu'),
      method: 'PUT',
      headers: { Authorization: 'Bearer eu' },
    })
    assert.equal(eu.method, 'PUT')
    assert.equal(eu.headers.Authorization, '***redacted***')
    const us = await client.addMember(group.id, { target_url: targets.url('/us') })
    assert.deepEqual((await client.listMembers(group.id)).map((m) => m.id), [eu.id, us.id])
    await client.removeMember(group.id, us.id)
    assert.deepEqual((await client.listMembers(group.id)).map((m) => m.id), [eu.id])
    await assert.rejects(client.removeMember(group.id, us.id), (e) => e.status === 404)
    await assert.rejects(client.addMember('not-an-id', { target_url: targets.url('/x') }), (e) => e.code === 'invalid_argument')

    // Onto a queue whose default is the group, a publish fans out.
    await client.createQueue({ name: 'regional', concurrency: null, default_target_group_id: group.id })
    const published = await client.publish('regional', { body: 'hi' })
    assert.equal(published.fan_out, true)
    assert.equal(published.count, 1)
    const [got] = await targets.waitFor('/eu', 1)
    assert.equal(got.method, 'PUT')
    assert.equal(got.headers.authorization, 'Bearer eu')
    await assert.rejects(client.deleteTargetGroup(group.id), (e) => e.code === 'target_group_in_use')
    await client.deleteQueue('regional', { force: true })
    await client.deleteTargetGroup(group.id)
    await assert.rejects(client.getTargetGroup(group.id), (e) => e.code === 'not_found')
  } finally {
    await targets.close()
  }
})

test('a fan-out runs to its end, and its signed callbacks verify', async () => {
  const targets = await endpoint()
  const receiver = await endpoint()
  try {
    const made = await fetch(`${server.url}/v1/signing-secrets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'callbacks' }),
    })
    assert.equal(made.status, 201)
    const secret = await made.json()
    await client.createQueue({
      name: 'outcomes',
      concurrency: null,
      signing_secret_id: secret.id,
      default_target_url: receiver.url('/callbacks'),
    })
    const group = await client.createTargetGroup({ name: 'pair' })
    const ok = await client.addMember(group.id, { target_url: targets.url('/ok') })
    const down = await client.addMember(group.id, { target_url: targets.url('/fail') })

    const published = await client.sendMessage({
      default_target_group_id: group.id,
      body: '{"event":"price.changed"}',
      callback_queue_id: 'outcomes',
    })
    assert.equal(published.fan_out, true)
    assert.equal(published.count, 2)
    assert.equal(published.message_ids.length, 2)

    let fanOut
    const deadline = Date.now() + 20_000
    for (;;) {
      fanOut = await client.getFanOut(published.fan_out_id)
      if (fanOut.status !== 'running') break
      assert.ok(Date.now() < deadline, `still running: ${JSON.stringify(fanOut)}`)
      await new Promise((r) => setTimeout(r, 20))
    }
    assert.equal(fanOut.status, 'partial')
    assert.equal(fanOut.target_group_id, group.id)
    assert.deepEqual([fanOut.succeeded, fanOut.failed], [1, 1])
    assert.deepEqual(
      fanOut.results.map((r) => [r.target_url, r.status, r.http_status]),
      [[ok.target_url, 'succeeded', 200], [down.target_url, 'failed', 500]],
    )

    // Two member callbacks and the group callback, each signed by the queue.
    const got = await receiver.waitFor('/callbacks', 3)
    const callbacks = got.map((r) => parseCallback(secret.secret, r.headers, r.body))
    for (const r of got) {
      assert.throws(() => parseCallback('whsec_other', r.headers, r.body), (e) => e instanceof ChronosError && e.code === 'invalid_signature')
      assert.throws(() => parseCallback(secret.secret, r.headers, Buffer.concat([r.body, Buffer.from(' ')])), (e) => e.code === 'invalid_signature')
    }
    const groups = callbacks.filter((c) => 'results' in c)
    const deliveries = callbacks.filter((c) => !('results' in c))
    assert.equal(groups.length, 1)
    assert.equal(groups[0].fan_out_id, published.fan_out_id)
    assert.equal(groups[0].status, 'partial')
    assert.deepEqual(groups[0].results, fanOut.results)
    const to = (url) => deliveries.find((d) => d.url === url)
    assert.equal(deliveries.length, 2)
    assert.equal(to(ok.target_url).status, 'succeeded')
    assert.equal(to(ok.target_url).http_status, 200)
    assert.equal(to(ok.target_url).response_body, '{"ok":true}')
    assert.equal(to(ok.target_url).fan_out_id, published.fan_out_id)
    assert.equal(to(down.target_url).status, 'failed')
    assert.equal(to(down.target_url).http_status, 500)
    assert.ok(to(down.target_url).error)
    assert.deepEqual(deliveries.map((d) => d.message_id).sort(), [...published.message_ids].sort())
  } finally {
    await targets.close()
    await receiver.close()
  }
})
