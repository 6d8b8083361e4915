//! The commands of the `ipchnl` tool.

pub(crate) mod bench;
pub(crate) mod echo;
pub(crate) mod keys;
pub(crate) mod secret;
pub(crate) mod serve;

use std::path::{Path, PathBuf};

use clap::Args;
use ipchnl::{Addr, ManagerConfig, Secret};

/// A command failed: one line for stderr and the exit code.
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) code: u8,
}

impl Failure {
    /// A bad argument or configuration: exit code 2.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: 2 }
    }

    /// A failure at run time: exit code 1.
    pub(crate) fn run(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: 1 }
    }
}

pub(crate) type Outcome = Result<(), Failure>;

pub(crate) fn parse_addr(s: &str) -> Result<Addr, Failure> {
    s.parse().map_err(|e| Failure::usage(format!("{e}")))
}

/// How a node proves itself to its peers and protects its links: the
/// options `serve` and `echo` share.
#[derive(Args)]
pub(crate) struct SecurityArgs {
    /// A file holding the shared secret peers must prove they know
    /// (default: this user's secret, `~/.config/ipchnl/secret`, created on
    /// first use: every process of this user links, no other user does).
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
    /// No secret at all: links with anyone who reaches the address (on a
    /// non-loopback address too; frames are not encrypted), as a peer
    /// started with --insecure needs.
    #[arg(long)]
    insecure: bool,
    /// Encrypt every link, loopback, Unix and shared memory too (by
    /// default only TCP links with another host are).
    #[arg(long, conflicts_with = "insecure")]
    encrypt: bool,
    /// This node's key pair (written by `ipchnl keygen`): links prove it,
    /// and are encrypted. Needs --allowed-keys.
    #[arg(long, value_name = "PATH", conflicts_with = "insecure", requires = "allowed_keys")]
    node_key: Option<PathBuf>,
    /// The public keys of the nodes allowed to link, one per line (`#`
    /// comments). Needs --node-key.
    #[arg(long, value_name = "PATH", requires = "node_key")]
    allowed_keys: Option<PathBuf>,
}

impl SecurityArgs {
    /// `config` with the secret, the encryption and the node keys these
    /// options ask for.
    pub(crate) fn apply(&self, mut config: ManagerConfig) -> Result<ManagerConfig, Failure> {
        if let Some(secret) = link_secret(self.secret_file.as_deref(), self.insecure)? {
            config = config.secret(secret);
        }
        if self.encrypt {
            config = config.encryption(ipchnl::Encryption::Always);
        }
        if let Some(keys) = keys::node_keys(self.node_key.as_deref(), self.allowed_keys.as_deref())? {
            config = config.node_keys(keys);
        }
        Ok(config.allow_insecure(self.insecure))
    }
}

/// The secret links use: the one in `file`, none with `insecure`, else
/// this user's (created on first use; see `ipchnl secret`).
fn link_secret(file: Option<&Path>, insecure: bool) -> Result<Option<Secret>, Failure> {
    match (file, insecure) {
        (Some(_), true) => Err(Failure::usage("--secret-file and --insecure contradict each other")),
        (Some(path), false) => ipchnl::read_secret(path)
            .map(Some)
            .map_err(|e| Failure::usage(format!("cannot use the secret file: {e}"))),
        (None, true) => Ok(None),
        (None, false) => ipchnl::user_secret().map(Some).map_err(|e| {
            Failure::usage(format!(
                "cannot use this user's secret: {e} (or pass --secret-file or --insecure)"
            ))
        }),
    }
}
