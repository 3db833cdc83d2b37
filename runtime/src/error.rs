//! Errors that warren-runc reports to its caller.
//!
//! Shims match some of these messages by substring (containerd looks for
//! `does not exist`, `container not running` and `no such process`), so the
//! wording of those variants is part of the interface.

use std::path::PathBuf;

use libcontainer::error::LibcontainerError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container \"{0}\" does not exist")]
    NotExist(String),
    #[error("container \"{0}\" already exists")]
    Exists(String),
    #[error("container \"{0}\" not running")]
    NotRunning(String),
    #[error("container \"{id}\" is {status}, {action} needs it {wanted}")]
    WrongState {
        id: String,
        status: String,
        action: &'static str,
        wanted: &'static str,
    },
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.'")]
    InvalidId(String),
    #[error("bundle {0}: no such directory")]
    BundleMissing(PathBuf),
    #[error("bundle {path}: cannot read config.json")]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid config")]
    ConfigParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {reason}")]
    ConfigInvalid { path: PathBuf, reason: String },
    #[error("rootfs {0}: no such directory")]
    RootfsMissing(PathBuf),
    #[error(
        "rootfs {0} is writable and ID-mapped (container root writes as host uid 0), and host users other than root can reach it: a setuid file made inside would be setuid root on the host. Make a directory on its way root's alone (chmod 0700 on its parent, for example), mark the rootfs read-only (root.readonly), or use an overlay rootfs"
    )]
    RootfsReachable(PathBuf),
    #[error("process {0} has no root in its user namespace")]
    NoRootInUserns(i32),
    #[error("unknown signal {0:?}")]
    UnknownSignal(String),
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Libcontainer(Box<LibcontainerError>),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Subid(#[from] crate::subid::SubidError),
    #[error(transparent)]
    Settings(Box<crate::settings::SettingsError>),
    #[error(transparent)]
    Prepare(Box<crate::idmap::IdmapError>),
    #[error(transparent)]
    Interceptor(#[from] crate::interceptor_client::InterceptorError),
    #[error(transparent)]
    Remove(#[from] warren_sys::RemoveError),
    #[error(transparent)]
    Locked(#[from] crate::locked::LockedError),
    #[error(transparent)]
    ExecListener(#[from] crate::exec_listener::ExecListenerError),
}

impl From<LibcontainerError> for RuntimeError {
    fn from(e: LibcontainerError) -> Self {
        RuntimeError::Libcontainer(Box::new(e))
    }
}

impl From<crate::settings::SettingsError> for RuntimeError {
    fn from(e: crate::settings::SettingsError) -> Self {
        RuntimeError::Settings(Box::new(e))
    }
}

impl RuntimeError {
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// Renders an error and its causes on one line: `outer: cause: root cause`.
/// A cause whose text the outer message already ends with is skipped.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_causes() {
        let err = RuntimeError::io(
            "cannot read",
            "/x",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert_eq!(one_line(&err), "cannot read /x: entity not found");
    }
}
