//! The `chronos` command line: `serve`, `migrate`, `retention`, `keys`,
//! `orgs`, `users`.

use crate::account::Organization;
use crate::account::keys::new_api_key;
use crate::account::passwords;
use crate::account::people::{NewUser, email_key, valid_email};
use crate::account::plans::{Plan, UNLIMITED};
use crate::api::auth::Signup;
use crate::api::client::TrustedProxies;
use crate::config::StoreConfig;
use crate::push::dispatcher::PushConfig;
use crate::retention::format_period;
use crate::store::sqlite::OpenMode;
use crate::store::{Clock, DynStore, Opened, PlanDeleted, RetentionPeriods};
use anyhow::{Context, anyhow, bail};
use chronos_proto::{Role, Scope};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "chronos",
    version,
    about = "Chronos: jobs, schedules and workers"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "CHRONOS_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Where the data lives: PostgreSQL given a URL, else the embedded store.
#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// PostgreSQL URL (postgres://user@host:port/db) or sqlite:PATH.
    #[arg(long, env = "CHRONOS_DATABASE_URL")]
    database_url: Option<String>,
    /// Directory of the embedded store, used when no database URL is given.
    #[arg(long, env = "CHRONOS_DATA_DIR", default_value = "./chronos-data")]
    data_dir: PathBuf,
}

impl StoreArgs {
    fn config(&self) -> anyhow::Result<StoreConfig> {
        StoreConfig::new(self.database_url.as_deref(), &self.data_dir).map_err(|e| anyhow!(e))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "CHRONOS_LISTEN", default_value = "127.0.0.1:7070")]
        listen: SocketAddr,
        #[command(flatten)]
        store: StoreArgs,
        /// Allow push targets on private, loopback and link-local addresses,
        /// and plain http. For local development only.
        #[arg(long, env = "CHRONOS_ALLOW_PRIVATE_TARGETS")]
        allow_private_targets: bool,
        /// Push calls in flight at most, over all target hosts.
        #[arg(long, env = "CHRONOS_PUSH_CONCURRENCY", default_value_t = PushConfig::default().max_in_flight,
              value_parser = clap::value_parser!(u32).range(1..=10_000))]
        push_concurrency: u32,
        /// Push calls in flight at most to one target host (`host:port`).
        #[arg(long, env = "CHRONOS_PUSH_PER_HOST", default_value_t = PushConfig::default().per_host,
              value_parser = clap::value_parser!(u32).range(1..=10_000))]
        push_per_host: u32,
        /// Disable a push endpoint (an organization's scheme, host and port)
        /// that has failed this long with no success — timeouts, connection
        /// errors, 5xx, 408, 429 — and hold its deliveries until it is
        /// enabled (`POST /v1/endpoints/{id}/enable`): 30m, 24h, 7d, or never.
        #[arg(long, env = "CHRONOS_ENDPOINT_DISABLE_AFTER", default_value = "24h",
              value_parser = parse_disable_after)]
        endpoint_disable_after: DisableAfter,
        /// The address users reach this server at (https://chronos.example.com):
        /// invite links derive from it, and cookies are `Secure` when it is https.
        #[arg(long, env = "CHRONOS_PUBLIC_URL", value_parser = parse_public_url)]
        public_url: Option<url::Url>,
        /// Proxies (addresses or CIDRs, comma-separated) whose
        /// X-Forwarded-For and X-Forwarded-Proto are believed: rate limits
        /// per address then use the client address they report.
        #[arg(long, env = "CHRONOS_TRUSTED_PROXIES", value_delimiter = ',')]
        trusted_proxies: Vec<String>,
        /// Who may create organizations: `closed` (the instance
        /// administrator's key, or `chronos orgs create`) or `open` (anyone,
        /// rate-limited per address).
        #[arg(long, env = "CHRONOS_SIGNUP", value_enum, default_value = "closed")]
        signup: Signup,
        /// An SMTP server to e-mail invites through: smtp://user:pass@host:587?tls=required
        /// (STARTTLS), smtps://host:465, or smtp://host:25 (plain, for a local relay).
        #[arg(long, env = "CHRONOS_SMTP_URL")]
        smtp_url: Option<String>,
        /// The From address of invite mails (default: chronos@ the public URL's host).
        #[arg(long, env = "CHRONOS_SMTP_FROM")]
        smtp_from: Option<String>,
        /// A DNS server to verify domains with (their TXT records, and the
        /// address of the host serving the well-known file): IP or IP:PORT,
        /// repeatable or comma-separated. Default: the system's resolvers.
        #[arg(long = "dns-server", env = "CHRONOS_DNS_SERVERS", value_delimiter = ',', value_parser = parse_dns_server)]
        dns_servers: Vec<std::net::SocketAddr>,
        /// For tests only: the store reads a clock the tests move
        /// (`chronos_test_clock`) instead of the database's.
        #[arg(long, hide = true)]
        test_clock: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show how long finished jobs are kept, or set it: each given period
    /// replaces that status's, for every server at once.
    Retention {
        /// How long a completed job is kept after it finished: 90s, 15m,
        /// 12h, 7d (at least 1 minute), or `forever`.
        #[arg(long, value_parser = parse_period, allow_hyphen_values = true)]
        completed: Option<Period>,
        /// How long a failed job is kept after it failed.
        #[arg(long, value_parser = parse_period, allow_hyphen_values = true)]
        failed: Option<Period>,
        /// How long a cancelled job is kept after it was cancelled.
        #[arg(long, value_parser = parse_period, allow_hyphen_values = true)]
        cancelled: Option<Period>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage organizations.
    Orgs {
        #[command(subcommand)]
        command: OrgsCommand,
    },
    /// Manage people.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Manage plans: what an organization may use.
    Plans {
        #[command(subcommand)]
        command: PlansCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PlansCommand {
    /// List the plans and their limits.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Create a plan, or replace a plan's limits (a limit not given is no
    /// limit). `unlimited` can't be changed.
    Set {
        name: String,
        /// Jobs an organization may create a UTC day.
        #[arg(long)]
        per_day: Option<u64>,
        /// Jobs an organization may create a calendar month.
        #[arg(long)]
        per_month: Option<u64>,
        /// The shortest interval a schedule may fire at: `90s`, `15m`, `1h`.
        #[arg(long, value_parser = parse_interval)]
        min_interval: Option<u32>,
        /// The most retries a job may have.
        #[arg(long)]
        max_retries: Option<u32>,
        /// Push targets' domains must be verified.
        #[arg(long)]
        verify_domains: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a plan no organization is on.
    Delete {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a person (or add an existing one) as a member of an
    /// organization: the first owner of a closed server, for one.
    Create {
        #[arg(long)]
        email: String,
        /// The organization's slug.
        #[arg(long, default_value = "default")]
        org: String,
        /// viewer, member, admin or owner.
        #[arg(long, default_value = "member", value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input (one line); otherwise one
        /// is generated and printed once.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .ok_or_else(|| format!("unknown role `{s}`; expected viewer, member, admin or owner"))
}

fn parse_public_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("`{s}` must be an http or https URL with a host"));
    }
    Ok(url)
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key and print it (once).
    Create {
        /// A label for people.
        #[arg(long)]
        name: String,
        /// Scopes: admin, jobs:read, jobs:write, worker, monitors:write.
        /// Repeat for several.
        #[arg(long = "scope", value_parser = parse_scope, required_unless_present = "instance_admin")]
        scopes: Vec<Scope>,
        /// Also `instance:admin`: the key may create organizations on a
        /// server whose signup is closed, and manage any organization.
        #[arg(long)]
        instance_admin: bool,
        /// The organization's slug.
        #[arg(long, default_value = "default")]
        org: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List an organization's keys.
    List {
        #[arg(long, default_value = "default")]
        org: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a key by id (the part after `chrns_`, or the whole key).
    Revoke {
        id: String,
        #[arg(long, default_value = "default")]
        org: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum OrgsCommand {
    /// Create an organization.
    Create {
        slug: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Put an organization on a plan (`chronos plans list`). Other servers
    /// on the same database apply it to the next job they create.
    SetPlan {
        slug: String,
        plan: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `90s`, `15m`, `1h`: whole seconds, at least 1.
fn parse_interval(s: &str) -> Result<u32, String> {
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u32 = number
        .parse()
        .map_err(|_| format!("{s:?}: give a number and a unit, as in 90s, 15m or 1h"))?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => return Err(format!("{s:?}: the unit is s, m or h")),
    };
    seconds
        .filter(|&s| s > 0)
        .ok_or_else(|| format!("{s:?}: at least 1s, at most {} s", u32::MAX))
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.parse()
}

/// A retention period as given on the command line; `None` is forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Period(Option<Duration>);

/// `90s`, `15m`, `12h`, `7d` or `forever` ([`crate::retention::parse_period`]).
/// `--endpoint-disable-after`: a duration, or never (`None`).
#[derive(Clone, Copy, Debug)]
struct DisableAfter(Option<std::time::Duration>);

/// `30m`, `24h`, `7d`, or `never`.
fn parse_disable_after(s: &str) -> Result<DisableAfter, String> {
    if s == "never" {
        return Ok(DisableAfter(None));
    }
    match crate::config::parse_duration(s) {
        Ok(after) if !after.is_zero() => Ok(DisableAfter(Some(after))),
        _ => Err(format!(
            "`{s}` is not a duration: write 90s, 15m, 24h, 7d or never"
        )),
    }
}

fn parse_period(s: &str) -> Result<Period, String> {
    crate::retention::parse_period(s).map(Period)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHRONOS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            listen,
            store,
            allow_private_targets,
            push_concurrency,
            push_per_host,
            endpoint_disable_after,
            public_url,
            trusted_proxies,
            signup,
            smtp_url,
            smtp_from,
            dns_servers,
            test_clock,
        } => {
            let trusted_proxies = TrustedProxies::parse(&trusted_proxies)
                .map_err(|e| anyhow!("--trusted-proxies: {e}"))?;
            let smtp = smtp_url.map(|url| {
                let host = public_url
                    .as_ref()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_else(|| "localhost".into());
                (url, smtp_from.unwrap_or_else(|| format!("chronos@{host}")))
            });
            let options = crate::server::ServeOptions {
                targets: crate::push::guard::TargetPolicy {
                    allow_private: allow_private_targets,
                },
                push: PushConfig {
                    max_in_flight: push_concurrency,
                    per_host: push_per_host,
                    endpoint_health: crate::endpoint::HealthPolicy {
                        disable_after: endpoint_disable_after.0,
                    },
                },
                accounts: crate::server::AccountOptions {
                    public_url,
                    trusted_proxies,
                    signup,
                    smtp,
                },
                domains: crate::server::DomainOptions {
                    dns_servers,
                    ..Default::default()
                },
            };
            let clock = if test_clock {
                Clock::Test
            } else {
                Clock::Database
            };
            serve(listen, store.config()?, options, clock).await
        }
        Command::Migrate { store } => {
            let config = store.config()?;
            prepare(&config, OpenMode::Command, Clock::Database).await?;
            println!("{} is up to date", config.describe());
            Ok(())
        }
        Command::Retention {
            completed,
            failed,
            cancelled,
            store,
        } => retention(completed, failed, cancelled, &store).await,
        Command::Keys { command } => keys(command).await,
        Command::Orgs { command } => orgs(command).await,
        Command::Users { command } => users(command).await,
        Command::Plans { command } => plans(command).await,
    }
}

/// Opens and prepares the store (see [`crate::server::prepare_store`]). If
/// this created the default organization, its admin key is printed, the only
/// time it exists in clear: on stdout by the server, on stderr by other
/// commands (whose stdout is their own output).
async fn prepare(config: &StoreConfig, mode: OpenMode, clock: Clock) -> anyhow::Result<Opened> {
    let (store, admin_key) = crate::server::prepare_store(config, mode, clock).await?;
    if let Some(key) = admin_key {
        let notice = format!(
            "Created organization `default` and its admin API key. It is shown only this once:\n\n    {key}\n"
        );
        match mode {
            OpenMode::Serve => println!("{notice}"),
            OpenMode::Command => eprintln!("{notice}"),
        }
    }
    Ok(store)
}

async fn serve(
    listen: SocketAddr,
    config: StoreConfig,
    options: crate::server::ServeOptions,
    clock: Clock,
) -> anyhow::Result<()> {
    // Listen first: a start that fails on a busy port must not have printed
    // (and so spent) the one-time admin key.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let store = prepare(&config, OpenMode::Serve, clock).await?;
    tracing::info!(
        address = %listener.local_addr()?,
        store = %config.describe(),
        "chronos is listening"
    );
    crate::server::run(listener, store, options, crate::server::shutdown_signal()).await
}

/// The store for a short command (`keys`, `orgs`).
async fn command_store(args: &StoreArgs) -> anyhow::Result<DynStore> {
    Ok(prepare(&args.config()?, OpenMode::Command, Clock::Database)
        .await?
        .store)
}

async fn org(store: &DynStore, slug: &str) -> anyhow::Result<Organization> {
    store.organization_by_slug(slug).await?.ok_or_else(|| {
        anyhow!("no organization `{slug}`; create it with `chronos orgs create {slug}`")
    })
}

/// `chronos retention`: sets the periods given, then prints all three.
async fn retention(
    completed: Option<Period>,
    failed: Option<Period>,
    cancelled: Option<Period>,
    args: &StoreArgs,
) -> anyhow::Result<()> {
    let store = command_store(args).await?;
    let mut settings = store.retention().await?;
    if completed.is_some() || failed.is_some() || cancelled.is_some() {
        let mut periods = settings.periods;
        if let Some(Period(p)) = completed {
            periods.completed = p;
        }
        if let Some(Period(p)) = failed {
            periods.failed = p;
        }
        if let Some(Period(p)) = cancelled {
            periods.cancelled = p;
        }
        settings = store.set_retention(periods).await?;
    }
    let p = settings.periods;
    println!("completed  {}", format_period(p.completed));
    println!("failed     {}", format_period(p.failed));
    println!("cancelled  {}", format_period(p.cancelled));
    if settings.set_at.is_none() && p == RetentionPeriods::FOREVER {
        eprintln!(
            "This store predates retention: it keeps every finished job until you set periods, \
             for example `chronos retention --completed 7d --failed 30d --cancelled 30d`."
        );
    }
    Ok(())
}

async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            name,
            mut scopes,
            instance_admin,
            org: slug,
            store,
        } => {
            let store = command_store(&store).await?;
            let org = org(&store, &slug).await?;
            if instance_admin {
                scopes.push(Scope::InstanceAdmin);
            }
            scopes.sort();
            scopes.dedup();
            let (record, key) = new_api_key(org.id, &name, scopes);
            let stored = store.insert_api_key(record).await?;
            let scopes: Vec<_> = stored.scopes.iter().map(|s| s.as_str()).collect();
            eprintln!(
                "Created key {} ({}) for `{slug}` with scopes {}. It is shown only this once:",
                stored.id,
                stored.name,
                scopes.join(", ")
            );
            println!("{key}");
        }
        KeysCommand::List { org: slug, store } => {
            let store = command_store(&store).await?;
            let org = org(&store, &slug).await?;
            println!(
                "{:<18} {:<26} {:<30} {:<26} NAME",
                "ID", "CREATED", "SCOPES", "REVOKED"
            );
            for k in store.list_api_keys(org.id).await? {
                let scopes: Vec<_> = k.scopes.iter().map(|s| s.as_str()).collect();
                println!(
                    "{:<18} {:<26} {:<30} {:<26} {}",
                    k.id,
                    k.created_at.to_string(),
                    scopes.join(","),
                    k.revoked_at
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "-".into()),
                    k.name
                );
            }
        }
        KeysCommand::Revoke {
            id,
            org: slug,
            store,
        } => {
            let store = command_store(&store).await?;
            let org = org(&store, &slug).await?;
            let id = id.strip_prefix(crate::account::keys::PREFIX).unwrap_or(&id);
            let id = id.split('_').next().unwrap_or(id);
            match store.revoke_api_key(org.id, id).await? {
                Some(k) => println!("revoked {} ({})", k.id, k.name),
                None => bail!("organization `{slug}` has no key {id}"),
            }
        }
    }
    Ok(())
}

async fn orgs(command: OrgsCommand) -> anyhow::Result<()> {
    match command {
        OrgsCommand::Create { slug, name, store } => {
            if !valid_slug(&slug) {
                bail!(
                    "an organization slug is 2 to 63 lowercase letters, digits and '-', not starting with '-'"
                );
            }
            let store = command_store(&store).await?;
            if store.organization_by_slug(&slug).await?.is_some() {
                bail!("organization `{slug}` already exists");
            }
            let name = name.unwrap_or_else(|| slug.clone());
            let org = store.create_organization(&slug, &name).await?;
            println!("created organization `{}` ({})", org.slug, org.id.0);
        }
        OrgsCommand::SetPlan { slug, plan, store } => {
            let store = command_store(&store).await?;
            let org = org(&store, &slug).await?;
            if !store.set_organization_plan(org.id, &plan).await? {
                bail!("there is no plan `{plan}` (chronos plans list)");
            }
            println!("organization `{slug}` is on the plan `{plan}`");
        }
    }
    Ok(())
}

async fn plans(command: PlansCommand) -> anyhow::Result<()> {
    let limit = |n: Option<u64>| n.map_or("no limit".to_string(), |n| n.to_string());
    match command {
        PlansCommand::List { store } => {
            let store = command_store(&store).await?;
            for p in store.list_plans().await? {
                println!(
                    "{}: {} a day, {} a month, schedules every {} at least, {} retries at most{}",
                    p.name,
                    limit(p.messages_per_day),
                    limit(p.messages_per_month),
                    p.min_interval_seconds
                        .map_or("any interval".to_string(), |s| format!("{s} s")),
                    limit(p.max_retries.map(u64::from)),
                    if p.verify_domains {
                        "; push domains must be verified"
                    } else {
                        ""
                    },
                );
            }
        }
        PlansCommand::Set {
            name,
            per_day,
            per_month,
            min_interval,
            max_retries,
            verify_domains,
            store,
        } => {
            if name == UNLIMITED {
                bail!(
                    "`{UNLIMITED}` limits nothing and can't be changed; make a plan of another name"
                );
            }
            if !valid_slug(&name) {
                bail!(
                    "a plan's name is 2 to 63 lowercase letters, digits and '-', not starting with '-'"
                );
            }
            let store = command_store(&store).await?;
            store
                .put_plan(&Plan {
                    name: name.clone(),
                    messages_per_day: per_day,
                    messages_per_month: per_month,
                    min_interval_seconds: min_interval,
                    max_retries,
                    verify_domains,
                })
                .await?;
            println!("plan `{name}` saved");
        }
        PlansCommand::Delete { name, store } => {
            let store = command_store(&store).await?;
            match store.delete_plan(&name).await? {
                PlanDeleted::Deleted => println!("plan `{name}` deleted"),
                PlanDeleted::NotFound => bail!("there is no plan `{name}`"),
                PlanDeleted::InUse(_) if name == UNLIMITED => {
                    bail!("`{UNLIMITED}` is every new organization's plan and can't be deleted")
                }
                PlanDeleted::InUse(n) => bail!(
                    "{n} organization(s) are on `{name}`: put them on another plan first (chronos orgs set-plan)"
                ),
            }
        }
    }
    Ok(())
}

/// Does `slug` match [`chronos_proto::accounts::SLUG_PATTERN`], the
/// pattern the API's schema holds slugs to?
fn valid_slug(slug: &str) -> bool {
    jsonschema::is_valid(
        &serde_json::json!({"type": "string", "pattern": chronos_proto::accounts::SLUG_PATTERN}),
        &serde_json::json!(slug),
    )
}

async fn users(command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Create {
            email,
            org: slug,
            role,
            name,
            password_stdin,
            store,
        } => {
            if !valid_email(&email) {
                bail!("`{email}` is not an e-mail address");
            }
            let store = command_store(&store).await?;
            let org = org(&store, &slug).await?;
            let user = match store.user_by_email(&email_key(&email)).await? {
                Some(user) => {
                    eprintln!("{email} has an account already; adding it to `{slug}`");
                    user
                }
                None => {
                    let (password, generated) = if password_stdin {
                        let mut line = String::new();
                        std::io::stdin().read_line(&mut line)?;
                        (line.trim_end_matches(['\r', '\n']).to_string(), false)
                    } else {
                        (crate::account::people::Token::generate().text, true)
                    };
                    passwords::check_policy(&password, &email).map_err(|e| anyhow!("{e}"))?;
                    let password_hash = passwords::hash_async(password.clone())
                        .await
                        .map_err(|e| anyhow!("hashing the password: {e}"))?;
                    let user = store
                        .create_user(NewUser {
                            id: uuid::Uuid::now_v7(),
                            email: email.clone(),
                            name,
                            password_hash,
                        })
                        .await?
                        .ok_or_else(|| anyhow!("{email} has an account already"))?;
                    if generated {
                        eprintln!("Created {email} with this password, shown only this once:");
                        println!("{password}");
                    }
                    user
                }
            };
            store.add_membership(org.id, user.id, role).await?;
            let role = store.membership(org.id, user.id).await?.unwrap_or(role);
            eprintln!("{email} is {} of `{slug}`", role.as_str());
        }
    }
    Ok(())
}

/// `--dns-server`: an IP address, with a port or on 53.
fn parse_dns_server(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(addr) = s.parse::<std::net::SocketAddr>() {
        return Ok(addr);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| format!("`{s}` is not an IP address or IP:PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for good in ["mon-org", "default", "a1", "0-0"] {
            assert!(valid_slug(good), "{good}");
        }
        for bad in ["a", "-ab", "Ab", "a_b", "", &"a".repeat(64)] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }

    #[test]
    fn endpoint_thresholds_parse() {
        let after = |s| parse_disable_after(s).map(|d| d.0);
        assert_eq!(after("24h"), Ok(Some(Duration::from_secs(86_400))));
        assert_eq!(after("never"), Ok(None));
        for bad in ["0s", "soon", "-1h", "24", ""] {
            assert!(after(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
