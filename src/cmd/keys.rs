//! `ipchnl keygen`: a node key pair; and the `--node-key` / `--allowed-keys`
//! options of `serve` and `echo`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::Args;
use ipchnl::NodeKeys;

use super::{Failure, Outcome};

/// Options of `ipchnl keygen`.
#[derive(Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the key pair (mode 0600; it must not exist).
    #[arg(value_name = "PATH")]
    path: PathBuf,
}

/// Writes a fresh key pair to the file and prints its public key: list
/// it in the `--allowed-keys` file of every node this one may link with.
pub(crate) fn run(args: &KeygenArgs) -> Outcome {
    let keys = NodeKeys::generate().map_err(|e| Failure::run(format!("cannot make a key: {e}")))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.path)
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", args.path.display())))?;
    file.write_all(keys.to_text().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure::run(format!("cannot write {}: {e}", args.path.display())))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "wrote a node key to {}; its public key (list it where this node may link):",
        args.path.display()
    )
    .and_then(|()| writeln!(out, "{}", keys.public_hex()))
    .map_err(|e| Failure::run(e.to_string()))
}

/// The node keys of `--node-key KEY --allowed-keys LIST`: both or neither.
/// The key file must be this user's and unreadable by others.
pub(crate) fn node_keys(key: Option<&Path>, allowed: Option<&Path>) -> Result<Option<NodeKeys>, Failure> {
    let (key, allowed) = match (key, allowed) {
        (None, None) => return Ok(None),
        (Some(key), Some(allowed)) => (key, allowed),
        _ => return Err(Failure::usage("--node-key and --allowed-keys go together")),
    };
    let meta = std::fs::metadata(key).map_err(|e| Failure::usage(format!("{}: {e}", key.display())))?;
    if meta.uid() != rustix::process::geteuid().as_raw() || meta.permissions().mode() & 0o077 != 0 {
        return Err(Failure::usage(format!(
            "{}: a node key must be this user's and readable by no one else (chmod 600)",
            key.display()
        )));
    }
    let text = std::fs::read_to_string(key).map_err(|e| Failure::usage(format!("{}: {e}", key.display())))?;
    let keys = NodeKeys::from_text(&text)
        .ok_or_else(|| Failure::usage(format!("{}: not a key written by `ipchnl keygen`", key.display())))?;
    let list = std::fs::read_to_string(allowed)
        .map_err(|e| Failure::usage(format!("{}: {e}", allowed.display())))?;
    keys.allow(&list).map(Some).map_err(|e| Failure::usage(format!("{}: {e}", allowed.display())))
}
