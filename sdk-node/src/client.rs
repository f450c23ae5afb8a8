//! `Client`: the Rust SDK's REST client, each method a Promise. Bodies and
//! answers cross as plain objects, read into the Rust SDK's wire types on
//! the way in — so a misspelt field is refused before any request — and
//! written back as the server sent them.

use crate::error::{from_sdk, invalid};
use chronos::{JobStatus, ListJobs, ScheduleFilter, ScheduleStatus};
use napi::bindgen_prelude::Result;
use napi_derive::napi;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

#[napi(js_name = "NativeClient")]
pub struct Client {
    inner: chronos::Client,
}

/// How the client talks to the server. Left out: the Rust SDK's defaults.
#[napi(object)]
#[derive(Default)]
pub struct ClientOptions {
    /// How long one request may take.
    pub timeout_seconds: Option<f64>,
    /// No request timeout at all (lib/client.js: `timeoutSeconds: null`).
    pub no_timeout: Option<bool>,
}

/// `listJobs` filters.
#[napi(object)]
#[derive(Default)]
pub struct JobQuery {
    /// One status or several: `queued`, `running` …
    pub status: Option<Vec<String>>,
    pub handler: Option<String>,
    pub queue: Option<String>,
    /// A schedule's id, or `null` (the string) for one-off jobs only.
    pub schedule_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A page: `limit` and the `nextCursor` of the previous one.
#[napi(object)]
#[derive(Default)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// `listSchedules` only: `active`, `paused` or `archived`.
    pub status: Option<String>,
}

/// `deleteQueue` options.
#[napi(object)]
#[derive(Default)]
pub struct DeleteQueueOptions {
    /// Cancel the queue's unfinished jobs first (default false: a queue
    /// that holds any is not deleted).
    pub force: Option<bool>,
}

fn read<T: DeserializeOwned>(what: &str, value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| invalid(what, e))
}

fn write<T: Serialize>(value: T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| invalid("answer", e))
}

fn id(value: &str) -> Result<Uuid> {
    uuid("id", value)
}

fn uuid(what: &str, value: &str) -> Result<Uuid> {
    Uuid::parse_str(value).map_err(|e| invalid(what, e))
}

#[napi]
impl Client {
    /// A client of the server at `url` (e.g. `http://127.0.0.1:7070`).
    #[napi(constructor)]
    pub fn new(url: String, api_key: String, options: Option<ClientOptions>) -> Result<Self> {
        let options = options.unwrap_or_default();
        let mut builder = chronos::Client::builder(url, api_key)
            .user_agent(concat!("chronos-node/", env!("CARGO_PKG_VERSION")));
        if let Some(secs) = options.timeout_seconds {
            if !(secs.is_finite() && secs > 0.0) {
                return Err(invalid(
                    "timeoutSeconds",
                    "must be a positive number of seconds (null for none)",
                ));
            }
            builder = builder.timeout(Duration::from_secs_f64(secs));
        }
        if options.no_timeout == Some(true) {
            builder = builder.no_timeout();
        }
        let inner = builder.build().map_err(from_sdk)?;
        Ok(Client { inner })
    }

    /// The server's base URL, as the client uses it (ending in `/`).
    #[napi(getter)]
    pub fn base_url(&self) -> String {
        self.inner.base_url().to_string()
    }

    /// How long one request may take, in seconds; `null` for no limit.
    #[napi(getter)]
    pub fn timeout_seconds(&self) -> Option<f64> {
        self.inner.timeout().map(|t| t.as_secs_f64())
    }

    #[napi]
    pub async fn create_job(&self, job: Value) -> Result<Value> {
        let job = read("job", job)?;
        write(self.inner.create_job(&job).await.map_err(from_sdk)?)
    }

    /// The jobs and the answer as JSON text (lib/client.js's
    /// `JSON.stringify` and `JSON.parse`): for a batch of 1,000 jobs, far
    /// quicker than napi's conversion property by property.
    #[napi]
    pub async fn create_jobs(&self, jobs: String) -> Result<String> {
        let jobs: Vec<chronos::CreateJob> =
            serde_json::from_str(&jobs).map_err(|e| invalid("jobs", e))?;
        let answer = self.inner.create_jobs(&jobs).await.map_err(from_sdk)?;
        serde_json::to_string(&answer).map_err(|e| invalid("answer", e))
    }

    #[napi]
    pub async fn get_job(&self, id_: String) -> Result<Value> {
        write(self.inner.get_job(id(&id_)?).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn list_jobs(&self, query: Option<JobQuery>) -> Result<Value> {
        let q = query.unwrap_or_default();
        let mut list = ListJobs::new();
        for status in q.status.unwrap_or_default() {
            let status: JobStatus = read("status", Value::String(status))?;
            list = list.status(status);
        }
        if let Some(h) = q.handler {
            list = list.handler(h);
        }
        if let Some(queue) = q.queue {
            list = list.queue(queue);
        }
        match q.schedule_id.as_deref() {
            None => {}
            Some("null") => list = list.schedule(ScheduleFilter::OneOff),
            Some(s) => list = list.schedule(ScheduleFilter::Id(id(s)?)),
        }
        if let Some(limit) = q.limit {
            list = list.limit(limit);
        }
        if let Some(cursor) = q.cursor {
            list = list.cursor(cursor);
        }
        write(self.inner.list_jobs(&list).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn cancel_job(&self, id_: String) -> Result<Value> {
        write(self.inner.cancel_job(id(&id_)?).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn retry_job(&self, id_: String) -> Result<Value> {
        write(self.inner.retry_job(id(&id_)?).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn list_executions(&self, id_: String, page: Option<PageQuery>) -> Result<Value> {
        let page = page.unwrap_or_default();
        let list = self
            .inner
            .list_executions(id(&id_)?, page.limit, page.cursor.as_deref())
            .await
            .map_err(from_sdk)?;
        write(list)
    }

    #[napi]
    pub async fn send_message(&self, message: Value) -> Result<Value> {
        let message = read("message", message)?;
        write(self.inner.send_message(&message).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn create_queue(&self, queue: Value) -> Result<Value> {
        let queue = read("queue", queue)?;
        write(self.inner.create_queue(&queue).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn get_queue(&self, name: String) -> Result<Value> {
        write(self.inner.get_queue(&name).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn list_queues(&self) -> Result<Value> {
        write(self.inner.list_queues().await.map_err(from_sdk)?)
    }

    /// `patch`'s fields change; `null` removes a limit (`undefined` is left
    /// out, as if absent).
    #[napi]
    pub async fn update_queue(&self, name: String, patch: Value) -> Result<Value> {
        let patch = read("patch", patch)?;
        let queue = self
            .inner
            .update_queue(&name, &patch)
            .await
            .map_err(from_sdk)?;
        write(queue)
    }

    #[napi]
    pub async fn delete_queue(
        &self,
        name: String,
        options: Option<DeleteQueueOptions>,
    ) -> Result<()> {
        let force = options.unwrap_or_default().force.unwrap_or(false);
        self.inner
            .delete_queue(&name, force)
            .await
            .map_err(from_sdk)
    }

    #[napi]
    pub async fn pause_queue(&self, name: String) -> Result<Value> {
        write(self.inner.pause_queue(&name).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn resume_queue(&self, name: String) -> Result<Value> {
        write(self.inner.resume_queue(&name).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn unblock_queue(&self, name: String) -> Result<Value> {
        write(self.inner.unblock_queue(&name).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn publish(&self, queue: String, message: Value) -> Result<Value> {
        let message = read("message", message)?;
        write(
            self.inner
                .publish(&queue, &message)
                .await
                .map_err(from_sdk)?,
        )
    }

    #[napi]
    pub async fn create_target_group(&self, group: Value) -> Result<Value> {
        let group = read("group", group)?;
        write(
            self.inner
                .create_target_group(&group)
                .await
                .map_err(from_sdk)?,
        )
    }

    #[napi]
    pub async fn get_target_group(&self, id_: String) -> Result<Value> {
        write(
            self.inner
                .get_target_group(id(&id_)?)
                .await
                .map_err(from_sdk)?,
        )
    }

    #[napi]
    pub async fn list_target_groups(&self) -> Result<Value> {
        write(self.inner.list_target_groups().await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn rename_target_group(&self, id_: String, name: String) -> Result<Value> {
        let group = self
            .inner
            .rename_target_group(id(&id_)?, &name)
            .await
            .map_err(from_sdk)?;
        write(group)
    }

    #[napi]
    pub async fn delete_target_group(&self, id_: String) -> Result<()> {
        self.inner
            .delete_target_group(id(&id_)?)
            .await
            .map_err(from_sdk)
    }

    #[napi]
    pub async fn add_member(&self, group_id: String, member: Value) -> Result<Value> {
        let group_id = uuid("groupId", &group_id)?;
        let member = read("member", member)?;
        write(
            self.inner
                .add_member(group_id, &member)
                .await
                .map_err(from_sdk)?,
        )
    }

    #[napi]
    pub async fn list_members(&self, group_id: String) -> Result<Value> {
        let group_id = uuid("groupId", &group_id)?;
        write(self.inner.list_members(group_id).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn remove_member(&self, group_id: String, member_id: String) -> Result<()> {
        let group_id = uuid("groupId", &group_id)?;
        let member_id = uuid("memberId", &member_id)?;
        self.inner
            .remove_member(group_id, member_id)
            .await
            .map_err(from_sdk)
    }

    #[napi]
    pub async fn get_fan_out(&self, id_: String) -> Result<Value> {
        write(self.inner.get_fan_out(id(&id_)?).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn create_org(&self, org: Value) -> Result<Value> {
        let org = read("org", org)?;
        write(self.inner.create_org(&org).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn list_orgs(&self) -> Result<Value> {
        write(self.inner.list_orgs().await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn get_org(&self, slug: String) -> Result<Value> {
        write(self.inner.get_org(&slug).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn update_org(&self, slug: String, patch: Value) -> Result<Value> {
        let patch = read("patch", patch)?;
        let org = self
            .inner
            .update_org(&slug, &patch)
            .await
            .map_err(from_sdk)?;
        write(org)
    }

    #[napi]
    pub async fn delete_org(&self, slug: String) -> Result<()> {
        self.inner.delete_org(&slug).await.map_err(from_sdk)
    }

    #[napi]
    pub async fn create_api_key(&self, key: Value) -> Result<Value> {
        let key = read("key", key)?;
        write(self.inner.create_api_key(&key).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn usage(&self) -> Result<Value> {
        write(self.inner.usage().await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn add_domain(&self, domain: String) -> Result<Value> {
        write(self.inner.add_domain(&domain).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn verify_domain(&self, domain: String) -> Result<Value> {
        write(self.inner.verify_domain(&domain).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn list_domains(&self) -> Result<Value> {
        write(self.inner.list_domains().await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn get_domain(&self, id_: String) -> Result<Value> {
        write(self.inner.get_domain(id(&id_)?).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn delete_domain(&self, id_: String) -> Result<()> {
        self.inner.delete_domain(id(&id_)?).await.map_err(from_sdk)
    }

    #[napi]
    pub async fn list_api_keys(&self) -> Result<Value> {
        write(self.inner.list_api_keys().await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn revoke_api_key(&self, id_: String) -> Result<Value> {
        write(self.inner.revoke_api_key(&id_).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn create_org_api_key(&self, slug: String, key: Value) -> Result<Value> {
        let key = read("key", key)?;
        let created = self
            .inner
            .create_org_api_key(&slug, &key)
            .await
            .map_err(from_sdk)?;
        write(created)
    }

    #[napi]
    pub async fn list_org_api_keys(&self, slug: String) -> Result<Value> {
        write(
            self.inner
                .list_org_api_keys(&slug)
                .await
                .map_err(from_sdk)?,
        )
    }

    #[napi]
    pub async fn list_org_members(&self, slug: String) -> Result<Value> {
        write(self.inner.list_org_members(&slug).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn update_org_member(
        &self,
        slug: String,
        user_id: String,
        role: String,
    ) -> Result<Value> {
        let user_id = uuid("userId", &user_id)?;
        let role: chronos::Role = read("role", Value::String(role))?;
        let member = self
            .inner
            .update_org_member(&slug, user_id, role)
            .await
            .map_err(from_sdk)?;
        write(member)
    }

    #[napi]
    pub async fn remove_org_member(&self, slug: String, user_id: String) -> Result<()> {
        let user_id = uuid("userId", &user_id)?;
        self.inner
            .remove_org_member(&slug, user_id)
            .await
            .map_err(from_sdk)
    }

    #[napi]
    pub async fn create_invite(&self, slug: String, invite: Value) -> Result<Value> {
        let invite = read("invite", invite)?;
        let created = self
            .inner
            .create_invite(&slug, &invite)
            .await
            .map_err(from_sdk)?;
        write(created)
    }

    #[napi]
    pub async fn list_invites(&self, slug: String) -> Result<Value> {
        write(self.inner.list_invites(&slug).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn revoke_invite(&self, slug: String, id_: String) -> Result<Value> {
        let invite = self
            .inner
            .revoke_invite(&slug, id(&id_)?)
            .await
            .map_err(from_sdk)?;
        write(invite)
    }

    #[napi]
    pub async fn resend_invite(&self, slug: String, id_: String) -> Result<Value> {
        let invite = self
            .inner
            .resend_invite(&slug, id(&id_)?)
            .await
            .map_err(from_sdk)?;
        write(invite)
    }

    #[napi]
    pub async fn accept_invite(&self, accept: Value) -> Result<Value> {
        let accept = read("accept", accept)?;
        write(self.inner.accept_invite(&accept).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn create_schedule(&self, schedule: Value) -> Result<Value> {
        let schedule = read("schedule", schedule)?;
        write(
            self.inner
                .create_schedule(&schedule)
                .await
                .map_err(from_sdk)?,
        )
    }

    #[napi]
    pub async fn get_schedule(&self, id_: String) -> Result<Value> {
        write(self.inner.get_schedule(id(&id_)?).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn list_schedules(&self, page: Option<PageQuery>) -> Result<Value> {
        let page = page.unwrap_or_default();
        let status = page
            .status
            .map(|s| read::<ScheduleStatus>("status", Value::String(s)))
            .transpose()?;
        let list = self
            .inner
            .list_schedules(status, page.limit, page.cursor.as_deref())
            .await
            .map_err(from_sdk)?;
        write(list)
    }

    #[napi]
    pub async fn update_schedule(&self, id_: String, patch: Value) -> Result<Value> {
        let patch = read("schedule", patch)?;
        let schedule = self
            .inner
            .update_schedule(id(&id_)?, &patch)
            .await
            .map_err(from_sdk)?;
        write(schedule)
    }

    #[napi]
    pub async fn delete_schedule(&self, id_: String) -> Result<()> {
        self.inner
            .delete_schedule(id(&id_)?)
            .await
            .map_err(from_sdk)
    }

    #[napi]
    pub async fn pause_schedule(&self, id_: String) -> Result<Value> {
        write(
            self.inner
                .pause_schedule(id(&id_)?)
                .await
                .map_err(from_sdk)?,
        )
    }

    #[napi]
    pub async fn resume_schedule(&self, id_: String) -> Result<Value> {
        write(
            self.inner
                .resume_schedule(id(&id_)?)
                .await
                .map_err(from_sdk)?,
        )
    }

    #[napi]
    pub async fn archive_schedule(&self, id_: String) -> Result<Value> {
        write(
            self.inner
                .archive_schedule(id(&id_)?)
                .await
                .map_err(from_sdk)?,
        )
    }

    #[napi]
    pub async fn trigger_schedule(&self, id_: String) -> Result<Value> {
        write(
            self.inner
                .trigger_schedule(id(&id_)?)
                .await
                .map_err(from_sdk)?,
        )
    }

    #[napi]
    pub async fn next_runs(&self, id_: String, count: Option<u32>) -> Result<Value> {
        let count = count.map_or(chronos::client::DEFAULT_NEXT_RUNS, |c| c as usize);
        let runs = self
            .inner
            .next_runs(id(&id_)?, count)
            .await
            .map_err(from_sdk)?;
        write(runs)
    }

    #[napi]
    pub async fn list_schedule_executions(
        &self,
        id_: String,
        page: Option<PageQuery>,
    ) -> Result<Value> {
        let page = page.unwrap_or_default();
        let list = self
            .inner
            .list_schedule_executions(id(&id_)?, page.limit, page.cursor.as_deref())
            .await
            .map_err(from_sdk)?;
        write(list)
    }

    #[napi]
    pub async fn list_skipped_runs(&self, id_: String, page: Option<PageQuery>) -> Result<Value> {
        let page = page.unwrap_or_default();
        let list = self
            .inner
            .list_skipped_runs(id(&id_)?, page.limit, page.cursor.as_deref())
            .await
            .map_err(from_sdk)?;
        write(list)
    }

    #[napi]
    pub async fn list_workers(&self) -> Result<Value> {
        write(self.inner.list_workers().await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn poll(&self, request: Value) -> Result<Value> {
        let request = read("request", request)?;
        write(self.inner.poll(&request).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn ack(&self, token: String, result: Option<Value>) -> Result<Value> {
        let token = uuid("token", &token)?;
        write(self.inner.ack(token, result).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn fail(&self, request: Value) -> Result<Value> {
        let request = read("request", request)?;
        write(self.inner.fail(&request).await.map_err(from_sdk)?)
    }

    #[napi]
    pub async fn extend(&self, token: String, seconds: u32) -> Result<Value> {
        let token = uuid("token", &token)?;
        write(self.inner.extend(token, seconds).await.map_err(from_sdk)?)
    }
}
