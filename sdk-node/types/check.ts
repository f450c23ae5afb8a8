// Compiled (not run) by `npm test`: the package's types read as the docs
// show them, and refuse what they should.
import { Client, Worker, PermanentError, RetryAfter, ChronosError, verifySignature, parseCallback, parseUnsignedCallback } from '../lib/index.js'
import type { Job, Schedule, JobContext, Queue, QueuePublished, FanOut, Callback, CallbackEvent } from '../lib/index.js'
import type { ApiKey, CreatedInvite, CreatedOrganization, Membership, Organization, Role, Scope } from '../lib/index.js'
import type { Domain, DomainStatus, SkippedRun } from '../lib/index.js'

async function main(): Promise<void> {
  const worker = new Worker({ url: 'http://127.0.0.1:7070', apiKey: 'k', concurrency: 8 })
  worker.handle('hello', async (job: JobContext) => {
    await job.extend(60)
    if (job.signal.aborted) throw new RetryAfter(10)
    if (job.attempt > 3) throw new PermanentError('giving up')
    return { greeted: job.payload.name as string }
  })
  worker.handle('sync', (job) => job.id)
  await worker.start()
  await worker.stop()
  await worker.closed

  const client = new Client({ url: 'http://127.0.0.1:7070', apiKey: 'k' })
  const job: Job = await client.createJob({ name: 'n', handler: 'h', delay: { value: 2, unit: 'hour' } })
  const status: 'scheduled' | 'queued' | 'running' | 'completed' | 'failed' | 'cancelled' = job.status
  const schedule: Schedule = await client.createSchedule({ name: 's', handler: 'h', cron: '0 9 * * 1-5' })
  const next: string | null = schedule.next_run_at
  const runs: string[] = await client.nextRuns(schedule.id, 5)
  const page = await client.listJobs({ status: ['queued'], scheduleId: 'null', limit: 10 })
  const first: Job | undefined = page.data[0]
  try {
    await client.getJob('x')
  } catch (e) {
    if (e instanceof ChronosError) {
      const code: string = e.code
      const httpStatus: number | null = e.status
      void code, httpStatus
    }
  }
  const ok: boolean = verifySignature('whsec_x', { 'chronos-signature': 'v1=…' }, Buffer.from(''), { toleranceSeconds: 60 })
  const queue: Queue = await client.createQueue({ name: 'email-sends', concurrency: 5, failure_mode: 'block' })
  const limit: number | null = (await client.updateQueue(queue.name, { concurrency: null, retries: 7 })).concurrency
  const waiting: number | undefined = (await client.getQueue(queue.name)).stats?.queued
  const keyed: Job = await client.createJob({ name: 'n', handler: 'h', queue: queue.name, concurrency_key: 'customer-42' })
  const key: string | null = keyed.concurrency_key
  const accepted: QueuePublished = await client.publish(queue.name, { body: 'hi', delay: 60, concurrency_key: 'customer-42' })
  const acceptedId: string = 'fan_out' in accepted ? accepted.fan_out_id : accepted.message_id
  const keyedSchedule: Schedule = await client.createSchedule({ name: 's', handler: 'h', cron: '@daily', queue: queue.name, concurrency_key: 'customer-42' })
  const scheduleKey: string | null = keyedSchedule.concurrency_key
  await client.deleteQueue(queue.name, { force: true })
  // @ts-expect-error: ordering is fifo or lifo
  await client.createQueue({ name: 'q', ordering: 'random' })
  // @ts-expect-error: a queue's retries come from the queue, not the message
  await client.publish('q', { url: 'https://x.test', retries: 3 })
  void limit, waiting, key, accepted, acceptedId, scheduleKey
  // @ts-expect-error: delay units are second … week
  await client.createJob({ name: 'n', handler: 'h', delay: { value: 1, unit: 'fortnight' } })
  void status, next, runs, first, ok
}

async function fanOuts(client: Client): Promise<void> {
  const group = await client.createTargetGroup({ name: 'regional-webhooks' })
  const member = await client.addMember(group.id, { target_url: 'https://eu.example.com/hook', headers: { 'X-Region': 'eu' } })
  const members: string[] = (await client.listMembers(group.id)).map((m) => m.target_url)
  await client.renameTargetGroup(group.id, 'regions')
  await client.removeMember(group.id, member.id)
  const published = await client.sendMessage({ default_target_group_id: group.id, body: '{}', callback_queue_id: 'outcomes' })
  if ('fan_out' in published) {
    const fanOut: FanOut = await client.getFanOut(published.fan_out_id)
    const done: boolean = fanOut.status !== 'running'
    const codes: (number | null)[] = fanOut.results.map((r) => r.http_status)
    void done, codes
  } else {
    const id: string = published.message_id
    void id
  }
  await client.deleteTargetGroup(group.id)
  // @ts-expect-error: a message has a url or a target group, not both
  await client.sendMessage({ url: 'https://x.test', default_target_group_id: group.id })
  // @ts-expect-error: a member's url is target_url
  await client.addMember(group.id, { url: 'https://x.test' })
  void members
}

async function accounts(admin: Client): Promise<void> {
  const created: CreatedOrganization = await admin.createOrg({ name: 'Mon Org', slug: 'mon-org' })
  const orgKey: string = created.api_key.key
  const org: Organization = await admin.updateOrg(created.slug, { name: 'Our Org' })
  const role: Role | undefined = org.role
  const scopes: Scope[] = ['jobs:write', 'monitors:write', 'instance:admin']
  const key = await admin.createOrgApiKey(org.slug, { name: 'emails', scopes, expires_at: '2030-01-01T00:00:00Z', queues: ['emails'] })
  const keys: ApiKey[] = await admin.listOrgApiKeys(org.slug)
  const revokedAt: string | null = (await admin.revokeApiKey(key.id)).revoked_at
  await admin.createApiKey({ name: 'ci' })
  const invite: CreatedInvite = await admin.createInvite(org.slug, { email: 'dev@example.com', role: 'admin' })
  const accepted = await admin.acceptInvite({ token: invite.token, name: 'Dev', password: 'correct horse battery staple' })
  const members: Membership[] = await admin.listOrgMembers(org.slug)
  await admin.updateOrgMember(org.slug, accepted.user.id, 'viewer')
  await admin.removeOrgMember(org.slug, accepted.user.id)
  const pending: boolean = (await admin.listInvites(org.slug)).some((i) => i.status === 'pending')
  await admin.revokeInvite(org.slug, (await admin.resendInvite(org.slug, invite.id)).id)
  await admin.deleteOrg(org.slug)
  // @ts-expect-error: roles are viewer, member, admin and owner
  await admin.updateOrgMember(org.slug, accepted.user.id, 'superuser')
  // @ts-expect-error: scopes are the API's
  await admin.createApiKey({ name: 'x', scopes: ['jobs:delete'] })
  // @ts-expect-error: an organization has a slug
  await admin.createOrg({ name: 'No slug' })
  void orgKey, role, keys, revokedAt, members, pending
}

async function domains(admin: Client, scheduleId: string): Promise<void> {
  const added: Domain = await admin.addDomain('https://api.example.com/hook')
  const txt: string = added.verification.dns_txt.value
  const status: DomainStatus = (await admin.verifyDomain(added.domain)).status
  const ids: string[] = (await admin.listDomains()).map((d) => d.id)
  const verifiedAt: string | null = (await admin.getDomain(added.id)).verified_at
  await admin.deleteDomain(added.id)
  const skipped: SkippedRun[] = (await admin.listSkippedRuns(scheduleId, { limit: 10 })).data
  const spent: string | undefined = skipped[0]?.error.domain
  const warning: string | undefined = (await admin.getSchedule(scheduleId)).warning
  // @ts-expect-error: a domain is pending, verified or lapsed
  const unknown: boolean = status === 'expired'
  void txt, ids, verifiedAt, spent, warning, unknown
}

function receiver(headers: Record<string, string>, raw: Buffer): void {
  const callback: Callback = parseCallback(['whsec_new', 'whsec_old'], headers, raw, { toleranceSeconds: 60 })
  if ('results' in callback) {
    const failed: string[] = callback.results.filter((r) => r.status === 'failed').map((r) => r.target_url)
    void failed
  } else {
    const event: CallbackEvent = callback
    const code: number | null = event.http_status
    // @ts-expect-error: a delivery's callback is succeeded or failed
    const running: boolean = event.status === 'running'
    void code, running
  }
  parseUnsignedCallback(raw.toString())
}
void main, fanOuts, accounts, domains, receiver
