//! How the container's process is executed, the way runc does it.
//!
//! libcontainer's default executor demands `PATH` in the environment even for
//! an absolute `args[0]`. `ctr run --rootfs` passes no `PATH`, and runc runs
//! such a process anyway, so warren looks `PATH` up only for bare names.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;

#[derive(Clone, Default)]
pub struct RuncLikeExecutor {
    /// For exec: what the exec'd process finishes before execve (see
    /// [`crate::join`]).
    pub exec: Option<crate::join::ExecPlan>,
}

/// The home directory of `uid` in the container's /etc/passwd.
pub fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 5 && fields[2].parse::<u32>().ok() == Some(uid))
            .then(|| fields[5].to_owned())
    })
}

fn args_of(spec: &Spec) -> Option<&Vec<String>> {
    spec.process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .filter(|a| !a.is_empty())
}

fn path_of(spec: &Spec) -> Option<String> {
    spec.process()
        .as_ref()
        .and_then(|p| p.env().as_ref())
        .and_then(|env| {
            env.iter()
                .rev()
                .find_map(|e| e.strip_prefix("PATH=").map(str::to_owned))
        })
}

fn is_executable_file(path: &Path) -> bool {
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds the file to execute: `name` itself when it holds a `/`, else the
/// first executable match in `path_var`.
pub fn resolve(name: &str, path_var: Option<&str>) -> Result<PathBuf, String> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return if is_executable_file(&p) {
            Ok(p)
        } else if p.exists() {
            Err(format!("exec: {name:?}: permission denied"))
        } else {
            Err(format!("exec: {name:?}: no such file or directory"))
        };
    }
    let Some(path_var) = path_var else {
        return Err(format!(
            "exec: {name:?}: executable file not found in $PATH"
        ));
    };
    path_var
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
        .find(|p| is_executable_file(p))
        .ok_or_else(|| format!("exec: {name:?}: executable file not found in $PATH"))
}

impl Executor for RuncLikeExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if let Some(plan) = &self.exec {
            crate::join::finish(plan)
                .map_err(|e| ExecutorError::Other(crate::error::one_line(&e)))?;
        }
        let args = args_of(spec).ok_or(ExecutorError::InvalidArg)?;
        let file = resolve(&args[0], path_of(spec).as_deref()).map_err(ExecutorError::Other)?;
        let file = CString::new(file.into_os_string().into_encoded_bytes())
            .map_err(|_| ExecutorError::InvalidArg)?;
        let argv = args
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ExecutorError::Other("process args contain a NUL byte".into()))?;
        // execv only returns on failure.
        let Err(err) = nix::unistd::execv(&file, &argv);
        Err(ExecutorError::Other(format!("exec {:?}: {err}", args[0])))
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let args = args_of(spec).ok_or_else(|| {
            ExecutorValidationError::ArgValidationError("process.args must not be empty".into())
        })?;
        resolve(&args[0], path_of(spec).as_deref())
            .map(|_| ())
            .map_err(ExecutorValidationError::ArgValidationError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_path_needs_no_path_variable() {
        assert_eq!(resolve("/bin/sh", None), Ok(PathBuf::from("/bin/sh")));
    }

    #[test]
    fn bare_name_without_path_is_refused() {
        let err = resolve("sh", None).unwrap_err();
        assert!(err.contains("not found in $PATH"), "{err}");
    }

    #[test]
    fn bare_name_is_found_in_path() {
        assert_eq!(
            resolve("sh", Some("/nonexistent:/bin")),
            Ok(PathBuf::from("/bin/sh"))
        );
    }

    #[test]
    fn missing_absolute_path_says_so() {
        let err = resolve("/no/such/binary", Some("/bin")).unwrap_err();
        assert!(err.contains("no such file"), "{err}");
    }
}
