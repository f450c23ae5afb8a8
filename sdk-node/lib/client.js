'use strict'
// The REST client: the Rust SDK's, through the binding. Every method
// returns a Promise of the server's answer as a plain object. The methods
// are the Rust client's, in camelCase (sdk-rust/manifest.json; the tests
// hold this class to it).

const native = require('../native.js')
const { call, fromNative } = require('./errors.js')

class Client {
  /**
   * @param {{ url: string, apiKey: string, timeoutSeconds?: number | null }} options
   *   `timeoutSeconds`: how long one request may take (default 30; `null`: no limit).
   */
  constructor({ url, apiKey, timeoutSeconds }) {
    const options = timeoutSeconds === null ? { noTimeout: true } : { timeoutSeconds }
    try {
      this._native = new native.NativeClient(url, apiKey, options)
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** The server's base URL, as the client uses it (ending in `/`). */
  get baseUrl() { return this._native.baseUrl }
  /** How long one request may take, in seconds; `null` for no limit. */
  get timeoutSeconds() { return this._native.timeoutSeconds }

  createJob(job) { return call(this._native.createJob(job)) }
  // As JSON text: a batch crosses the binding in one string each way.
  createJobs(jobs) { return call(this._native.createJobs(JSON.stringify(jobs) ?? 'null')).then(JSON.parse) }
  getJob(id) { return call(this._native.getJob(id)) }
  listJobs(query) { return call(this._native.listJobs(query)) }
  cancelJob(id) { return call(this._native.cancelJob(id)) }
  retryJob(id) { return call(this._native.retryJob(id)) }
  listExecutions(id, page) { return call(this._native.listExecutions(id, page)) }
  /** Resolves to one message, or to a fan-out (`fan_out: true`) for a message naming a target group. */
  sendMessage(message) { return call(this._native.sendMessage(message)) }
  createQueue(queue) { return call(this._native.createQueue(queue)) }
  getQueue(name) { return call(this._native.getQueue(name)) }
  listQueues() { return call(this._native.listQueues()) }
  /** `null` in `patch` removes a limit or a default; `undefined` leaves it. */
  updateQueue(name, patch) { return call(this._native.updateQueue(name, patch)) }
  /** `{ force: true }` cancels the queue's unfinished jobs first. */
  deleteQueue(name, options) { return call(this._native.deleteQueue(name, options)) }
  pauseQueue(name) { return call(this._native.pauseQueue(name)) }
  resumeQueue(name) { return call(this._native.resumeQueue(name)) }
  unblockQueue(name) { return call(this._native.unblockQueue(name)) }
  /** Resolves to one message, or to a fan-out (`fan_out: true`) for a message naming a target group. */
  publish(queue, message) { return call(this._native.publish(queue, message)) }
  createTargetGroup(group) { return call(this._native.createTargetGroup(group)) }
  getTargetGroup(id) { return call(this._native.getTargetGroup(id)) }
  listTargetGroups() { return call(this._native.listTargetGroups()) }
  renameTargetGroup(id, name) { return call(this._native.renameTargetGroup(id, name)) }
  deleteTargetGroup(id) { return call(this._native.deleteTargetGroup(id)) }
  addMember(groupId, member) { return call(this._native.addMember(groupId, member)) }
  listMembers(groupId) { return call(this._native.listMembers(groupId)) }
  removeMember(groupId, memberId) { return call(this._native.removeMember(groupId, memberId)) }
  getFanOut(id) { return call(this._native.getFanOut(id)) }
  /** Resolves to the organization and its first admin key (`api_key.key`, shown this once). */
  createOrg(org) { return call(this._native.createOrg(org)) }
  listOrgs() { return call(this._native.listOrgs()) }
  getOrg(slug) { return call(this._native.getOrg(slug)) }
  updateOrg(slug, patch) { return call(this._native.updateOrg(slug, patch)) }
  deleteOrg(slug) { return call(this._native.deleteOrg(slug)) }
  /** A key in the client key's own organization; `scopes` default to `['admin']`. */
  createApiKey(key) { return call(this._native.createApiKey(key)) }
  usage() { return call(this._native.usage()) }
  /** Resolves to the domain with its challenges (`verification`): `pending`, or `verified` if it already is. */
  addDomain(domain) { return call(this._native.addDomain(domain)) }
  verifyDomain(domain) { return call(this._native.verifyDomain(domain)) }
  /** Every domain of the organization, newest first (all pages). */
  listDomains() { return call(this._native.listDomains()) }
  getDomain(id) { return call(this._native.getDomain(id)) }
  deleteDomain(id) { return call(this._native.deleteDomain(id)) }
  listApiKeys() { return call(this._native.listApiKeys()) }
  revokeApiKey(id) { return call(this._native.revokeApiKey(id)) }
  createOrgApiKey(slug, key) { return call(this._native.createOrgApiKey(slug, key)) }
  listOrgApiKeys(slug) { return call(this._native.listOrgApiKeys(slug)) }
  listOrgMembers(slug) { return call(this._native.listOrgMembers(slug)) }
  updateOrgMember(slug, userId, role) { return call(this._native.updateOrgMember(slug, userId, role)) }
  removeOrgMember(slug, userId) { return call(this._native.removeOrgMember(slug, userId)) }
  /** Resolves to the invite with its single-use `url` (`…/invite#<token>`) and `token`. */
  createInvite(slug, invite) { return call(this._native.createInvite(slug, invite)) }
  listInvites(slug) { return call(this._native.listInvites(slug)) }
  revokeInvite(slug, id) { return call(this._native.revokeInvite(slug, id)) }
  resendInvite(slug, id) { return call(this._native.resendInvite(slug, id)) }
  acceptInvite(accept) { return call(this._native.acceptInvite(accept)) }
  createSchedule(schedule) { return call(this._native.createSchedule(schedule)) }
  getSchedule(id) { return call(this._native.getSchedule(id)) }
  listSchedules(page) { return call(this._native.listSchedules(page)) }
  updateSchedule(id, patch) { return call(this._native.updateSchedule(id, patch)) }
  deleteSchedule(id) { return call(this._native.deleteSchedule(id)) }
  pauseSchedule(id) { return call(this._native.pauseSchedule(id)) }
  resumeSchedule(id) { return call(this._native.resumeSchedule(id)) }
  archiveSchedule(id) { return call(this._native.archiveSchedule(id)) }
  triggerSchedule(id) { return call(this._native.triggerSchedule(id)) }
  /** `count` defaults to the Rust SDK's (10). */
  nextRuns(id, count) { return call(this._native.nextRuns(id, count)) }
  listScheduleExecutions(id, page) { return call(this._native.listScheduleExecutions(id, page)) }
  listSkippedRuns(id, page) { return call(this._native.listSkippedRuns(id, page)) }
  listWorkers() { return call(this._native.listWorkers()) }
  poll(request) { return call(this._native.poll(request)) }
  ack(token, result) { return call(this._native.ack(token, result)) }
  fail(request) { return call(this._native.fail(request)) }
  extend(token, seconds) { return call(this._native.extend(token, seconds)) }
}

module.exports = { Client }
