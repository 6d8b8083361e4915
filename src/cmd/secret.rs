//! `ipchnl secret`: write a fresh secret.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{Failure, Outcome};

/// Options of `ipchnl secret`.
#[derive(Args)]
pub(crate) struct SecretArgs {
    /// Where to write it (default: this user's, `~/.config/ipchnl/secret`).
    #[arg(value_name = "PATH")]
    path: Option<PathBuf>,
}

pub(crate) fn run(args: &SecretArgs) -> Outcome {
    let path = match &args.path {
        Some(path) => path.clone(),
        None => ipchnl::user_secret_path().map_err(|e| Failure::usage(e.to_string()))?,
    };
    ipchnl::write_secret(&path).map_err(|e| match e {
        ipchnl::SecretError::Exists(_) => Failure::usage(format!(
            "{e}: remove it first to replace it (every process using it must then restart)"
        )),
        e => Failure::run(format!("cannot write the secret: {e}")),
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "wrote a fresh secret to {}", path.display()).map_err(|e| Failure::run(e.to_string()))
}
