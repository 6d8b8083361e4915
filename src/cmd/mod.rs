//! The commands of the `ipchnl` tool.

pub(crate) mod bench;
pub(crate) mod echo;
pub(crate) mod keys;
pub(crate) mod secret;
pub(crate) mod serve;

use std::path::Path;

use ipchnl::{Addr, Secret};

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

/// The secret links use: the one in `file`, none with `insecure`, else
/// this user's (created on first use; see `ipchnl secret`).
pub(crate) fn link_secret(file: Option<&Path>, insecure: bool) -> Result<Option<Secret>, Failure> {
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
