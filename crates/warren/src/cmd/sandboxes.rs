//! `warren create|ls|inspect|rm|stop|start|hibernate|wake`.

use clap::Args;
use warren_client::{
    Client, CreateSandboxRequest, ListFilter, ResourcesRequest, SandboxInfo, SandboxState,
};

use super::cli::{pairs, parse_pairs, print_json, print_table, CliError, CliResult, Output};

/// `warren create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Template to make the sandbox from (server default: `base`).
    #[arg(long, short)]
    template: Option<String>,
    /// A label, `KEY=VALUE` (repeatable).
    #[arg(long = "label", short = 'l')]
    labels: Vec<String>,
    /// Metadata, `KEY=VALUE` (repeatable).
    #[arg(long = "metadata", short = 'm')]
    metadata: Vec<String>,
    /// An environment variable of every process, `KEY=VALUE` (repeatable).
    #[arg(long = "env", short = 'e')]
    envs: Vec<String>,
    /// Idle timeout in seconds (0: never stopped for idleness).
    #[arg(long)]
    timeout: Option<u64>,
    /// Lifetime in seconds: destroyed this long after creation.
    #[arg(long)]
    ttl: Option<u64>,
    /// CPUs (fractional allowed).
    #[arg(long)]
    cpus: Option<f64>,
    /// Memory limit in MiB.
    #[arg(long)]
    memory_mb: Option<u64>,
    /// Maximum number of tasks.
    #[arg(long)]
    pids: Option<u64>,
    /// Most the disk may take beyond its template, in MiB.
    #[arg(long)]
    disk_mb: Option<u64>,
    /// Take a checkpoint after every command run.
    #[arg(long)]
    auto_checkpoint: bool,
    /// Start from this checkpoint's disk (`ckpt_…`).
    #[arg(long)]
    from_checkpoint: Option<String>,
    #[command(flatten)]
    out: Output,
}

impl CreateArgs {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        self.out.json
    }

    /// The create request these flags describe.
    pub fn request(&self) -> Result<CreateSandboxRequest, CliError> {
        let non_empty =
            |map: std::collections::BTreeMap<String, String>| (!map.is_empty()).then_some(map);
        let resources = ResourcesRequest {
            cpus: self.cpus,
            memory_mb: self.memory_mb,
            pids: self.pids,
            disk_mb: self.disk_mb,
        };
        Ok(CreateSandboxRequest {
            template: self.template.clone(),
            timeout_secs: self.timeout,
            ttl_secs: self.ttl,
            envs: non_empty(parse_pairs("env", &self.envs)?),
            metadata: non_empty(parse_pairs("metadata", &self.metadata)?),
            labels: non_empty(parse_pairs("label", &self.labels)?),
            resources: (resources != ResourcesRequest::default()).then_some(resources),
            auto_checkpoint: self.auto_checkpoint.then_some(true),
            from_checkpoint: self.from_checkpoint.clone(),
            ..CreateSandboxRequest::default()
        })
    }
}

/// `warren ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only sandboxes in this state (creating, running, stopped, hibernated, error).
    #[arg(long)]
    state: Option<SandboxState>,
    /// Only sandboxes with this label, `KEY=VALUE` (repeatable).
    #[arg(long = "label", short = 'l')]
    labels: Vec<String>,
    /// Only sandboxes with this metadata, `KEY=VALUE` (repeatable).
    #[arg(long = "metadata", short = 'm')]
    metadata: Vec<String>,
    #[command(flatten)]
    out: Output,
}

/// A command on one sandbox.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The sandbox (`sbx_…`).
    id: String,
    #[command(flatten)]
    out: Output,
}

/// `warren extend`.
#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// The sandbox (`sbx_…`).
    id: String,
    /// Seconds added to its lifetime (counted from now if it has passed).
    seconds: u64,
    #[command(flatten)]
    out: Output,
}

/// `warren rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The sandboxes (`sbx_…`).
    #[arg(required = true)]
    ids: Vec<String>,
    #[command(flatten)]
    out: Output,
}

/// One table row of a sandbox.
fn row(s: &SandboxInfo) -> Vec<String> {
    vec![
        s.id.clone(),
        s.state.as_str().to_string(),
        s.template.clone(),
        s.created_at.clone(),
        pairs(&s.labels),
    ]
}

const HEADER: [&str; 5] = ["ID", "STATE", "TEMPLATE", "CREATED", "LABELS"];

/// `warren create`: prints the new id (or the sandbox as JSON).
pub async fn create(client: &Client, args: CreateArgs) -> CliResult {
    let sandbox = client.create(&args.request()?).await?;
    if args.out.json {
        return print_json(&sandbox.info());
    }
    println!("{}", sandbox.id());
    Ok(0)
}

/// `warren ls`.
pub async fn ls(client: &Client, args: LsArgs) -> CliResult {
    let filter = ListFilter {
        state: args.state,
        labels: parse_pairs("label", &args.labels)?.into_iter().collect(),
        metadata: parse_pairs("metadata", &args.metadata)?
            .into_iter()
            .collect(),
        ..ListFilter::default()
    };
    let all = client.list_all(&filter).await?;
    if args.out.json {
        return print_json(&all);
    }
    print_table(&HEADER, &all.iter().map(row).collect::<Vec<_>>());
    Ok(0)
}

/// `warren inspect`.
pub async fn inspect(client: &Client, args: IdArgs) -> CliResult {
    let sandbox = client.get(&args.id).await?;
    let Some(info) = sandbox.info() else {
        return Ok(0);
    };
    if args.out.json {
        return print_json(info);
    }
    print_info(info);
    Ok(0)
}

/// Prints a sandbox as `key: value` lines.
fn print_info(s: &SandboxInfo) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let lines = [
        ("id", s.id.clone()),
        ("state", s.state.as_str().to_string()),
        ("template", s.template.clone()),
        ("created", s.created_at.clone()),
        ("expires", opt(&s.expires_at)),
        ("last active", s.last_active_at.clone()),
        ("idle timeout", format!("{}s", s.timeout_secs)),
        ("cpus", s.resources.cpus.to_string()),
        ("memory", format!("{} MiB", s.resources.memory_mb)),
        ("pids", s.resources.pids.to_string()),
        ("labels", pairs(&s.labels)),
        ("metadata", pairs(&s.metadata)),
        ("auto checkpoint", s.auto_checkpoint.to_string()),
        ("from checkpoint", opt(&s.from_checkpoint)),
    ];
    for (key, value) in lines {
        println!("{:<16} {value}", format!("{key}:"));
    }
}

/// `warren rm`: destroys each sandbox, reporting every failure.
pub async fn rm(client: &Client, args: RmArgs) -> CliResult {
    let mut removed = Vec::new();
    let mut failed = None;
    for id in &args.ids {
        match client.sandbox(id).delete().await {
            Ok(()) => removed.push(id.clone()),
            Err(e) => {
                eprintln!("error: {e}");
                failed = Some(1);
            }
        }
    }
    if args.out.json {
        print_json(&serde_json::json!({ "removed": removed }))?;
    } else {
        for id in &removed {
            println!("{id}");
        }
    }
    Ok(failed.unwrap_or(0))
}

/// A lifecycle transition.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// `warren stop`.
    Stop,
    /// `warren start`.
    Start,
    /// `warren hibernate`.
    Hibernate,
    /// `warren wake`.
    Wake,
}

/// `warren stop|start|hibernate|wake`.
pub async fn lifecycle(client: &Client, args: IdArgs, action: Action) -> CliResult {
    let mut sandbox = client.sandbox(&args.id);
    let info = match action {
        Action::Stop => sandbox.stop().await?,
        Action::Start => sandbox.start().await?,
        Action::Hibernate => sandbox.hibernate().await?,
        Action::Wake => sandbox.wake().await?,
    };
    if args.out.json {
        return print_json(info);
    }
    println!("{} {}", info.id, info.state.as_str());
    Ok(0)
}

/// `warren extend`: prints the new expiry.
pub async fn extend(client: &Client, args: ExtendArgs) -> CliResult {
    let mut sandbox = client.sandbox(&args.id);
    let info = sandbox.extend(args.seconds).await?;
    if args.out.json {
        return print_json(info);
    }
    println!(
        "{} expires at {}",
        info.id,
        info.expires_at.as_deref().unwrap_or("never")
    );
    Ok(0)
}
