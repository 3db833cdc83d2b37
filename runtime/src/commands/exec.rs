use std::os::fd::AsRawFd;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;

use crate::cli::Globals;
use crate::commands::wait::forward_and_wait;
use crate::container::{load, status_name};
use crate::error::RuntimeError;
use crate::executor::RuncLikeExecutor;

/// Whether the container runs in a user namespace of its own.
fn has_userns(container: &libcontainer::container::Container) -> Result<bool, RuntimeError> {
    let spec = oci_spec::runtime::Spec::load(container.bundle().join("config.json"))
        .map_err(libcontainer::error::LibcontainerError::from)?;
    Ok(spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        }))
}

/// A process file rewritten for the container, removed when dropped.
struct ProcessFile(std::path::PathBuf);

impl ProcessFile {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ProcessFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn exec_process_file(
    container: &libcontainer::container::Container,
    path: &std::path::Path,
) -> Result<ProcessFile, RuntimeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RuntimeError::io("cannot read the process file", path, e))?;
    let process: oci_spec::runtime::Process =
        serde_json::from_str(&text).map_err(|e| RuntimeError::ConfigInvalid {
            path: path.to_path_buf(),
            reason: format!("invalid process: {e}"),
        })?;
    let spec = oci_spec::runtime::Spec::load(container.bundle().join("config.json"))
        .map_err(libcontainer::error::LibcontainerError::from)?;
    let process = crate::spec::exec_process(&spec, process);
    let out = container
        .bundle()
        .join(format!("exec-process-{}.json", std::process::id()));
    let json = serde_json::to_vec(&process).map_err(|e| RuntimeError::ConfigInvalid {
        path: out.clone(),
        reason: e.to_string(),
    })?;
    std::fs::write(&out, json).map_err(|e| RuntimeError::io("cannot write", &out, e))?;
    Ok(ProcessFile(out))
}

pub fn exec(args: liboci_cli::Exec, globals: &Globals) -> Result<i32, RuntimeError> {
    let container = load(&globals.root, &args.container_id)?;
    if !container.can_exec() {
        return Err(RuntimeError::WrongState {
            id: args.container_id.clone(),
            status: status_name(container.status()).to_owned(),
            action: "exec",
            wanted: "running",
        });
    }
    if args.process.is_none() && args.command.is_empty() {
        return Err(RuntimeError::ConfigInvalid {
            path: "exec".into(),
            reason: "give a command or --process".into(),
        });
    }
    // A container with its own user namespace: libcontainer does not join
    // it, the executor does, through this fd (inherited by the fork).
    let userns = match (container.pid(), has_userns(&container)?) {
        (Some(pid), true) => {
            let path = format!("/proc/{pid}/ns/user");
            Some(
                std::fs::File::open(&path)
                    .map_err(|e| RuntimeError::io("cannot open user namespace", path, e))?,
            )
        }
        _ => None,
    };
    // The exec'd process joins the container's name=systemd cgroup and, on
    // a hybrid host, its cgroup2 tracking cgroup too (libcontainer joins the
    // controllers only).
    let _stays = match container.pid() {
        Some(pid) => Some(crate::cgroups::ExecStays::enter_like(pid.as_raw())?),
        None => None,
    };
    // A process file is given as the client wrote it; in a system
    // container a root process gets the init's capabilities instead.
    let rewritten = match &args.process {
        Some(path) => Some(exec_process_file(&container, path)?),
        None => None,
    };
    let process = rewritten.as_ref().map(|r| r.path().to_path_buf());
    let user = args.user.map(|(u, _)| u);
    let group = args.user.and_then(|(_, g)| g);
    let pid = ContainerBuilder::new(args.container_id.clone(), SyscallType::default())
        .with_executor(RuncLikeExecutor {
            join_userns: userns.as_ref().map(|f| f.as_raw_fd()),
        })
        .with_root_path(globals.root.clone())?
        .with_console_socket(args.console_socket.as_ref())
        .with_pid_file(args.pid_file.as_ref())?
        .with_preserved_fds(args.preserve_fds)
        .as_tenant()
        .with_detach(args.detach)
        .with_cwd(args.cwd.as_ref())
        .with_env(args.env.into_iter().collect())
        .with_process(process.as_ref())
        .with_no_new_privs(args.no_new_privs)
        .with_container_args(args.command)
        .with_additional_gids(args.additional_gids)
        .with_user(user)
        .with_group(group)
        .with_capabilities(args.cap)
        .with_ignore_paused(args.ignore_paused)
        .with_sub_cgroup(args.cgroup)
        .with_apparmor(args.apparmor)
        .with_process_label(args.process_label)
        .build()?;
    if args.detach {
        return Ok(0);
    }
    forward_and_wait(pid)
}
