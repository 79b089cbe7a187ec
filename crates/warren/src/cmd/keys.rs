//! `warren tenant create|ls`, `warren key create|ls|rm` and `warren pool
//! ls|set` (the admin key).

use clap::{Subcommand, ValueEnum};
use warren_client::{Client, KeyFormat};

use super::cli::{print_json, print_table, CliError, CliResult, Output};

/// `warren tenant ...`.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        /// Its name.
        name: String,
        /// How many sandboxes it may run at once (no limit by default).
        #[arg(long)]
        max_sandboxes: Option<u32>,
        #[command(flatten)]
        out: Output,
    },
    /// List the tenants.
    Ls {
        #[command(flatten)]
        out: Output,
    },
}

/// The form of a new key's secret.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `wsk_` and 43 base64url characters.
    #[default]
    Warren,
    /// `e2b_` and 64 hex digits: usable as `E2B_API_KEY` by E2B's SDKs
    /// (and as a Warren key all the same).
    E2b,
}

/// `warren key ...`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make an API key for a tenant; its secret is printed only now.
    Create {
        /// The tenant (`ten_…` or its name).
        #[arg(long)]
        tenant: String,
        /// The secret's form (`e2b` for E2B_API_KEY).
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        #[command(flatten)]
        out: Output,
    },
    /// List a tenant's keys (without their secrets).
    Ls {
        /// The tenant (`ten_…` or its name).
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        out: Output,
    },
    /// Revoke a key.
    Rm {
        /// The key (`key_…`).
        id: String,
    },
}

/// The id of the tenant named or identified by `tenant`.
async fn tenant_id(client: &Client, tenant: &str) -> Result<String, CliError> {
    if tenant.starts_with("ten_") {
        return Ok(tenant.to_string());
    }
    let tenants = client.tenants().await?;
    tenants
        .into_iter()
        .find(|t| t.name == tenant)
        .map(|t| t.id)
        .ok_or_else(|| CliError::Usage(format!("no tenant named {tenant:?}")))
}

/// `warren tenant ...`.
pub async fn tenant(client: &Client, command: TenantCommand) -> CliResult {
    match command {
        TenantCommand::Create {
            name,
            max_sandboxes,
            out,
        } => {
            let tenant = client.create_tenant(&name, max_sandboxes).await?;
            if out.json {
                return print_json(&tenant);
            }
            println!("{}", tenant.id);
            Ok(0)
        }
        TenantCommand::Ls { out } => {
            let tenants = client.tenants().await?;
            if out.json {
                return print_json(&tenants);
            }
            let rows: Vec<Vec<String>> = tenants
                .iter()
                .map(|t| {
                    let max = t.max_sandboxes.map(|n| n.to_string());
                    vec![
                        t.id.clone(),
                        t.name.clone(),
                        max.unwrap_or_else(|| "-".into()),
                        t.created_at.clone(),
                    ]
                })
                .collect();
            print_table(&["ID", "NAME", "MAX SANDBOXES", "CREATED"], &rows);
            Ok(0)
        }
    }
}

/// `warren key ...`.
pub async fn key(client: &Client, command: KeyCommand) -> CliResult {
    match command {
        KeyCommand::Create {
            tenant,
            format,
            out,
        } => {
            let tenant = tenant_id(client, &tenant).await?;
            let format = match format {
                Format::Warren => KeyFormat::Warren,
                Format::E2b => KeyFormat::E2b,
            };
            let created = client.create_key_in(&tenant, format).await?;
            if out.json {
                return print_json(&created);
            }
            println!("{}", created.key);
            eprintln!("(key {}: the secret is shown only now)", created.id);
            Ok(0)
        }
        KeyCommand::Ls { tenant, out } => {
            let tenant = tenant_id(client, &tenant).await?;
            let keys = client.keys(&tenant).await?;
            if out.json {
                return print_json(&keys);
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| vec![k.id.clone(), k.prefix.clone(), k.created_at.clone()])
                .collect();
            print_table(&["ID", "PREFIX", "CREATED"], &rows);
            Ok(0)
        }
        KeyCommand::Rm { id } => {
            client.delete_key(&id).await?;
            Ok(0)
        }
    }
}

/// `warren pool ...`: the warm pools of ready sandboxes.
#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// List the pools: size and sandboxes ready.
    Ls {
        #[command(flatten)]
        out: Output,
    },
    /// Keep N sandboxes of a template ready (0 turns its pool off).
    Set {
        /// The template.
        template: String,
        /// How many ready sandboxes to keep.
        size: u32,
        #[command(flatten)]
        out: Output,
    },
}

/// `warren pool ...`.
pub async fn pool(client: &Client, command: PoolCommand) -> CliResult {
    let (pools, out) = match command {
        PoolCommand::Ls { out } => (client.pools().await?, out),
        PoolCommand::Set {
            template,
            size,
            out,
        } => (vec![client.set_pool(&template, size).await?], out),
    };
    if out.json {
        return print_json(&pools);
    }
    let rows: Vec<Vec<String>> = pools
        .iter()
        .map(|p| vec![p.template.clone(), p.size.to_string(), p.ready.to_string()])
        .collect();
    print_table(&["TEMPLATE", "SIZE", "READY"], &rows);
    Ok(0)
}
