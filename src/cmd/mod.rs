//! The commands of the `ipchnl` tool.

pub(crate) mod bench;
pub(crate) mod echo;
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

pub(crate) fn read_secret(path: Option<&Path>) -> Result<Option<Secret>, Failure> {
    path.map(|p| {
        Secret::from_file(p)
            .map_err(|e| Failure::usage(format!("cannot read secret file {}: {e}", p.display())))
    })
    .transpose()
}
