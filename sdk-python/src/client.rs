//! `NativeClient`: the Rust SDK's REST client. Python's `Client` and
//! `AsyncClient` (python/chronos/client.py) both call through it: a call is
//! an operation's name and its arguments as JSON, read into the SDK's wire
//! types before any request (so a misspelt field is refused at once), and
//! the answer comes back as the server's JSON. `call` waits without the GIL;
//! `call_async` hands the answer to a callback, which the asyncio side turns
//! into an awaited Future.

use crate::error::{invalid, to_py};
use crate::runtime::{self, PerProcess};
use chronos::{CreateJob, CreateSchedule, JobStatus, ListJobs, ScheduleFilter, ScheduleStatus};
use pyo3::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::time::Duration;
use uuid::Uuid;

#[pyclass(name = "NativeClient", module = "chronos._native", frozen)]
pub struct Client {
    inner: PerProcess<chronos::Client, chronos::Error>,
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (url, api_key, timeout_seconds = None))]
    fn new(
        py: Python<'_>,
        url: String,
        api_key: String,
        timeout_seconds: Option<f64>,
    ) -> PyResult<Self> {
        let inner = PerProcess::new(move || {
            let mut builder = chronos::Client::builder(url.clone(), api_key.clone())
                .user_agent(concat!("chronos-python/", env!("CARGO_PKG_VERSION")));
            if let Some(secs) = timeout_seconds {
                builder = builder.timeout(Duration::from_secs_f64(secs.max(0.001)));
            }
            builder.build()
        });
        // Made now, so that a bad URL is refused here, not at the first call.
        inner.get().map_err(|e| to_py(py, &e))?;
        Ok(Client { inner })
    }

    /// Runs operation `op` with `args` (a JSON object); returns the answer
    /// as JSON text.
    fn call(&self, py: Python<'_>, op: &str, args: &str) -> PyResult<String> {
        let op = Op::read(op, args)?;
        let client = self.inner.get().map_err(|e| to_py(py, &e))?;
        runtime::block_on(py, async move { op.run(&client).await })?.map_err(|e| to_py(py, &e))
    }

    /// Starts operation `op`; `done(answer, error)` is called from another
    /// thread when it ends: the JSON text and `None`, or `None` and a
    /// `ChronosError`. `cancel()` on what it returns drops the request.
    fn call_async(
        &self,
        py: Python<'_>,
        op: &str,
        args: &str,
        done: Py<PyAny>,
    ) -> PyResult<Pending> {
        let op = Op::read(op, args)?;
        let client = self.inner.get().map_err(|e| to_py(py, &e))?;
        let task = runtime::get().spawn(async move {
            let answer = op.run(&client).await;
            Python::attach(|py| {
                let called = match answer {
                    Ok(text) => done.call1(py, (Some(text), py.None())),
                    Err(e) => done.call1(py, (None::<String>, to_py(py, &e).into_value(py))),
                };
                if let Err(e) = called {
                    e.write_unraisable(py, None);
                }
            });
        });
        Ok(Pending(task.abort_handle()))
    }
}

/// A call of `call_async` under way.
#[pyclass(module = "chronos._native", frozen)]
pub struct Pending(tokio::task::AbortHandle);

#[pymethods]
impl Pending {
    /// Drops the call (closing its connection if the answer has not come);
    /// its `done` is then never called.
    fn cancel(&self) {
        self.0.abort();
    }
}

/// One REST operation and its arguments, read and checked.
enum Op {
    CreateJob(CreateJob),
    CreateJobs(Vec<CreateJob>),
    GetJob(Uuid),
    ListJobs(ListJobs),
    CancelJob(Uuid),
    RetryJob(Uuid),
    ListExecutions(Uuid, Page),
    SendMessage(chronos::proto::CreateMessage),
    CreateSchedule(CreateSchedule),
    GetSchedule(Uuid),
    ListSchedules(Option<ScheduleStatus>, Page),
    UpdateSchedule(Uuid, CreateSchedule),
    DeleteSchedule(Uuid),
    PauseSchedule(Uuid),
    ResumeSchedule(Uuid),
    ArchiveSchedule(Uuid),
    TriggerSchedule(Uuid),
    NextRuns(Uuid, usize),
    ListScheduleExecutions(Uuid, Page),
}

#[derive(Default)]
struct Page {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The arguments of one call, taken by name.
struct Args(Map<String, Value>);

impl Args {
    fn take<T: DeserializeOwned>(&mut self, name: &str) -> PyResult<T> {
        let value = self.0.remove(name).unwrap_or(Value::Null);
        serde_json::from_value(value).map_err(|e| invalid(name, e))
    }

    fn id(&mut self, name: &str) -> PyResult<Uuid> {
        let text: String = self.take(name)?;
        Uuid::parse_str(&text).map_err(|e| invalid(name, format!("{e}: {text:?}")))
    }

    fn page(&mut self) -> PyResult<Page> {
        Ok(Page {
            limit: self.take("limit")?,
            cursor: self.take("cursor")?,
        })
    }
}

impl Op {
    fn read(op: &str, args: &str) -> PyResult<Op> {
        let args: Map<String, Value> = serde_json::from_str(args).map_err(|e| invalid(op, e))?;
        let mut a = Args(args);
        Ok(match op {
            "create_job" => Op::CreateJob(a.take("job")?),
            "create_jobs" => Op::CreateJobs(a.take("jobs")?),
            "get_job" => Op::GetJob(a.id("id")?),
            "list_jobs" => Op::ListJobs(list_jobs(&mut a)?),
            "cancel_job" => Op::CancelJob(a.id("id")?),
            "retry_job" => Op::RetryJob(a.id("id")?),
            "list_executions" => Op::ListExecutions(a.id("id")?, a.page()?),
            "send_message" => Op::SendMessage(a.take("message")?),
            "create_schedule" => Op::CreateSchedule(a.take("schedule")?),
            "get_schedule" => Op::GetSchedule(a.id("id")?),
            "list_schedules" => Op::ListSchedules(a.take("status")?, a.page()?),
            "update_schedule" => Op::UpdateSchedule(a.id("id")?, a.take("patch")?),
            "delete_schedule" => Op::DeleteSchedule(a.id("id")?),
            "pause_schedule" => Op::PauseSchedule(a.id("id")?),
            "resume_schedule" => Op::ResumeSchedule(a.id("id")?),
            "archive_schedule" => Op::ArchiveSchedule(a.id("id")?),
            "trigger_schedule" => Op::TriggerSchedule(a.id("id")?),
            "next_runs" => Op::NextRuns(a.id("id")?, a.take("count")?),
            "list_schedule_executions" => Op::ListScheduleExecutions(a.id("id")?, a.page()?),
            other => return Err(invalid("op", format!("no operation {other:?}"))),
        })
    }

    async fn run(self, c: &chronos::Client) -> Result<String, chronos::Error> {
        match self {
            Op::CreateJob(job) => json(c.create_job(&job).await?),
            Op::CreateJobs(jobs) => json(c.create_jobs(&jobs).await?),
            Op::GetJob(id) => json(c.get_job(id).await?),
            Op::ListJobs(query) => json(c.list_jobs(&query).await?),
            Op::CancelJob(id) => json(c.cancel_job(id).await?),
            Op::RetryJob(id) => json(c.retry_job(id).await?),
            Op::ListExecutions(id, p) => {
                json(c.list_executions(id, p.limit, p.cursor.as_deref()).await?)
            }
            Op::SendMessage(message) => json(c.send_message(&message).await?),
            Op::CreateSchedule(schedule) => json(c.create_schedule(&schedule).await?),
            Op::GetSchedule(id) => json(c.get_schedule(id).await?),
            Op::ListSchedules(status, p) => json(
                c.list_schedules(status, p.limit, p.cursor.as_deref())
                    .await?,
            ),
            Op::UpdateSchedule(id, patch) => json(c.update_schedule(id, &patch).await?),
            Op::DeleteSchedule(id) => json(c.delete_schedule(id).await?),
            Op::PauseSchedule(id) => json(c.pause_schedule(id).await?),
            Op::ResumeSchedule(id) => json(c.resume_schedule(id).await?),
            Op::ArchiveSchedule(id) => json(c.archive_schedule(id).await?),
            Op::TriggerSchedule(id) => json(c.trigger_schedule(id).await?),
            Op::NextRuns(id, count) => json(c.next_runs(id, count).await?),
            Op::ListScheduleExecutions(id, p) => json(
                c.list_schedule_executions(id, p.limit, p.cursor.as_deref())
                    .await?,
            ),
        }
    }
}

/// `list_jobs` filters: `status` (one or a list), `handler`, `queue`,
/// `schedule_id` (an id, or `"null"` for one-off jobs), `limit`, `cursor`.
fn list_jobs(a: &mut Args) -> PyResult<ListJobs> {
    let mut list = ListJobs::new();
    let statuses: Option<Vec<JobStatus>> = match a.0.get("status") {
        Some(Value::String(_)) => Some(vec![a.take("status")?]),
        _ => a.take("status")?,
    };
    for status in statuses.unwrap_or_default() {
        list = list.status(status);
    }
    if let Some(handler) = a.take::<Option<String>>("handler")? {
        list = list.handler(handler);
    }
    if let Some(queue) = a.take::<Option<String>>("queue")? {
        list = list.queue(queue);
    }
    match a.take::<Option<String>>("schedule_id")?.as_deref() {
        None => {}
        Some("null") => list = list.schedule(ScheduleFilter::OneOff),
        Some(id) => {
            let id = Uuid::parse_str(id).map_err(|e| invalid("schedule_id", e))?;
            list = list.schedule(ScheduleFilter::Id(id));
        }
    }
    let page = a.page()?;
    if let Some(limit) = page.limit {
        list = list.limit(limit);
    }
    if let Some(cursor) = page.cursor {
        list = list.cursor(cursor);
    }
    Ok(list)
}

fn json<T: Serialize>(value: T) -> Result<String, chronos::Error> {
    // The SDK's own wire types: serializing them cannot fail.
    Ok(serde_json::to_string(&value).expect("wire types serialize"))
}
