'use strict'
// The REST client: the Rust SDK's, through the binding. Every method
// returns a Promise of the server's answer as a plain object.

const native = require('../native.js')
const { call, fromNative } = require('./errors.js')

class Client {
  /**
   * @param {{ url: string, apiKey: string }} options
   */
  constructor({ url, apiKey }) {
    try {
      this.native = new native.NativeClient(url, apiKey)
    } catch (e) {
      throw fromNative(e)
    }
  }

  createJob(job) { return call(this.native.createJob(job)) }
  createJobs(jobs) { return call(this.native.createJobs(jobs)) }
  getJob(id) { return call(this.native.getJob(id)) }
  listJobs(query) { return call(this.native.listJobs(query)) }
  cancelJob(id) { return call(this.native.cancelJob(id)) }
  retryJob(id) { return call(this.native.retryJob(id)) }
  listExecutions(id, page) { return call(this.native.listExecutions(id, page)) }
  sendMessage(message) { return call(this.native.sendMessage(message)) }
  createSchedule(schedule) { return call(this.native.createSchedule(schedule)) }
  getSchedule(id) { return call(this.native.getSchedule(id)) }
  listSchedules(page) { return call(this.native.listSchedules(page)) }
  updateSchedule(id, patch) { return call(this.native.updateSchedule(id, patch)) }
  deleteSchedule(id) { return call(this.native.deleteSchedule(id)) }
  pauseSchedule(id) { return call(this.native.pauseSchedule(id)) }
  resumeSchedule(id) { return call(this.native.resumeSchedule(id)) }
  archiveSchedule(id) { return call(this.native.archiveSchedule(id)) }
  triggerSchedule(id) { return call(this.native.triggerSchedule(id)) }
  nextRuns(id, count = 10) { return call(this.native.nextRuns(id, count)) }
}

module.exports = { Client }
