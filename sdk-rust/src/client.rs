//! [`Client`]: the REST API, one method per route.

use crate::error::{Error, snippet};
use crate::job::{ListJobs, page_pairs};
use chronos_proto::worker::ConnectedWorker;
use chronos_proto::{
    AcceptInvite, AckRequest, ApiKey, BatchCreated, BatchItem, CreateApiKey, CreateInvite,
    CreateJob, CreateMember, CreateMessage, CreateOrganization, CreateQueue, CreateSchedule,
    CreateTargetGroup, CreatedApiKey, CreatedInvite, CreatedOrganization, Domain, DomainRequest,
    Execution, ExtendRequest, FailRequest, FanOut, Invite, InviteAccepted, Job, Lease, LeasedJob,
    List, Member, Membership, MessagePublished, NextRuns, Organization, PollRequest,
    PublishMessage, Queue, QueuePublished, Role, Schedule, ScheduleStatus, SkippedRun, TargetGroup,
    Timestamp, UpdateMembership, UpdateOrganization, UpdateQueue, Usage,
};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::time::Duration;
use url::Url;
use uuid::Uuid;

/// How long a request may take, unless the builder says otherwise. Long
/// polls get their `wait_seconds` on top.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting may take, whatever the request timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many due times [`Client::next_runs`] asks for when the caller does
/// not say (the Node and Python SDKs' default `count`; the server's too).
pub const DEFAULT_NEXT_RUNS: usize = 10;

/// The page size of a list the client follows to its end
/// ([`Client::list_domains`]): the server's largest.
const LIST_ALL_PAGE: u32 = 100;

/// The user agent sent unless the builder sets another.
pub const DEFAULT_USER_AGENT: &str = concat!("chronos-sdk-rust/", env!("CARGO_PKG_VERSION"));

/// A client of one Chronos server, authenticated by one API key.
///
/// Cheap to clone: clones share one connection pool. Make one and reuse it.
#[derive(Clone)]
pub struct Client {
    /// Holds the pool, the `Authorization` header and the timeouts.
    http: reqwest::Client,
    /// Always ends in `/`, so that `v1/…` joins under any path prefix.
    base: Url,
    /// Kept to add a long poll's wait to it.
    timeout: Option<Duration>,
}

impl fmt::Debug for Client {
    // Never the key: only where the client points.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Settings for a [`Client`]; [`ClientBuilder::build`] checks them.
#[derive(Clone)]
#[must_use]
pub struct ClientBuilder {
    /// As given; parsed by `build`.
    base_url: String,
    /// As given; checked by `build`.
    api_key: String,
    timeout: Option<Duration>,
    user_agent: String,
}

impl fmt::Debug for ClientBuilder {
    // Never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// How long one request may take before it fails with [`Error::Http`]
    /// (default [`DEFAULT_TIMEOUT`]). [`Client::poll`] adds its
    /// `wait_seconds` to it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// No request timeout at all (connecting still times out).
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// The `User-Agent` header (default [`DEFAULT_USER_AGENT`]). Bindings
    /// set their own, e.g. `chronos-sdk-node/1.2.0`.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Checks the URL and the key, and makes the client.
    pub fn build(self) -> Result<Client, Error> {
        let base = parse_base_url(&self.base_url)?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.api_key))
            .map_err(|_| Error::InvalidHeader { header: "API key" })?;
        auth.set_sensitive(true);
        let user_agent =
            HeaderValue::from_str(&self.user_agent).map_err(|_| Error::InvalidHeader {
                header: "user agent",
            })?;
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(USER_AGENT, user_agent);
        let mut http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT);
        if let Some(timeout) = self.timeout {
            http = http.timeout(timeout);
        }
        Ok(Client {
            http: http.build().map_err(Error::Http)?,
            base,
            timeout: self.timeout,
        })
    }
}

/// Parses the server's base URL: http(s), with a host, no query or fragment.
/// A path is kept as a prefix (`https://example.com/chronos`).
fn parse_base_url(raw: &str) -> Result<Url, Error> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: raw.to_string(),
        reason: reason.to_string(),
    };
    let mut url = Url::parse(raw.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL needs a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("the URL may not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "the URL may not hold credentials; the API key authenticates",
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

impl Client {
    /// A client of the server at `base_url` (e.g. `http://localhost:8080`)
    /// using `api_key` (`chrns_…`), with default settings.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Result<Client, Error> {
        Client::builder(base_url, api_key).build()
    }

    /// Settings beyond the defaults; finish with [`ClientBuilder::build`].
    pub fn builder(base_url: impl Into<String>, api_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            api_key: api_key.into(),
            timeout: Some(DEFAULT_TIMEOUT),
            user_agent: DEFAULT_USER_AGENT.to_string(),
        }
    }

    /// The server's base URL, as the client uses it (ending in `/`).
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// How long one request may take; `None` for no limit (see
    /// [`ClientBuilder::timeout`]).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Creates a job (`POST /v1/jobs`). It is committed when this returns.
    ///
    /// Fails with `validation_failed` naming the field at fault, or
    /// `idempotency_key_conflict` (see [`Error::is_idempotency_conflict`]).
    pub async fn create_job(&self, job: &CreateJob) -> Result<Job, Error> {
        self.send(self.request(Method::POST, "v1/jobs", &[])?.json(job))
            .await
    }

    /// Creates up to 1,000 jobs in one request and one transaction (`POST
    /// /v1/jobs/batch`); they are committed when this returns. The answer
    /// has one item per job, in order: [`BatchItem::Job`] for each created,
    /// [`BatchItem::Error`] for each refused (a bad field, or an
    /// idempotency key already held) — one bad job does not sink the rest.
    pub async fn create_jobs(&self, jobs: &[CreateJob]) -> Result<Vec<BatchItem>, Error> {
        #[derive(serde::Serialize)]
        struct Batch<'a> {
            jobs: &'a [CreateJob],
        }
        let created: BatchCreated = self
            .send(
                self.request(Method::POST, "v1/jobs/batch", &[])?
                    .json(&Batch { jobs }),
            )
            .await?;
        Ok(created.data)
    }

    /// The workers connected over WebSocket to any server process of this
    /// organization (`GET /v1/workers`).
    pub async fn list_workers(&self) -> Result<Vec<ConnectedWorker>, Error> {
        let list: List<ConnectedWorker> = self
            .send(self.request(Method::GET, "v1/workers", &[])?)
            .await?;
        Ok(list.data)
    }

    /// One job (`GET /v1/jobs/{id}`); `not_found` if it is not in this
    /// key's organization.
    pub async fn get_job(&self, id: Uuid) -> Result<Job, Error> {
        self.send(self.request(Method::GET, &format!("v1/jobs/{id}"), &[])?)
            .await
    }

    /// A page of jobs, newest first (`GET /v1/jobs`). Pass the answer's
    /// `next_cursor` to [`ListJobs::cursor`] for the next page; `None` means
    /// this was the last.
    pub async fn list_jobs(&self, query: &ListJobs) -> Result<List<Job>, Error> {
        let pairs = query.query_pairs();
        self.send(self.request(Method::GET, "v1/jobs", &pairs)?)
            .await
    }

    /// Cancels a job (`POST /v1/jobs/{id}/cancel`): it never runs, or, if
    /// running, its worker's ack is refused. `job_finished` if it already
    /// completed, failed or was cancelled.
    pub async fn cancel_job(&self, id: Uuid) -> Result<Job, Error> {
        self.send(self.request(Method::POST, &format!("v1/jobs/{id}/cancel"), &[])?)
            .await
    }

    /// Queues a failed or cancelled job again with a fresh retry budget
    /// (`POST /v1/jobs/{id}/retry`); `job_not_retryable` otherwise.
    pub async fn retry_job(&self, id: Uuid) -> Result<Job, Error> {
        self.send(self.request(Method::POST, &format!("v1/jobs/{id}/retry"), &[])?)
            .await
    }

    /// A page of a job's executions, one per attempt, newest first
    /// (`GET /v1/jobs/{id}/executions`).
    pub async fn list_executions(
        &self,
        job_id: Uuid,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<List<Execution>, Error> {
        let mut pairs = Vec::new();
        page_pairs(&mut pairs, limit, cursor);
        let path = format!("v1/jobs/{job_id}/executions");
        self.send(self.request(Method::GET, &path, &pairs)?).await
    }

    /// Sends a message: a one-shot HTTP request, now or later (`POST
    /// /v1/messages`). It is durable when this returns. A message naming a
    /// target group (`default_target_group_id`) instead of a `url` fans
    /// out: [`MessagePublished::FanOut`], one delivery per member (see
    /// [`Client::get_fan_out`]); otherwise [`MessagePublished::Message`].
    pub async fn send_message(&self, message: &CreateMessage) -> Result<MessagePublished, Error> {
        self.send(
            self.request(Method::POST, "v1/messages", &[])?
                .json(message),
        )
        .await
    }

    /// Creates a queue (`POST /v1/queues`, `admin` scope): `name` is
    /// required; the rest default as the server says (one job at a time,
    /// 3 retries, fifo, `continue`).
    pub async fn create_queue(&self, queue: &CreateQueue) -> Result<Queue, Error> {
        self.send(self.request(Method::POST, "v1/queues", &[])?.json(queue))
            .await
    }

    /// One queue, with what it holds now (`stats`; `GET /v1/queues/{name}`).
    pub async fn get_queue(&self, name: &str) -> Result<Queue, Error> {
        self.send(self.request(Method::GET, &queue_path(name, "")?, &[])?)
            .await
    }

    /// Every queue of the organization, by name (`GET /v1/queues`).
    pub async fn list_queues(&self) -> Result<Vec<Queue>, Error> {
        let list: List<Queue> = self
            .send(self.request(Method::GET, "v1/queues", &[])?)
            .await?;
        Ok(list.data)
    }

    /// Changes the settings `patch` gives (`PATCH /v1/queues/{name}`);
    /// `Some(None)` removes a limit or a default.
    pub async fn update_queue(&self, name: &str, patch: &UpdateQueue) -> Result<Queue, Error> {
        let path = queue_path(name, "")?;
        self.send(self.request(Method::PATCH, &path, &[])?.json(patch))
            .await
    }

    /// Deletes a queue that holds no unfinished job (`DELETE
    /// /v1/queues/{name}`); with `force`, cancels them first. A queue a
    /// schedule names, and the `default` queue, are refused.
    pub async fn delete_queue(&self, name: &str, force: bool) -> Result<(), Error> {
        let pairs = [("force", force.to_string())];
        let _: Value = self
            .send(self.request(Method::DELETE, &queue_path(name, "")?, &pairs)?)
            .await?;
        Ok(())
    }

    /// Pauses a queue: nothing more starts; running jobs finish.
    pub async fn pause_queue(&self, name: &str) -> Result<Queue, Error> {
        self.queue_action(name, "pause").await
    }

    /// Resumes a paused queue.
    pub async fn resume_queue(&self, name: &str) -> Result<Queue, Error> {
        self.queue_action(name, "resume").await
    }

    /// Unblocks a queue a dead job blocked (`failure_mode: block`).
    pub async fn unblock_queue(&self, name: &str) -> Result<Queue, Error> {
        self.queue_action(name, "unblock").await
    }

    async fn queue_action(&self, name: &str, action: &str) -> Result<Queue, Error> {
        let path = queue_path(name, &format!("/{action}"))?;
        self.send(self.request(Method::POST, &path, &[])?).await
    }

    /// Publishes a message onto a queue (`POST /v1/queues/{name}/messages`):
    /// it inherits the queue's signing secret, retries and limits, and its
    /// `default_target_url` when `url` is absent. Durable when this returns.
    /// A message naming a target group, or one without a `url` onto a queue
    /// whose default is a group, fans out: [`QueuePublished::FanOut`].
    pub async fn publish(
        &self,
        queue: &str,
        message: &PublishMessage,
    ) -> Result<QueuePublished, Error> {
        let path = queue_path(queue, "/messages")?;
        self.send(self.request(Method::POST, &path, &[])?.json(message))
            .await
    }

    /// Creates a target group (`POST /v1/target-groups`, `admin` scope): a
    /// named set of endpoints a publish fans out to. `target_group_exists`
    /// if the organization has one of that name.
    pub async fn create_target_group(
        &self,
        group: &CreateTargetGroup,
    ) -> Result<TargetGroup, Error> {
        self.send(
            self.request(Method::POST, "v1/target-groups", &[])?
                .json(group),
        )
        .await
    }

    /// One target group (`GET /v1/target-groups/{id}`).
    pub async fn get_target_group(&self, id: Uuid) -> Result<TargetGroup, Error> {
        let path = format!("v1/target-groups/{id}");
        self.send(self.request(Method::GET, &path, &[])?).await
    }

    /// Every target group of the organization, oldest first (`GET
    /// /v1/target-groups`).
    pub async fn list_target_groups(&self) -> Result<Vec<TargetGroup>, Error> {
        let list: List<TargetGroup> = self
            .send(self.request(Method::GET, "v1/target-groups", &[])?)
            .await?;
        Ok(list.data)
    }

    /// Renames a target group (`PATCH /v1/target-groups/{id}`, `admin`).
    pub async fn rename_target_group(&self, id: Uuid, name: &str) -> Result<TargetGroup, Error> {
        let body = CreateTargetGroup {
            name: Some(name.to_string()),
        };
        let path = format!("v1/target-groups/{id}");
        self.send(self.request(Method::PATCH, &path, &[])?.json(&body))
            .await
    }

    /// Deletes a target group and its members (`DELETE
    /// /v1/target-groups/{id}`, `admin`); deliveries already fanned out go
    /// on. `target_group_in_use` while a queue names it as its default.
    pub async fn delete_target_group(&self, id: Uuid) -> Result<(), Error> {
        let path = format!("v1/target-groups/{id}");
        let _: Value = self.send(self.request(Method::DELETE, &path, &[])?).await?;
        Ok(())
    }

    /// Adds an endpoint to a target group (`POST
    /// /v1/target-groups/{id}/members`, `admin`): it receives the publishes
    /// made from now on. Its sensitive headers read `***redacted***` in the
    /// answer.
    pub async fn add_member(&self, group_id: Uuid, member: &CreateMember) -> Result<Member, Error> {
        let path = format!("v1/target-groups/{group_id}/members");
        self.send(self.request(Method::POST, &path, &[])?.json(member))
            .await
    }

    /// A target group's endpoints, oldest first (`GET
    /// /v1/target-groups/{id}/members`).
    pub async fn list_members(&self, group_id: Uuid) -> Result<Vec<Member>, Error> {
        let path = format!("v1/target-groups/{group_id}/members");
        let list: List<Member> = self.send(self.request(Method::GET, &path, &[])?).await?;
        Ok(list.data)
    }

    /// Removes an endpoint from a target group (`DELETE
    /// /v1/target-groups/{id}/members/{member_id}`, `admin`); deliveries
    /// already fanned out to it go on.
    pub async fn remove_member(&self, group_id: Uuid, member_id: Uuid) -> Result<(), Error> {
        let path = format!("v1/target-groups/{group_id}/members/{member_id}");
        let _: Value = self.send(self.request(Method::DELETE, &path, &[])?).await?;
        Ok(())
    }

    /// A fan-out and each of its deliveries now (`GET /v1/fan-outs/{id}`,
    /// the `fan_out_id` of a publish): `running` until its last delivery
    /// ends, then `all_succeeded`, `partial` or `all_failed`.
    pub async fn get_fan_out(&self, id: Uuid) -> Result<FanOut, Error> {
        let path = format!("v1/fan-outs/{id}");
        self.send(self.request(Method::GET, &path, &[])?).await
    }

    /// Creates an organization (`POST /v1/orgs`), with its first admin API
    /// key, shown this once (`api_key.key`). On a server whose signup is
    /// closed (the default) only a key with `instance:admin` may:
    /// `signup_closed` otherwise; `slug_taken` if another has the slug.
    pub async fn create_org(&self, org: &CreateOrganization) -> Result<CreatedOrganization, Error> {
        self.send(self.request(Method::POST, "v1/orgs", &[])?.json(org))
            .await
    }

    /// The caller's organizations (`GET /v1/orgs`): a key's own.
    pub async fn list_orgs(&self) -> Result<Vec<Organization>, Error> {
        let list: List<Organization> = self
            .send(self.request(Method::GET, "v1/orgs", &[])?)
            .await?;
        Ok(list.data)
    }

    /// One organization, by slug (`GET /v1/orgs/{slug}`): the key's own,
    /// or any for a key with `instance:admin`; `not_found` otherwise.
    pub async fn get_org(&self, slug: &str) -> Result<Organization, Error> {
        self.send(self.request(Method::GET, &org_path(slug, "")?, &[])?)
            .await
    }

    /// Renames an organization or changes its slug (`PATCH
    /// /v1/orgs/{slug}`, `admin`): only the fields given change.
    /// `slug_taken` if another has the new slug.
    pub async fn update_org(
        &self,
        slug: &str,
        patch: &UpdateOrganization,
    ) -> Result<Organization, Error> {
        let path = org_path(slug, "")?;
        self.send(self.request(Method::PATCH, &path, &[])?.json(patch))
            .await
    }

    /// Deletes an organization and everything it owns (`DELETE
    /// /v1/orgs/{slug}`): an owner, or a key with `instance:admin`
    /// (`owner_only` otherwise). The organization holding the instance
    /// administrator's key is refused (`instance_admin_org`).
    pub async fn delete_org(&self, slug: &str) -> Result<(), Error> {
        let path = org_path(slug, "")?;
        self.send_no_content(self.request(Method::DELETE, &path, &[])?)
            .await
    }

    /// Creates an API key in the key's own organization (`POST
    /// /v1/api-keys`, `admin`). The full key is in this answer only
    /// (`key`); `instance:admin` only from a key that holds it.
    pub async fn create_api_key(&self, key: &CreateApiKey) -> Result<CreatedApiKey, Error> {
        self.send(self.request(Method::POST, "v1/api-keys", &[])?.json(key))
            .await
    }

    /// The organization's plan, and the jobs it has created this UTC day
    /// and calendar month against the plan's limits (`GET /v1/usage`,
    /// `jobs:read`).
    pub async fn usage(&self) -> Result<Usage, Error> {
        self.send(self.request(Method::GET, "v1/usage", &[])?).await
    }

    /// Begins verifying a domain the organization's push jobs call (`POST
    /// /v1/domains`, `admin`): a host name, or a URL, normalized to its
    /// host. The answer holds both challenges (`verification`): serve the
    /// file or publish the TXT record, then [`Client::verify_domain`]. A
    /// domain pending answers its challenge again; one already verified
    /// answers with `status` `verified`.
    pub async fn add_domain(&self, domain: &str) -> Result<Domain, Error> {
        let body = DomainRequest {
            domain: Some(domain.to_string()),
        };
        self.send(self.request(Method::POST, "v1/domains", &[])?.json(&body))
            .await
    }

    /// Checks a domain's challenges now (`POST /v1/domains/verify`,
    /// `admin`): either one verifies it. `verification_failed` (422) says
    /// what each challenge found; `not_found` if the domain was never added.
    pub async fn verify_domain(&self, domain: &str) -> Result<Domain, Error> {
        let body = DomainRequest {
            domain: Some(domain.to_string()),
        };
        self.send(
            self.request(Method::POST, "v1/domains/verify", &[])?
                .json(&body),
        )
        .await
    }

    /// Every domain of the organization, newest first (`GET /v1/domains`,
    /// `jobs:read`), all pages followed.
    pub async fn list_domains(&self) -> Result<Vec<Domain>, Error> {
        let mut domains = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut pairs = Vec::new();
            page_pairs(&mut pairs, Some(LIST_ALL_PAGE), cursor.as_deref());
            let page: List<Domain> = self
                .send(self.request(Method::GET, "v1/domains", &pairs)?)
                .await?;
            domains.extend(page.data);
            match page.next_cursor {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(domains),
            }
        }
    }

    /// One domain (`GET /v1/domains/{id}`, `jobs:read`).
    pub async fn get_domain(&self, id: Uuid) -> Result<Domain, Error> {
        let path = format!("v1/domains/{id}");
        self.send(self.request(Method::GET, &path, &[])?).await
    }

    /// Forgets a domain (`DELETE /v1/domains/{id}`, `admin`): where the
    /// plan requires verification, its push targets are limited again.
    pub async fn delete_domain(&self, id: Uuid) -> Result<(), Error> {
        let path = format!("v1/domains/{id}");
        let _: Value = self.send(self.request(Method::DELETE, &path, &[])?).await?;
        Ok(())
    }

    /// The API keys of the key's own organization, never their secrets
    /// (`GET /v1/api-keys`, `admin`).
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, Error> {
        let list: List<ApiKey> = self
            .send(self.request(Method::GET, "v1/api-keys", &[])?)
            .await?;
        Ok(list.data)
    }

    /// Revokes an API key of the key's own organization (`POST
    /// /v1/api-keys/{id}/revoke`, `admin`): requests with it are refused
    /// from now on. `id` is the key's `id`.
    pub async fn revoke_api_key(&self, id: &str) -> Result<ApiKey, Error> {
        let path = format!("v1/api-keys/{}/revoke", segment("API key id", id)?);
        self.send(self.request(Method::POST, &path, &[])?).await
    }

    /// Creates an API key in the organization `slug` names (`POST
    /// /v1/orgs/{slug}/api-keys`, `admin` there, or `instance:admin`).
    pub async fn create_org_api_key(
        &self,
        slug: &str,
        key: &CreateApiKey,
    ) -> Result<CreatedApiKey, Error> {
        let path = org_path(slug, "/api-keys")?;
        self.send(self.request(Method::POST, &path, &[])?.json(key))
            .await
    }

    /// The API keys of the organization `slug` names, never their secrets
    /// (`GET /v1/orgs/{slug}/api-keys`, `admin`).
    pub async fn list_org_api_keys(&self, slug: &str) -> Result<Vec<ApiKey>, Error> {
        let path = org_path(slug, "/api-keys")?;
        let list: List<ApiKey> = self.send(self.request(Method::GET, &path, &[])?).await?;
        Ok(list.data)
    }

    /// An organization's members and their roles (`GET
    /// /v1/orgs/{slug}/members`, `jobs:read`).
    pub async fn list_org_members(&self, slug: &str) -> Result<Vec<Membership>, Error> {
        let path = org_path(slug, "/members")?;
        let list: List<Membership> = self.send(self.request(Method::GET, &path, &[])?).await?;
        Ok(list.data)
    }

    /// Changes a member's role (`PATCH /v1/orgs/{slug}/members/{user_id}`,
    /// `admin`): only an owner makes, changes or removes owners
    /// (`owner_only`), and the last owner stays one (`last_owner`).
    pub async fn update_org_member(
        &self,
        slug: &str,
        user_id: Uuid,
        role: Role,
    ) -> Result<Membership, Error> {
        let path = org_path(slug, &format!("/members/{user_id}"))?;
        let body = UpdateMembership { role };
        self.send(self.request(Method::PATCH, &path, &[])?.json(&body))
            .await
    }

    /// Removes a member from an organization (`DELETE
    /// /v1/orgs/{slug}/members/{user_id}`, `admin`); the last owner stays
    /// (`last_owner`).
    pub async fn remove_org_member(&self, slug: &str, user_id: Uuid) -> Result<(), Error> {
        let path = org_path(slug, &format!("/members/{user_id}"))?;
        self.send_no_content(self.request(Method::DELETE, &path, &[])?)
            .await
    }

    /// Invites someone by e-mail with a role (`POST
    /// /v1/orgs/{slug}/invites`, `admin`; only an owner invites owners,
    /// unless the organization has none yet). Hand over the answer's `url`
    /// (`…/invite#<token>`): single-use, for 7 days; `mailed` says whether
    /// the server also e-mailed it.
    pub async fn create_invite(
        &self,
        slug: &str,
        invite: &CreateInvite,
    ) -> Result<CreatedInvite, Error> {
        let path = org_path(slug, "/invites")?;
        self.send(self.request(Method::POST, &path, &[])?.json(invite))
            .await
    }

    /// An organization's invites, newest first, with their `status`
    /// (`GET /v1/orgs/{slug}/invites`, `admin`).
    pub async fn list_invites(&self, slug: &str) -> Result<Vec<Invite>, Error> {
        let path = org_path(slug, "/invites")?;
        let list: List<Invite> = self.send(self.request(Method::GET, &path, &[])?).await?;
        Ok(list.data)
    }

    /// Revokes a pending invite: its link stops working (`POST
    /// /v1/orgs/{slug}/invites/{id}/revoke`, `admin`).
    pub async fn revoke_invite(&self, slug: &str, id: Uuid) -> Result<Invite, Error> {
        let path = org_path(slug, &format!("/invites/{id}/revoke"))?;
        self.send(self.request(Method::POST, &path, &[])?).await
    }

    /// Gives a pending invite a new link, valid 7 days more (`POST
    /// /v1/orgs/{slug}/invites/{id}/resend`, `admin`): the old link stops
    /// working; e-mailed again if the server has a mail server.
    pub async fn resend_invite(&self, slug: &str, id: Uuid) -> Result<CreatedInvite, Error> {
        let path = org_path(slug, &format!("/invites/{id}/resend"))?;
        self.send(self.request(Method::POST, &path, &[])?).await
    }

    /// Accepts an invite (`POST /v1/invites/accept`) with the `token` of
    /// its link: someone new gives a password (at least 10 characters, not
    /// a common one) and may give a name; someone with an account on the
    /// server gives theirs. An unknown, used, revoked or expired token is
    /// `not_found`. The server also starts a session (a cookie), which this
    /// client does not keep.
    pub async fn accept_invite(&self, accept: &AcceptInvite) -> Result<InviteAccepted, Error> {
        self.send(
            self.request(Method::POST, "v1/invites/accept", &[])?
                .json(accept),
        )
        .await
    }

    /// Creates a schedule (`POST /v1/schedules`), in any of its three
    /// shapes: a `handler` with `interval` or `cron`, or a `url`. Its
    /// `next_run_at` says when it fires first.
    pub async fn create_schedule(&self, schedule: &CreateSchedule) -> Result<Schedule, Error> {
        self.send(
            self.request(Method::POST, "v1/schedules", &[])?
                .json(schedule),
        )
        .await
    }

    /// One schedule (`GET /v1/schedules/{id}`).
    pub async fn get_schedule(&self, id: Uuid) -> Result<Schedule, Error> {
        self.send(self.request(Method::GET, &format!("v1/schedules/{id}"), &[])?)
            .await
    }

    /// A page of schedules, newest first (`GET /v1/schedules`), of one
    /// status or all.
    pub async fn list_schedules(
        &self,
        status: Option<ScheduleStatus>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<List<Schedule>, Error> {
        let mut pairs = Vec::new();
        if let Some(status) = status {
            pairs.push(("status", status.as_str().to_string()));
        }
        page_pairs(&mut pairs, limit, cursor);
        self.send(self.request(Method::GET, "v1/schedules", &pairs)?)
            .await
    }

    /// Changes the fields `patch` gives (`PATCH /v1/schedules/{id}`).
    pub async fn update_schedule(
        &self,
        id: Uuid,
        patch: &CreateSchedule,
    ) -> Result<Schedule, Error> {
        let path = format!("v1/schedules/{id}");
        self.send(self.request(Method::PATCH, &path, &[])?.json(patch))
            .await
    }

    /// Deletes a schedule (`DELETE /v1/schedules/{id}`); its jobs stay.
    pub async fn delete_schedule(&self, id: Uuid) -> Result<(), Error> {
        let _: Value = self
            .send(self.request(Method::DELETE, &format!("v1/schedules/{id}"), &[])?)
            .await?;
        Ok(())
    }

    /// Pauses a schedule; a job already running is not cancelled.
    pub async fn pause_schedule(&self, id: Uuid) -> Result<Schedule, Error> {
        self.schedule_action(id, "pause").await
    }

    /// Resumes a paused schedule from now (missed due times are not fired).
    pub async fn resume_schedule(&self, id: Uuid) -> Result<Schedule, Error> {
        self.schedule_action(id, "resume").await
    }

    /// Archives a schedule: it never fires again, and stays readable.
    pub async fn archive_schedule(&self, id: Uuid) -> Result<Schedule, Error> {
        self.schedule_action(id, "archive").await
    }

    /// Fires a schedule now, paused or not; returns the job it created.
    pub async fn trigger_schedule(&self, id: Uuid) -> Result<Job, Error> {
        let path = format!("v1/schedules/{id}/trigger");
        self.send(self.request(Method::POST, &path, &[])?).await
    }

    /// The next `count` (1 to 100) times a schedule fires (the other SDKs
    /// default `count` to [`DEFAULT_NEXT_RUNS`]).
    pub async fn next_runs(&self, id: Uuid, count: usize) -> Result<Vec<Timestamp>, Error> {
        let path = format!("v1/schedules/{id}/next-runs");
        let pairs = [("count", count.to_string())];
        let runs: NextRuns = self.send(self.request(Method::GET, &path, &pairs)?).await?;
        Ok(runs.data)
    }

    /// A page of the executions of a schedule's jobs, newest first.
    pub async fn list_schedule_executions(
        &self,
        id: Uuid,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<List<Execution>, Error> {
        let mut pairs = Vec::new();
        page_pairs(&mut pairs, limit, cursor);
        let path = format!("v1/schedules/{id}/executions");
        self.send(self.request(Method::GET, &path, &pairs)?).await
    }

    /// A page of a schedule's skipped runs, newest first (`GET
    /// /v1/schedules/{id}/skipped-runs`): the fires that made no job because
    /// the organization's quota was spent, each with the error a create
    /// would have had (`quota_exceeded` or `unverified_domain_limit`). The
    /// newest 100 are kept.
    pub async fn list_skipped_runs(
        &self,
        id: Uuid,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<List<SkippedRun>, Error> {
        let mut pairs = Vec::new();
        page_pairs(&mut pairs, limit, cursor);
        let path = format!("v1/schedules/{id}/skipped-runs");
        self.send(self.request(Method::GET, &path, &pairs)?).await
    }

    async fn schedule_action(&self, id: Uuid, action: &str) -> Result<Schedule, Error> {
        let path = format!("v1/schedules/{id}/{action}");
        self.send(self.request(Method::POST, &path, &[])?).await
    }

    /// Leases due jobs of the given handlers (`POST /v1/workers/poll`),
    /// waiting up to `wait_seconds` for one when none is due; empty if none
    /// came. Needs the `worker` scope.
    pub async fn poll(&self, request: &PollRequest) -> Result<Vec<LeasedJob>, Error> {
        let mut builder = self
            .request(Method::POST, "v1/workers/poll", &[])?
            .json(request);
        // The server may hold the answer for the whole wait.
        if let (Some(timeout), Some(wait)) = (self.timeout, request.wait_seconds) {
            builder = builder.timeout(timeout + Duration::from_secs(wait.into()));
        }
        let page: List<LeasedJob> = self.send(builder).await?;
        Ok(page.data)
    }

    /// Completes the attempt a lease holds, storing `result` on the job
    /// (`POST /v1/leases/ack`). See [`Error::is_lease_lost`].
    pub async fn ack(&self, token: Uuid, result: Option<Value>) -> Result<Job, Error> {
        let body = AckRequest { token, result };
        self.send(
            self.request(Method::POST, "v1/leases/ack", &[])?
                .json(&body),
        )
        .await
    }

    /// Fails the attempt a lease holds (`POST /v1/leases/fail`): the job is
    /// retried after a backoff while retries remain and the failure is
    /// retryable, else it fails.
    pub async fn fail(&self, request: &FailRequest) -> Result<Job, Error> {
        self.send(
            self.request(Method::POST, "v1/leases/fail", &[])?
                .json(request),
        )
        .await
    }

    /// Moves a lease's deadline to `seconds` from now (`POST /v1/leases/extend`).
    pub async fn extend(&self, token: Uuid, seconds: u32) -> Result<Lease, Error> {
        let body = ExtendRequest { token, seconds };
        self.send(
            self.request(Method::POST, "v1/leases/extend", &[])?
                .json(&body),
        )
        .await
    }

    /// A request to `path` (relative, e.g. `v1/jobs`) with query `pairs`.
    fn request(
        &self,
        method: Method,
        path: &str,
        pairs: &[(&str, String)],
    ) -> Result<RequestBuilder, Error> {
        let mut url = self.base.join(path).map_err(|e| Error::InvalidUrl {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
        })?;
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        Ok(self.http.request(method, url))
    }

    /// Sends a request and decodes a 2xx answer as `T`, or the error envelope.
    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, Error> {
        let response = request.send().await.map_err(Error::Http)?;
        let status = response.status();
        let body = response.bytes().await.map_err(Error::Http)?;
        if !status.is_success() {
            return Err(Error::from_answer(status.as_u16(), &body));
        }
        serde_json::from_slice(&body).map_err(|e| Error::Decode {
            status: status.as_u16(),
            message: format!(
                "the body is not the {} expected ({e}): {}",
                short_type_name::<T>(),
                snippet(&body)
            ),
        })
    }

    /// Sends a request whose 2xx answer has no body to read (`204 No
    /// Content`), or decodes the error envelope.
    async fn send_no_content(&self, request: RequestBuilder) -> Result<(), Error> {
        let response = request.send().await.map_err(Error::Http)?;
        let status = response.status();
        let body = response.bytes().await.map_err(Error::Http)?;
        if !status.is_success() {
            return Err(Error::from_answer(status.as_u16(), &body));
        }
        Ok(())
    }
}

/// `v1/queues/{name}{rest}`, the name as one path segment (see [`segment`]).
fn queue_path(name: &str, rest: &str) -> Result<String, Error> {
    Ok(format!("v1/queues/{}{rest}", segment("queue name", name)?))
}

/// `v1/orgs/{slug}{rest}`, the slug as one path segment (see [`segment`]).
fn org_path(slug: &str, rest: &str) -> Result<String, Error> {
    Ok(format!(
        "v1/orgs/{}{rest}",
        segment("organization slug", slug)?
    ))
}

/// `value` (a queue's name, an organization's slug, a key's id) as one path
/// segment: any character such a name can't hold is percent-encoded (so
/// `a/b` or `a?b` asks the server for that name, and is not found, not
/// another route). A URL reads a segment `.` or `..` (encoded or not) as a
/// step in the path, so nothing can be named so in one (the server refuses
/// to make such names): `invalid_argument`, naming `what`.
fn segment(what: &str, value: &str) -> Result<String, Error> {
    if value == "." || value == ".." {
        return Err(Error::invalid_argument(
            what,
            format!("{value:?} can't be named in a URL"),
        ));
    }
    let mut segment = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':' | b'~') {
            segment.push(char::from(byte));
        } else {
            segment.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(segment)
}

/// `Job` rather than `chronos_proto::job::Job`, for messages.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue called `.` or `..` would name another path.
    #[test]
    fn queue_names_of_dots_are_refused() {
        let base = parse_base_url("http://h:1").unwrap();
        let url = |name: &str| base.join(&queue_path(name, "/pause").unwrap()).unwrap();
        assert_eq!(url("a.b:c").as_str(), "http://h:1/v1/queues/a.b:c/pause");
        assert_eq!(
            url("a/b?c#d é").as_str(),
            "http://h:1/v1/queues/a%2Fb%3Fc%23d%20%C3%A9/pause"
        );
        for name in [".", ".."] {
            let err = queue_path(name, "").unwrap_err();
            assert_eq!(err.code_or_kind(), "invalid_argument", "{err}");
            assert!(err.to_string().starts_with("queue name: "), "{err}");
        }
    }

    /// Slugs and key ids travel the same way as queue names.
    #[test]
    fn slugs_and_key_ids_are_one_segment() {
        let base = parse_base_url("http://h:1").unwrap();
        let url = |slug: &str| base.join(&org_path(slug, "/members").unwrap()).unwrap();
        assert_eq!(
            url("mon-org").as_str(),
            "http://h:1/v1/orgs/mon-org/members"
        );
        assert_eq!(
            url("a/b?c").as_str(),
            "http://h:1/v1/orgs/a%2Fb%3Fc/members"
        );
        for slug in [".", ".."] {
            let err = org_path(slug, "").unwrap_err();
            assert_eq!(err.code_or_kind(), "invalid_argument", "{err}");
            assert!(err.to_string().starts_with("organization slug: "), "{err}");
        }
        assert_eq!(segment("API key id", "ab12#x").unwrap(), "ab12%23x");
        assert!(segment("API key id", "..").is_err());
    }

    #[test]
    fn base_urls_are_checked_and_end_in_a_slash() {
        let ok = |raw: &str| parse_base_url(raw).unwrap().to_string();
        assert_eq!(ok("http://127.0.0.1:8080"), "http://127.0.0.1:8080/");
        assert_eq!(ok("https://x.test/chronos"), "https://x.test/chronos/");
        assert_eq!(ok("https://x.test/chronos/"), "https://x.test/chronos/");
        for bad in [
            "",
            "localhost:8080",
            "ftp://x.test",
            "http://",
            "http://x.test/?a=b",
            "http://u:p@x.test",
            "not a url",
        ] {
            let err = parse_base_url(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn paths_join_under_a_prefix() {
        let c = Client::new("https://x.test/chronos", "k").unwrap();
        let req = c
            .request(Method::GET, "v1/jobs", &[("status", "queued".into())])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            req.url().as_str(),
            "https://x.test/chronos/v1/jobs?status=queued"
        );
    }

    #[test]
    fn keys_and_user_agents_must_fit_in_headers() {
        let err = Client::new("http://x.test", "bad\nkey").unwrap_err();
        assert!(
            matches!(err, Error::InvalidHeader { header: "API key" }),
            "{err}"
        );
        assert!(!err.to_string().contains("bad"), "the key leaked: {err}");
        let err = Client::builder("http://x.test", "k")
            .user_agent("a\u{0}b")
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidHeader { .. }), "{err}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let c = Client::new("http://x.test", "chrns_secret_value").unwrap();
        assert!(!format!("{c:?}").contains("secret"));
        let b = Client::builder("http://x.test", "chrns_secret_value");
        assert!(!format!("{b:?}").contains("secret"));
    }

    #[test]
    fn type_names_are_short() {
        assert_eq!(short_type_name::<Job>(), "Job");
        assert_eq!(short_type_name::<List<Job>>(), "List");
    }
}
