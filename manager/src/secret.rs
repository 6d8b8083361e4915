//! The per-user secret: secure by default, as Erlang's cookie is.
//!
//! Every process of one user reads the same secret from a file only that
//! user can read, created on first use, so they link with no setup and
//! another user on the same host is refused, over loopback TCP too.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use connection::Secret;

/// The shortest secret a manager accepts, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// Why a secret could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Neither `$XDG_CONFIG_HOME` nor `$HOME` is set.
    #[error("no config directory: set XDG_CONFIG_HOME or HOME, or give a secret file")]
    NoConfigDir,
    /// The file could not be read, written or created.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The secret is too short to resist a dictionary.
    #[error(
        "{path}: the secret is {len} bytes, at least {MIN_SECRET_LEN} are needed (`ipchnl secret` writes one)"
    )]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// Others may read the file (or its directory): it is no secret.
    #[error("{path}: readable by others (mode {mode:o}); `chmod 600` it")]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The file belongs to another user, who could change it.
    #[error("{path}: owned by user {owner}, not by this user ({own})")]
    NotOwned {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's user.
        own: u32,
    },
    /// The file's directory lets others replace it: it belongs to another
    /// user, or others may write to it (and it is not sticky, as `/tmp` is).
    #[error(
        "{dir}: others may replace the secret file in it (owner {owner}, mode {mode:o}); keep it in a directory of your own"
    )]
    UnsafeDirectory {
        /// The directory.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its mode.
        mode: u32,
    },
    /// The file exists already (writing a fresh one would cut every link
    /// that uses it).
    #[error("{0}: exists already")]
    Exists(PathBuf),
    /// No randomness for a new secret.
    #[error("no randomness for a new secret: {0}")]
    Random(String),
}

/// Where this user's secret lives: `$XDG_CONFIG_HOME/ipchnl/secret`, or
/// `$HOME/.config/ipchnl/secret`.
pub fn user_secret_path() -> Result<PathBuf, SecretError> {
    let dir = match (std::env::var_os("XDG_CONFIG_HOME"), std::env::var_os("HOME")) {
        (Some(x), _) if !x.is_empty() => PathBuf::from(x),
        (_, Some(h)) if !h.is_empty() => PathBuf::from(h).join(".config"),
        _ => return Err(SecretError::NoConfigDir),
    };
    Ok(dir.join("ipchnl").join("secret"))
}

/// This user's secret, created (32 random bytes, hex-encoded, mode 0600,
/// its directory 0700) if it does not exist yet.
///
/// # Examples
///
/// ```
/// # mod ipchnl { pub use manager::read_secret; pub use manager::write_secret; }
/// # let dir = std::env::temp_dir().join(format!("ipchnl-doc-{}", std::process::id()));
/// use ipchnl::{read_secret, write_secret};
///
/// let path = dir.join("secret");
/// write_secret(&path)?;                     // what `ipchnl secret PATH` does
/// let secret = read_secret(&path)?;         // what `--secret-file PATH` does
/// assert!(format!("{secret:?}").contains("redacted"));
/// assert!(write_secret(&path).is_err(), "an existing secret is not overwritten");
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn user_secret() -> Result<Secret, SecretError> {
    let path = user_secret_path()?;
    match write_secret(&path) {
        Ok(()) | Err(SecretError::Exists(_)) => read_secret(&path),
        Err(e) => Err(e),
    }
}

/// Writes a fresh secret to `path` (32 random bytes, hex-encoded), mode
/// 0600, creating its directory (0700); an existing file is left alone
/// (`Exists`).
pub fn write_secret(path: &Path) -> Result<(), SecretError> {
    let io = |source| SecretError::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
    let mut text = hex::encode(bytes);
    bytes.fill(0);
    text.push('\n');
    let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
    let written = match file {
        Ok(mut f) => f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(io),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(SecretError::Exists(path.to_owned())),
        Err(e) => Err(io(e)),
    };
    // The text is the secret: wipe it.
    let mut text = text.into_bytes();
    text.fill(0);
    std::hint::black_box(&mut text);
    written
}

/// The secret in the file at `path` (without one trailing newline),
/// refused if the file is not this user's, others may read it, others may
/// replace it (its directory is another user's, or writable by others and
/// not sticky), or it is shorter than [`MIN_SECRET_LEN`] bytes.
pub fn read_secret(path: &Path) -> Result<Secret, SecretError> {
    let io = |source| SecretError::Io { path: path.to_owned(), source };
    let meta = fs::metadata(path).map_err(io)?;
    let own = rustix::process::geteuid().as_raw();
    if meta.uid() != own {
        return Err(SecretError::NotOwned { path: path.to_owned(), owner: meta.uid(), own });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Exposed { path: path.to_owned(), mode });
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let d = fs::metadata(&dir).map_err(io)?;
    let (owner, dir_mode) = (d.uid(), d.mode() & 0o7777);
    let others_write = dir_mode & 0o022 != 0 && dir_mode & 0o1000 == 0;
    if (owner != own && owner != 0) || others_write {
        return Err(SecretError::UnsafeDirectory { dir, owner, mode: dir_mode });
    }
    let secret = Secret::from_file(path).map_err(io)?;
    if secret.len() < MIN_SECRET_LEN {
        return Err(SecretError::TooShort { path: path.to_owned(), len: secret.len() });
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("ipchnl-secret-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_fresh_secret_is_private_and_strong() {
        let dir = temp("fresh");
        let path = dir.join("sub").join("secret");
        write_secret(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let secret = read_secret(&path).unwrap();
        assert_eq!(secret.len(), 64, "32 bytes, hex");
        assert!(matches!(write_secret(&path), Err(SecretError::Exists(_))));
        let again = read_secret(&path).unwrap();
        assert_eq!(format!("{again:?}"), format!("{secret:?}"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn short_or_exposed_secrets_are_refused() {
        let dir = temp("weak");
        fs::create_dir_all(&dir).unwrap();
        let short = dir.join("short");
        fs::write(&short, "hunter2\n").unwrap();
        fs::set_permissions(&short, fs::Permissions::from_mode(0o600)).unwrap();
        let err = read_secret(&short).unwrap_err();
        assert!(matches!(err, SecretError::TooShort { len: 7, .. }), "{err}");
        assert!(err.to_string().contains("at least 16"), "{err}");
        let open = dir.join("open");
        fs::write(&open, "a perfectly long secret, but readable by all").unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read_secret(&open), Err(SecretError::Exposed { mode: 0o644, .. })));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_secret_others_could_replace_is_refused() {
        let dir = temp("shared-dir");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        fs::write(&path, "a perfectly long secret, kept private").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_secret(&path).is_ok());
        // A directory others may write to (not sticky): they could swap the file.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = read_secret(&path).unwrap_err();
        assert!(matches!(err, SecretError::UnsafeDirectory { mode: 0o777, .. }), "{err}");
        // Sticky, as /tmp is: only the owner may remove or rename it.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(read_secret(&path).is_ok());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_secret_of_another_user_is_refused() {
        let dir = temp("not-mine");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        fs::write(&path, "a perfectly long secret, kept private").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        // As root (CI), the file is given away; otherwise root's own file is
        // another user's.
        let path = match std::os::unix::fs::chown(&path, Some(65534), None) {
            Ok(()) => path,
            Err(_) => PathBuf::from("/etc/passwd"),
        };
        assert!(matches!(read_secret(&path), Err(SecretError::NotOwned { .. })), "{path:?}");
        fs::remove_dir_all(dir).unwrap();
    }
}
