'use strict'
// Organizations, API keys, members and invites against a real server, with
// the instance administrator's key (the one a fresh server prints, which
// holds `instance:admin`) and with an organization's own key.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { Client, ChronosError } = require('../lib/index.js')
const { startServer } = require('./server.js')

/** Long enough, and not a common password. */
const PASSWORD = 'correct horse battery staple'

let server
let admin

before(async () => {
  server = await startServer()
  admin = new Client({ url: server.url, apiKey: server.adminKey })
})

after(async () => {
  await server?.stop()
})

const is = (code, status) => (e) => {
  assert.ok(e instanceof ChronosError, e)
  assert.equal(e.code, code, e.message)
  if (status !== undefined) assert.equal(e.status, status, e.message)
  return true
}

test('organizations, their keys, members and invites', async () => {
  // An organization, and its first admin key, shown this once.
  const created = await admin.createOrg({ name: 'Node Org', slug: 'node-org' })
  assert.equal(created.slug, 'node-org')
  assert.equal(created.name, 'Node Org')
  assert.equal(created.role, undefined)
  assert.deepEqual(created.api_key.scopes, ['admin'])
  assert.ok(created.api_key.key.startsWith(`chrns_${created.api_key.id}_`))
  const { api_key: _, ...org } = created
  assert.deepEqual(await admin.getOrg('node-org'), org)
  await assert.rejects(admin.createOrg({ name: 'Again', slug: 'node-org' }), is('slug_taken', 409))
  await assert.rejects(admin.createOrg({ name: 'x', slug: 'node-x', owner: 'me' }), (e) => e.code === 'invalid_argument' && /owner/.test(e.message))

  const own = new Client({ url: server.url, apiKey: created.api_key.key })
  assert.deepEqual(await own.listOrgs(), [org])
  assert.deepEqual((await admin.listOrgs()).map((o) => o.slug), ['default'])

  const renamed = await admin.updateOrg('node-org', { name: 'Our Node Org', slug: 'our-node-org' })
  assert.deepEqual([renamed.id, renamed.slug, renamed.name], [org.id, 'our-node-org', 'Our Node Org'])
  await assert.rejects(admin.getOrg('node-org'), is('not_found', 404))
  const slug = 'our-node-org'

  // A key limited to one queue, that expires: made with the organization's own key.
  const expires = new Date(Date.now() + 30 * 86400_000)
  expires.setUTCMilliseconds(0)
  const limited = await own.createApiKey({ name: 'emails only', scopes: ['jobs:write'], expires_at: expires.toISOString(), queues: ['emails'] })
  assert.equal(limited.name, 'emails only')
  assert.deepEqual(limited.scopes, ['jobs:write'])
  assert.equal(limited.expires_at, expires.toISOString())
  assert.deepEqual(limited.queues, ['emails'])
  assert.equal(limited.revoked_at, null)
  const emailsOnly = new Client({ url: server.url, apiKey: limited.key })
  await assert.rejects(emailsOnly.createJob({ name: 'n', handler: 'h', queue: 'default' }), is('queue_not_allowed', 403))

  // One made by the instance administrator, naming the organization.
  const workers = await admin.createOrgApiKey(slug, { name: 'workers', scopes: ['worker', 'monitors:write'] })
  assert.deepEqual(workers.scopes, ['worker', 'monitors:write'])
  assert.deepEqual([workers.expires_at, workers.queues], [null, null])

  // A new organization is on the plan that limits nothing.
  const usage = await own.usage()
  assert.deepEqual([usage.plan.name, usage.day.used, usage.day.limit, usage.month.limit], ['unlimited', 0, null, null])
  assert.equal(typeof usage.day.resets_at, 'string')

  const keys = await own.listApiKeys()
  const ids = (list) => list.map((k) => k.id).sort()
  assert.deepEqual(ids(keys), [created.api_key.id, limited.id, workers.id].sort())
  assert.deepEqual(ids(await admin.listOrgApiKeys(slug)), ids(keys))
  assert.ok(keys.every((k) => !('key' in k)), 'never a secret')
  // The list shows when a key was last used: the refused request above.
  const listed = keys.find((k) => k.id === limited.id)
  assert.ok(listed.last_used_at)
  const { key: __, ...limitedListed } = limited
  assert.deepEqual(listed, { ...limitedListed, last_used_at: listed.last_used_at })

  const revoked = await own.revokeApiKey(limited.id)
  assert.equal(revoked.id, limited.id)
  assert.ok(revoked.revoked_at)
  await assert.rejects(emailsOnly.listOrgs(), (e) => e.status === 401)

  // An invite: a link to hand over, and its token.
  const invite = await admin.createInvite(slug, { email: 'dev@example.com', role: 'member' })
  assert.deepEqual([invite.email, invite.role, invite.status], ['dev@example.com', 'member', 'pending'])
  assert.ok(invite.url.includes('/invite#'), invite.url)
  assert.ok(invite.url.endsWith(invite.token), invite.url)
  assert.equal(invite.mailed, false)

  const accepted = await own.acceptInvite({ token: invite.token, name: 'Dev', password: PASSWORD })
  assert.deepEqual([accepted.user.email, accepted.user.name], ['dev@example.com', 'Dev'])
  assert.deepEqual([accepted.organization.id, accepted.organization.role], [org.id, 'member'])
  assert.ok(accepted.csrf_token)
  await assert.rejects(own.acceptInvite({ token: invite.token, password: PASSWORD }), is('not_found', 404))

  const members = await own.listOrgMembers(slug)
  assert.deepEqual(members.map((m) => [m.user_id, m.email, m.role]), [[accepted.user.id, 'dev@example.com', 'member']])
  const promoted = await admin.updateOrgMember(slug, accepted.user.id, 'admin')
  assert.equal(promoted.role, 'admin')
  assert.deepEqual(await own.listOrgMembers(slug), [promoted])
  await assert.rejects(admin.updateOrgMember(slug, accepted.user.id, 'boss'), (e) => e.code === 'invalid_argument' && /role/.test(e.message))
  await assert.rejects(admin.updateOrgMember(slug, 'not-a-user', 'viewer'), (e) => e.code === 'invalid_argument' && /userId/.test(e.message))

  // A second invite, resent (a new link; the old one stops working), then revoked.
  const second = await own.createInvite(slug, { email: 'ops@example.com', role: 'viewer' })
  const resent = await own.resendInvite(slug, second.id)
  assert.deepEqual([resent.id, resent.status], [second.id, 'pending'])
  assert.notEqual(resent.token, second.token)
  assert.ok(resent.url.includes('/invite#'), resent.url)
  await assert.rejects(own.acceptInvite({ token: second.token, password: PASSWORD }), is('not_found'))
  const withdrawn = await own.revokeInvite(slug, second.id)
  assert.deepEqual([withdrawn.id, withdrawn.status], [second.id, 'revoked'])
  assert.ok(withdrawn.revoked_at)
  await assert.rejects(own.acceptInvite({ token: resent.token, password: PASSWORD }), is('not_found'))
  await assert.rejects(own.resendInvite(slug, second.id), is('not_found'))
  assert.deepEqual(
    (await admin.listInvites(slug)).map((i) => [i.id, i.status]),
    [[second.id, 'revoked'], [invite.id, 'accepted']],
  )

  await admin.removeOrgMember(slug, accepted.user.id)
  assert.deepEqual(await own.listOrgMembers(slug), [])
  await assert.rejects(admin.removeOrgMember(slug, accepted.user.id), is('not_found'))

  // Deleting it: an owner's, or the instance administrator's; its keys go with it.
  await assert.rejects(own.deleteOrg(slug), is('owner_only', 403))
  await admin.deleteOrg(slug)
  await assert.rejects(admin.getOrg(slug), is('not_found'))
  await assert.rejects(own.listOrgs(), (e) => e.status === 401)
  await assert.rejects(admin.deleteOrg('default'), is('instance_admin_org', 409))
})

test('slugs are one path segment', async () => {
  for (const slug of ['a/b', 'x?y', 'nobody']) {
    await assert.rejects(admin.getOrg(slug), is('not_found', 404))
  }
  for (const slug of ['.', '..']) {
    await assert.rejects(admin.listOrgMembers(slug), (e) => e.code === 'invalid_argument' && /organization slug/.test(e.message))
  }
  await assert.rejects(admin.revokeApiKey('no/such/key'), is('not_found', 404))
})
