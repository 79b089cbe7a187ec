//! `warren server`: flags to [`warren_server::ServerConfig`], then [`warren_server::run`].

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use warren_runtime::storage::Driver;
use warren_runtime::template::BaseOptions;
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
    /// debootstrap's package cache for building `base`.
    #[arg(long, default_value = "/var/cache/warren/debootstrap")]
    debootstrap_cache: PathBuf,
}

fn parse_driver(s: &str) -> Result<Driver, String> {
    s.parse()
}

/// Runs the server until SIGTERM. Sandboxes keep running after it exits.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    super::init_logging();
    // Every sandbox's agent and the runtime's single-threaded init helper are
    // this very binary.
    let warren_binary = std::env::current_exe().context("finding the warren binary")?;
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
        limits: Limits::default(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(warren_server::run(config))?;
    Ok(())
}
