//! `NativeClient`: the Rust SDK's REST client, one method per operation
//! (the Rust client's, by the same names: sdk-rust/manifest.json). Each
//! reads its arguments into the SDK's wire types at once — so a misspelt
//! field or a malformed id is a `ValueError` before any request — and
//! returns a [`Call`]: Python's `Client` waits for it (`wait()`, without the
//! GIL), `AsyncClient` starts it and awaits its answer on the event loop.
//! Answers come back as the server's JSON, in dicts and lists: written as
//! JSON text and read by `json.loads`, which is several times quicker than
//! building the dicts item by item from here (a batch's answer is 1,000
//! jobs).

use crate::convert;
use crate::error::{invalid, to_py};
use crate::runtime::{self, PerProcess};
use chronos::{JobStatus, ListJobs, ScheduleFilter, ScheduleStatus};
use pyo3::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// The answer as JSON text.
type Answer = Result<String, chronos::Error>;

#[pyclass(name = "NativeClient", module = "chronos._native", frozen)]
pub struct Client {
    /// Remade in a forked child, whose parent's connections are not its own.
    inner: PerProcess<chronos::Client, chronos::Error>,
}

/// `obj` (a dict, a list …) read as `T`.
fn read<T: DeserializeOwned>(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<T> {
    serde_json::from_value(convert::to_json(obj)?).map_err(|e| invalid(what, e))
}

fn uuid(what: &str, text: &str) -> PyResult<Uuid> {
    Uuid::parse_str(text).map_err(|e| invalid(what, format!("{e}: {text:?}")))
}

/// A status given as text, read as its enum.
fn status<T: DeserializeOwned>(text: String) -> PyResult<T> {
    serde_json::from_value(Value::String(text)).map_err(|e| invalid("status", e))
}

#[pymethods]
impl Client {
    /// `timeout_seconds`: how long one request may take; `None` for no
    /// limit.
    #[new]
    #[pyo3(signature = (url, api_key, timeout_seconds))]
    fn new(
        py: Python<'_>,
        url: String,
        api_key: String,
        timeout_seconds: Option<f64>,
    ) -> PyResult<Self> {
        if let Some(secs) = timeout_seconds
            && !(secs.is_finite() && secs > 0.0)
        {
            return Err(invalid(
                "timeout",
                "must be a positive number of seconds (None for no limit)",
            ));
        }
        let inner = PerProcess::new(move || {
            let builder = chronos::Client::builder(url.clone(), api_key.clone())
                .user_agent(concat!("chronos-python/", env!("CARGO_PKG_VERSION")));
            match timeout_seconds {
                Some(secs) => builder.timeout(Duration::from_secs_f64(secs)),
                None => builder.no_timeout(),
            }
            .build()
        });
        // Made now, so that a bad URL is refused here, not at the first call.
        inner.get().map_err(|e| to_py(py, &e))?;
        Ok(Client { inner })
    }

    /// The server's base URL, as the client uses it (ending in `/`).
    #[getter]
    fn base_url(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.client(py)?.base_url().to_string())
    }

    /// How long one request may take, in seconds; `None` for no limit.
    #[getter]
    fn timeout(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        Ok(self.client(py)?.timeout().map(|t| t.as_secs_f64()))
    }

    fn create_job(&self, py: Python<'_>, job: &Bound<'_, PyAny>) -> PyResult<Call> {
        let job: chronos::CreateJob = read("job", job)?;
        self.call(py, move |c| async move { c.create_job(&job).await })
    }

    fn create_jobs(&self, py: Python<'_>, jobs: &Bound<'_, PyAny>) -> PyResult<Call> {
        let jobs: Vec<chronos::CreateJob> = read("jobs", jobs)?;
        self.call(py, move |c| async move { c.create_jobs(&jobs).await })
    }

    fn get_job(&self, py: Python<'_>, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.get_job(id).await })
    }

    #[pyo3(signature = (*, status = None, handler = None, queue = None, schedule_id = None, limit = None, cursor = None))]
    #[allow(clippy::too_many_arguments)]
    fn list_jobs(
        &self,
        py: Python<'_>,
        status: Option<Vec<String>>,
        handler: Option<String>,
        queue: Option<String>,
        schedule_id: Option<String>,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<Call> {
        let mut query = ListJobs::new();
        for s in status.unwrap_or_default() {
            query = query.status(self::status::<JobStatus>(s)?);
        }
        if let Some(handler) = handler {
            query = query.handler(handler);
        }
        if let Some(queue) = queue {
            query = query.queue(queue);
        }
        match schedule_id.as_deref() {
            None => {}
            Some("null") => query = query.schedule(ScheduleFilter::OneOff),
            Some(id) => query = query.schedule(ScheduleFilter::Id(uuid("schedule_id", id)?)),
        }
        if let Some(limit) = limit {
            query = query.limit(limit);
        }
        if let Some(cursor) = cursor {
            query = query.cursor(cursor);
        }
        self.call(py, move |c| async move { c.list_jobs(&query).await })
    }

    fn cancel_job(&self, py: Python<'_>, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.cancel_job(id).await })
    }

    fn retry_job(&self, py: Python<'_>, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.retry_job(id).await })
    }

    #[pyo3(signature = (id, *, limit = None, cursor = None))]
    fn list_executions(
        &self,
        py: Python<'_>,
        id: &str,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move {
            c.list_executions(id, limit, cursor.as_deref()).await
        })
    }

    fn send_message(&self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<Call> {
        let message: chronos::proto::CreateMessage = read("message", message)?;
        self.call(py, move |c| async move { c.send_message(&message).await })
    }

    fn create_queue(&self, py: Python<'_>, queue: &Bound<'_, PyAny>) -> PyResult<Call> {
        let queue: chronos::CreateQueue = read("queue", queue)?;
        self.call(py, move |c| async move { c.create_queue(&queue).await })
    }

    fn get_queue(&self, py: Python<'_>, name: String) -> PyResult<Call> {
        self.call(py, move |c| async move { c.get_queue(&name).await })
    }

    fn list_queues(&self, py: Python<'_>) -> PyResult<Call> {
        self.call(py, move |c| async move { c.list_queues().await })
    }

    /// `None` in `patch` removes a limit or a default.
    fn update_queue(
        &self,
        py: Python<'_>,
        name: String,
        patch: &Bound<'_, PyAny>,
    ) -> PyResult<Call> {
        let patch: chronos::UpdateQueue = read("patch", patch)?;
        self.call(
            py,
            move |c| async move { c.update_queue(&name, &patch).await },
        )
    }

    #[pyo3(signature = (name, *, force = false))]
    fn delete_queue(&self, py: Python<'_>, name: String, force: bool) -> PyResult<Call> {
        self.call(
            py,
            move |c| async move { c.delete_queue(&name, force).await },
        )
    }

    fn pause_queue(&self, py: Python<'_>, name: String) -> PyResult<Call> {
        self.call(py, move |c| async move { c.pause_queue(&name).await })
    }

    fn resume_queue(&self, py: Python<'_>, name: String) -> PyResult<Call> {
        self.call(py, move |c| async move { c.resume_queue(&name).await })
    }

    fn unblock_queue(&self, py: Python<'_>, name: String) -> PyResult<Call> {
        self.call(py, move |c| async move { c.unblock_queue(&name).await })
    }

    fn publish(&self, py: Python<'_>, queue: String, message: &Bound<'_, PyAny>) -> PyResult<Call> {
        let message: chronos::PublishMessage = read("message", message)?;
        self.call(
            py,
            move |c| async move { c.publish(&queue, &message).await },
        )
    }

    fn create_target_group(&self, py: Python<'_>, group: &Bound<'_, PyAny>) -> PyResult<Call> {
        let group: chronos::CreateTargetGroup = read("group", group)?;
        self.call(
            py,
            move |c| async move { c.create_target_group(&group).await },
        )
    }

    fn get_target_group(&self, py: Python<'_>, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.get_target_group(id).await })
    }

    fn list_target_groups(&self, py: Python<'_>) -> PyResult<Call> {
        self.call(py, move |c| async move { c.list_target_groups().await })
    }

    fn rename_target_group(&self, py: Python<'_>, id: &str, name: String) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move {
            c.rename_target_group(id, &name).await
        })
    }

    fn delete_target_group(&self, py: Python<'_>, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.delete_target_group(id).await })
    }

    fn add_member(
        &self,
        py: Python<'_>,
        group_id: &str,
        member: &Bound<'_, PyAny>,
    ) -> PyResult<Call> {
        let group_id = uuid("group_id", group_id)?;
        let member: chronos::CreateMember = read("member", member)?;
        self.call(
            py,
            move |c| async move { c.add_member(group_id, &member).await },
        )
    }

    fn list_members(&self, py: Python<'_>, group_id: &str) -> PyResult<Call> {
        let group_id = uuid("group_id", group_id)?;
        self.call(py, move |c| async move { c.list_members(group_id).await })
    }

    fn remove_member(&self, py: Python<'_>, group_id: &str, member_id: &str) -> PyResult<Call> {
        let group_id = uuid("group_id", group_id)?;
        let member_id = uuid("member_id", member_id)?;
        self.call(py, move |c| async move {
            c.remove_member(group_id, member_id).await
        })
    }

    fn get_fan_out(&self, py: Python<'_>, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.get_fan_out(id).await })
    }

    fn create_org(&self, py: Python<'_>, org: &Bound<'_, PyAny>) -> PyResult<Call> {
        let org: chronos::CreateOrganization = read("org", org)?;
        self.call(py, move |c| async move { c.create_org(&org).await })
    }

    fn list_orgs(&self, py: Python<'_>) -> PyResult<Call> {
        self.call(py, move |c| async move { c.list_orgs().await })
    }

    fn get_org(&self, py: Python<'_>, slug: String) -> PyResult<Call> {
        self.call(py, move |c| async move { c.get_org(&slug).await })
    }

    fn update_org(&self, py: Python<'_>, slug: String, patch: &Bound<'_, PyAny>) -> PyResult<Call> {
        let patch: chronos::UpdateOrganization = read("patch", patch)?;
        self.call(
            py,
            move |c| async move { c.update_org(&slug, &patch).await },
        )
    }

    fn delete_org(&self, py: Python<'_>, slug: String) -> PyResult<Call> {
        self.call(py, move |c| async move { c.delete_org(&slug).await })
    }

    fn create_api_key(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Call> {
        let key: chronos::CreateApiKey = read("key", key)?;
        self.call(py, move |c| async move { c.create_api_key(&key).await })
    }

    fn usage(&self, py: Python<'_>) -> PyResult<Call> {
        self.call(py, move |c| async move { c.usage().await })
    }

    fn add_domain(&self, py: Python<'_>, domain: String) -> PyResult<Call> {
        self.call(py, move |c| async move { c.add_domain(&domain).await })
    }

    fn verify_domain(&self, py: Python<'_>, domain: String) -> PyResult<Call> {
        self.call(py, move |c| async move { c.verify_domain(&domain).await })
    }

    fn list_domains(&self, py: Python<'_>) -> PyResult<Call> {
        self.call(py, move |c| async move { c.list_domains().await })
    }

    fn get_domain(&self, py: Python<'_>, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.get_domain(id).await })
    }

    fn delete_domain(&self, py: Python<'_>, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.delete_domain(id).await })
    }

    fn list_api_keys(&self, py: Python<'_>) -> PyResult<Call> {
        self.call(py, move |c| async move { c.list_api_keys().await })
    }

    fn revoke_api_key(&self, py: Python<'_>, id: String) -> PyResult<Call> {
        self.call(py, move |c| async move { c.revoke_api_key(&id).await })
    }

    fn create_org_api_key(
        &self,
        py: Python<'_>,
        slug: String,
        key: &Bound<'_, PyAny>,
    ) -> PyResult<Call> {
        let key: chronos::CreateApiKey = read("key", key)?;
        self.call(py, move |c| async move {
            c.create_org_api_key(&slug, &key).await
        })
    }

    fn list_org_api_keys(&self, py: Python<'_>, slug: String) -> PyResult<Call> {
        self.call(py, move |c| async move { c.list_org_api_keys(&slug).await })
    }

    fn list_org_members(&self, py: Python<'_>, slug: String) -> PyResult<Call> {
        self.call(py, move |c| async move { c.list_org_members(&slug).await })
    }

    fn update_org_member(
        &self,
        py: Python<'_>,
        slug: String,
        user_id: &str,
        role: String,
    ) -> PyResult<Call> {
        let user_id = uuid("user_id", user_id)?;
        let role: chronos::Role =
            serde_json::from_value(Value::String(role)).map_err(|e| invalid("role", e))?;
        self.call(py, move |c| async move {
            c.update_org_member(&slug, user_id, role).await
        })
    }

    fn remove_org_member(&self, py: Python<'_>, slug: String, user_id: &str) -> PyResult<Call> {
        let user_id = uuid("user_id", user_id)?;
        self.call(py, move |c| async move {
            c.remove_org_member(&slug, user_id).await
        })
    }

    fn create_invite(
        &self,
        py: Python<'_>,
        slug: String,
        invite: &Bound<'_, PyAny>,
    ) -> PyResult<Call> {
        let invite: chronos::CreateInvite = read("invite", invite)?;
        self.call(
            py,
            move |c| async move { c.create_invite(&slug, &invite).await },
        )
    }

    fn list_invites(&self, py: Python<'_>, slug: String) -> PyResult<Call> {
        self.call(py, move |c| async move { c.list_invites(&slug).await })
    }

    fn revoke_invite(&self, py: Python<'_>, slug: String, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.revoke_invite(&slug, id).await })
    }

    fn resend_invite(&self, py: Python<'_>, slug: String, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.resend_invite(&slug, id).await })
    }

    fn accept_invite(&self, py: Python<'_>, accept: &Bound<'_, PyAny>) -> PyResult<Call> {
        let accept: chronos::AcceptInvite = read("accept", accept)?;
        self.call(py, move |c| async move { c.accept_invite(&accept).await })
    }

    fn create_schedule(&self, py: Python<'_>, schedule: &Bound<'_, PyAny>) -> PyResult<Call> {
        let schedule: chronos::CreateSchedule = read("schedule", schedule)?;
        self.call(
            py,
            move |c| async move { c.create_schedule(&schedule).await },
        )
    }

    fn get_schedule(&self, py: Python<'_>, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.get_schedule(id).await })
    }

    #[pyo3(signature = (*, status = None, limit = None, cursor = None))]
    fn list_schedules(
        &self,
        py: Python<'_>,
        status: Option<String>,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<Call> {
        let status = status.map(self::status::<ScheduleStatus>).transpose()?;
        self.call(py, move |c| async move {
            c.list_schedules(status, limit, cursor.as_deref()).await
        })
    }

    fn update_schedule(
        &self,
        py: Python<'_>,
        id: &str,
        patch: &Bound<'_, PyAny>,
    ) -> PyResult<Call> {
        let id = uuid("id", id)?;
        let patch: chronos::CreateSchedule = read("patch", patch)?;
        self.call(
            py,
            move |c| async move { c.update_schedule(id, &patch).await },
        )
    }

    fn delete_schedule(&self, py: Python<'_>, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.delete_schedule(id).await })
    }

    fn pause_schedule(&self, py: Python<'_>, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.pause_schedule(id).await })
    }

    fn resume_schedule(&self, py: Python<'_>, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.resume_schedule(id).await })
    }

    fn archive_schedule(&self, py: Python<'_>, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.archive_schedule(id).await })
    }

    fn trigger_schedule(&self, py: Python<'_>, id: &str) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move { c.trigger_schedule(id).await })
    }

    /// `count` left out: the Rust SDK's default.
    #[pyo3(signature = (id, count = None))]
    fn next_runs(&self, py: Python<'_>, id: &str, count: Option<usize>) -> PyResult<Call> {
        let id = uuid("id", id)?;
        let count = count.unwrap_or(chronos::client::DEFAULT_NEXT_RUNS);
        self.call(py, move |c| async move { c.next_runs(id, count).await })
    }

    #[pyo3(signature = (id, *, limit = None, cursor = None))]
    fn list_schedule_executions(
        &self,
        py: Python<'_>,
        id: &str,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move {
            c.list_schedule_executions(id, limit, cursor.as_deref())
                .await
        })
    }

    #[pyo3(signature = (id, *, limit = None, cursor = None))]
    fn list_skipped_runs(
        &self,
        py: Python<'_>,
        id: &str,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> PyResult<Call> {
        let id = uuid("id", id)?;
        self.call(py, move |c| async move {
            c.list_skipped_runs(id, limit, cursor.as_deref()).await
        })
    }

    fn list_workers(&self, py: Python<'_>) -> PyResult<Call> {
        self.call(py, move |c| async move { c.list_workers().await })
    }

    fn poll(&self, py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<Call> {
        let request: chronos::PollRequest = read("request", request)?;
        self.call(py, move |c| async move { c.poll(&request).await })
    }

    #[pyo3(signature = (token, result = None))]
    fn ack(
        &self,
        py: Python<'_>,
        token: &str,
        result: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Call> {
        let token = uuid("token", token)?;
        let result = result.map(convert::to_json).transpose()?;
        self.call(py, move |c| async move { c.ack(token, result).await })
    }

    fn fail(&self, py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<Call> {
        let request: chronos::FailRequest = read("request", request)?;
        self.call(py, move |c| async move { c.fail(&request).await })
    }

    fn extend(&self, py: Python<'_>, token: &str, seconds: u32) -> PyResult<Call> {
        let token = uuid("token", token)?;
        self.call(py, move |c| async move { c.extend(token, seconds).await })
    }
}

impl Client {
    /// This process's client.
    fn client(&self, py: Python<'_>) -> PyResult<Arc<chronos::Client>> {
        self.inner.get().map_err(|e| to_py(py, &e))
    }

    /// A call of `op` on this process's client, not yet started.
    fn call<T, Fut>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(Arc<chronos::Client>) -> Fut,
    ) -> PyResult<Call>
    where
        T: Serialize,
        Fut: Future<Output = Result<T, chronos::Error>> + Send + 'static,
    {
        let future = op(self.client(py)?);
        let future = async move {
            let answer = future.await?;
            // The SDK's own wire types: serializing them cannot fail.
            Ok(serde_json::to_string(&answer).expect("wire types serialize"))
        };
        Ok(Call {
            state: Mutex::new(CallState::Ready(Box::pin(future))),
        })
    }
}

/// One operation of a `NativeClient`, run once: `wait()` for it, or
/// `start(done)` it (and maybe `cancel()` it).
#[pyclass(module = "chronos._native", frozen)]
pub struct Call {
    state: Mutex<CallState>,
}

enum CallState {
    Ready(Pin<Box<dyn Future<Output = Answer> + Send>>),
    Started(tokio::task::AbortHandle),
    Done,
}

#[pymethods]
impl Call {
    /// Runs the call to its end, the calling thread waiting without the
    /// GIL; returns the answer, or raises `ChronosError` (`ValueError`).
    fn wait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let future = self.take()?;
        match runtime::block_on(py, future)? {
            Ok(answer) => convert::from_json(py, &answer),
            Err(e) => Err(to_py(py, &e)),
        }
    }

    /// Starts the call on the SDK's runtime; `done(answer, error)` is
    /// called from another thread when it ends: the answer and `None`, or
    /// `None` and the error.
    fn start(&self, done: Py<PyAny>) -> PyResult<()> {
        let future = self.take()?;
        let task = runtime::get().spawn(async move {
            let answer = future.await;
            runtime::call_python(|py| match answer {
                Ok(answer) => {
                    convert::from_json(py, &answer).and_then(|v| done.call1(py, (v, py.None())))
                }
                Err(e) => done.call1(py, (py.None(), to_py(py, &e).into_value(py))),
            });
        });
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) =
            CallState::Started(task.abort_handle());
        Ok(())
    }

    /// Drops a started call (closing its connection if the answer has not
    /// come); its `done` is then never called.
    fn cancel(&self) {
        if let CallState::Started(task) = &*self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            task.abort();
        }
    }
}

impl Call {
    fn take(&self) -> PyResult<Pin<Box<dyn Future<Output = Answer> + Send>>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *state, CallState::Done) {
            CallState::Ready(future) => Ok(future),
            other => {
                *state = other;
                Err(invalid("call", "this call has already run"))
            }
        }
    }
}
