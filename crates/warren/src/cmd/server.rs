//! `warren server`: flags to [`warren_server::ServerConfig`], then [`warren_server::run`].

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use warren_runtime::network::{Cidr, NetworkConfig};
use warren_runtime::storage::Driver;
use warren_runtime::template::BaseOptions;
use warren_server::previews::PreviewSettings;
use warren_server::{Limits, ServerConfig};

/// Flags of `warren server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to serve the API on (HOST:PORT; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: String,
    /// Where the database, the admin key, the storage pool and the sandboxes'
    /// run directories live.
    #[arg(long, default_value = "/var/lib/warren")]
    state_dir: PathBuf,
    /// Storage driver: btrfs subvolumes (in a loop-mounted image when the
    /// state dir is not on btrfs), plain copies, or auto.
    #[arg(long, default_value = "auto", value_parser = parse_driver)]
    storage: Driver,
    /// The admin key (default: STATE_DIR/admin.key, generated at first start).
    #[arg(long = "admin-key", env = "WARREN_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Parent cgroup of every sandbox; servers sharing a machine need
    /// different ones.
    #[arg(long, default_value = "warren")]
    cgroup_parent: String,
    /// Debian mirror the `base` template is built from (default: the first
    /// one serving bookworm in this machine's apt sources).
    #[arg(long)]
    debian_mirror: Option<String>,
    /// Name of the sandbox network: nft table `inet NAME`, bridge `NAME0`,
    /// veths `NAME-<hex>` (1 to 8 of a-z 0-9). Servers sharing a machine
    /// need different names and ranges.
    #[arg(long, default_value = "warren")]
    network_name: String,
    /// Addresses of sandboxes (IPv4 CIDR); the first is the gateway and the
    /// sandboxes' resolver.
    #[arg(long, default_value = "10.213.0.0/16", value_parser = parse_cidr)]
    network_cidr: Cidr,
    /// DNS server the sandboxes' resolver forwards to, IP or IP:PORT
    /// (repeatable; default: the nameservers of /etc/resolv.conf).
    #[arg(long = "network-dns", value_parser = parse_socket)]
    network_dns: Vec<std::net::SocketAddr>,
    /// Let allow-lists open private ranges (10/8, 172.16/12, 192.168/16,
    /// 100.64/10, 192.0.0/24) by CIDR, for sandboxes that must reach
    /// services on the local network. Off, an allow-list naming only private
    /// space is refused and wider CIDRs (0.0.0.0/0) open public space only.
    /// Link-local (cloud metadata), loopback and multicast stay closed
    /// regardless.
    #[arg(
        long,
        env = "WARREN_ALLOW_PRIVATE_EGRESS",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    allow_private_egress: bool,
    /// Keep N sandboxes of TEMPLATE started and ready, so that creates take
    /// one instead of starting one (repeatable; `base=0` turns the default
    /// off). Default: `base=2`. Admins change sizes at run time with
    /// `PUT /v1/admin/pools/{template}`.
    #[arg(long = "pool", value_name = "TEMPLATE=N", value_parser = parse_pool)]
    pools: Vec<(String, u32)>,
    /// No outbound network: every sandbox has loopback only.
    #[arg(long)]
    no_network: bool,
    /// Extra CA certificates every sandbox and template build trusts besides
    /// its image's own store (for hosts behind a TLS-intercepting proxy):
    /// `auto` (the host's `/usr/local/share/ca-certificates`, when it has
    /// any), `none`, or a PEM file or directory.
    #[arg(long, env = "WARREN_EXTRA_CA_CERTS", default_value = "auto")]
    extra_ca_certs: String,
    /// Egress of sandboxes created without a network policy.
    #[arg(long, default_value = "allow", value_parser = parse_egress)]
    default_egress: warren_runtime::Egress,
    /// Domain of preview URLs: `{port}-{id}.{domain}` (`localhost` needs no
    /// DNS set-up in a local browser).
    #[arg(long, default_value = "localhost")]
    preview_domain: String,
    /// Scheme shown in preview URLs (`https` behind a TLS proxy).
    #[arg(long, default_value = "http")]
    preview_scheme: String,
    /// Port shown in preview URLs (default: the port the server listens
    /// on; 0 for none).
    #[arg(long)]
    preview_port: Option<u16>,
    /// debootstrap's package cache for building `base`.
    #[arg(long, default_value = "/var/cache/warren/debootstrap")]
    debootstrap_cache: PathBuf,
    /// Most CPUs one sandbox may ask for (default: the host's).
    #[arg(long)]
    max_cpus: Option<f64>,
    /// Most memory one sandbox may ask for, in MiB (default: half the host's).
    #[arg(long)]
    max_memory_mb: Option<u64>,
    /// Disk limit of sandboxes that do not ask for one, in MiB beyond their
    /// template (btrfs storage; 0 for none).
    #[arg(long, default_value_t = 10240)]
    default_disk_mb: u64,
    /// Most disk one sandbox may ask for, in MiB (default: no maximum).
    #[arg(long)]
    max_disk_mb: Option<u64>,
    /// Most tasks (processes and threads) one sandbox may ask for.
    #[arg(long, default_value_t = 4096)]
    max_pids: u64,
    /// Most requests in flight on one sandbox (agent calls, open streams and
    /// terminals, preview requests); more are refused with 429.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_requests_per_sandbox: u32,
    /// Most requests in flight over all of one tenant's sandboxes.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    max_requests_per_tenant: u32,
    /// Log lines as text (colour only when stderr is a terminal) or one JSON
    /// object per line.
    #[arg(long, value_enum, env = "WARREN_LOG_FORMAT", default_value = "text")]
    log_format: super::LogFormat,
}

fn parse_driver(s: &str) -> Result<Driver, String> {
    s.parse()
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    s.parse()
        .map_err(|e: warren_runtime::network::PolicyError| e.to_string())
}

fn parse_socket(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
        .map_err(|_| format!("{s:?} is not IP or IP:PORT"))
}

fn parse_egress(s: &str) -> Result<warren_runtime::Egress, String> {
    match s {
        "allow" => Ok(warren_runtime::Egress::Allow),
        "deny" => Ok(warren_runtime::Egress::Deny),
        _ => Err(format!("{s:?}: expected allow or deny")),
    }
}

/// Runs the server until SIGTERM. Sandboxes keep running after it exits.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    super::init_logging(args.log_format);
    super::raise_fd_limit();
    // Every sandbox's agent and the runtime's single-threaded init helper are
    // this very binary.
    let warren_binary = std::env::current_exe().context("finding the warren binary")?;
    let extra_ca_pem = match args.extra_ca_certs.as_str() {
        "none" => None,
        "auto" => warren_runtime::trust::host_extra(),
        path => Some(
            warren_runtime::trust::read_extra(std::path::Path::new(path))
                .context("--extra-ca-certs")?,
        ),
    };
    let config = ServerConfig {
        listen: args.listen,
        state_dir: args.state_dir,
        storage: args.storage,
        admin_key: args.admin_key,
        warren_binary,
        cgroup_parent: args.cgroup_parent,
        base_template: BaseOptions {
            mirror: args.debian_mirror,
            cache_dir: args.debootstrap_cache,
            ..BaseOptions::default()
        },
        network: (!args.no_network).then_some(NetworkConfig {
            name: args.network_name,
            cidr: args.network_cidr,
            upstreams: args.network_dns,
            allow_private: args.allow_private_egress,
        }),
        extra_ca_pem,
        pools: pool_sizes(args.pools),
        previews: PreviewSettings {
            domain: args.preview_domain,
            scheme: args.preview_scheme,
            port: args.preview_port,
        },
        limits: Limits {
            default_egress: args.default_egress,
            allow_private_egress: args.allow_private_egress,
            max_cpus: args.max_cpus,
            max_memory_mb: args.max_memory_mb,
            max_pids: args.max_pids,
            default_disk_mb: (args.default_disk_mb > 0).then_some(args.default_disk_mb),
            max_disk_mb: args.max_disk_mb,
            max_requests_per_sandbox: args.max_requests_per_sandbox as usize,
            max_requests_per_tenant: args.max_requests_per_tenant as usize,
            ..Limits::default()
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(warren_server::run(config))?;
    Ok(())
}

/// `TEMPLATE=N`.
fn parse_pool(s: &str) -> Result<(String, u32), String> {
    let (template, size) = s
        .split_once('=')
        .ok_or_else(|| format!("expected TEMPLATE=N, got {s:?}"))?;
    if template.is_empty() {
        return Err(format!("expected TEMPLATE=N, got {s:?}"));
    }
    let size: u32 = size
        .parse()
        .map_err(|_| format!("{size:?} is not a number of sandboxes"))?;
    if size > warren_server::sandboxes::pool::MAX_POOL_SIZE {
        return Err(format!(
            "at most {} ready sandboxes per template",
            warren_server::sandboxes::pool::MAX_POOL_SIZE
        ));
    }
    Ok((template.to_string(), size))
}

/// The sizes asked for, over the default pool (`base=2`); the last
/// `--pool` of a template wins.
fn pool_sizes(asked: Vec<(String, u32)>) -> std::collections::BTreeMap<String, u32> {
    let (name, size) = warren_server::sandboxes::pool::DEFAULT_POOL;
    let mut sizes = std::collections::BTreeMap::from([(name.to_string(), size)]);
    sizes.extend(asked);
    sizes
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use clap::{CommandFactory, Parser};

    use super::ServerArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    #[test]
    fn private_egress_is_off_unless_the_admin_turns_it_on() {
        if std::env::var_os("WARREN_ALLOW_PRIVATE_EGRESS").is_none() {
            let cli = Cli::try_parse_from(["warren"]).unwrap();
            assert!(!cli.server.allow_private_egress);
        }
        let cli = Cli::try_parse_from(["warren", "--allow-private-egress"]).unwrap();
        assert!(cli.server.allow_private_egress);
        let cli = Cli::try_parse_from(["warren", "--allow-private-egress=no"]);
        assert!(cli.is_err(), "a flag takes no value");
        // WARREN_ALLOW_PRIVATE_EGRESS turns it on too (its value goes
        // through the boolish parser: 1, true, yes, on; 0, false, no, off).
        let cmd = Cli::command();
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_id() == "allow_private_egress")
            .unwrap();
        assert_eq!(
            arg.get_env(),
            Some(OsStr::new("WARREN_ALLOW_PRIVATE_EGRESS"))
        );
    }
}
