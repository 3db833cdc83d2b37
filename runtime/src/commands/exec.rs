use std::os::fd::AsRawFd;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;

use crate::cli::Globals;
use crate::commands::wait::forward_and_wait;
use crate::container::{load, status_name};
use crate::error::RuntimeError;
use crate::exec_listener::{Channel as ExecChannel, Registration};
use crate::executor::RuncLikeExecutor;
use crate::join::ExecPlan;

/// Whether the container runs in a user namespace of its own.
fn has_userns(spec: &oci_spec::runtime::Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        })
}

/// A process file written for libcontainer, removed when dropped.
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

fn invalid(path: &std::path::Path, reason: String) -> RuntimeError {
    RuntimeError::ConfigInvalid {
        path: path.to_path_buf(),
        reason,
    }
}

/// The process the client asked for, from its process file or its flags
/// (with the container's environment, capabilities and no-new-privileges as
/// the baseline, as runc builds it).
fn requested_process(
    spec: &oci_spec::runtime::Spec,
    args: &liboci_cli::Exec,
) -> Result<oci_spec::runtime::Process, RuntimeError> {
    if let Some(path) = &args.process {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RuntimeError::io("cannot read the process file", path, e))?;
        return serde_json::from_str(&text)
            .map_err(|e| invalid(path, format!("invalid process: {e}")));
    }
    let base = spec.process().clone().unwrap_or_default();
    let mut env: Vec<String> = base.env().clone().unwrap_or_default();
    for (k, v) in &args.env {
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) != k);
        env.push(format!("{k}={v}"));
    }
    let mut caps = base.capabilities().clone().unwrap_or_default();
    let added: Vec<oci_spec::runtime::Capability> = args
        .cap
        .iter()
        .map(|c| {
            crate::spec::parse_capability(c)
                .ok_or_else(|| invalid("exec".as_ref(), format!("unknown capability {c:?}")))
        })
        .collect::<Result<_, _>>()?;
    let with_added = |set: Option<&oci_spec::runtime::Capabilities>| {
        Some(
            set.into_iter()
                .flatten()
                .chain(added.iter())
                .copied()
                .collect(),
        )
    };
    caps.set_bounding(with_added(caps.bounding().as_ref()));
    caps.set_effective(with_added(caps.effective().as_ref()));
    caps.set_permitted(with_added(caps.permitted().as_ref()));
    let mut user = oci_spec::runtime::User::default();
    let (uid, gid) = args.user.map_or((0, 0), |(u, g)| (u, g.unwrap_or(0)));
    user.set_uid(uid);
    user.set_gid(gid);
    if !args.additional_gids.is_empty() {
        user.set_additional_gids(Some(args.additional_gids.clone()));
    }
    let mut process = oci_spec::runtime::Process::default();
    process.set_args(Some(args.command.clone()));
    process.set_env(Some(env));
    process.set_cwd(args.cwd.clone().unwrap_or_else(|| base.cwd().clone()));
    process.set_terminal(Some(args.tty));
    process.set_user(user);
    process.set_capabilities(Some(caps));
    process.set_no_new_privileges(
        Some(args.no_new_privs)
            .filter(|&n| n)
            .or(base.no_new_privileges()),
    );
    process.set_apparmor_profile(args.apparmor.clone());
    process.set_selinux_label(args.process_label.clone());
    process.set_rlimits(None);
    Ok(process)
}

/// What libcontainer runs: the process as root with the capabilities the
/// executor needs to finish it (see [`crate::join`]), which then takes the
/// requested user and capabilities.
fn as_root(
    process: &oci_spec::runtime::Process,
    container: &oci_spec::runtime::Spec,
) -> oci_spec::runtime::Process {
    use oci_spec::runtime::Capability;
    let mut root = process.clone();
    let mut user = process.user().clone();
    user.set_uid(0);
    user.set_gid(0);
    user.set_additional_gids(None);
    root.set_user(user);
    let init_caps = container
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().clone())
        .unwrap_or_default();
    let all: oci_spec::runtime::Capabilities = process
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().clone())
        .unwrap_or_default()
        .into_iter()
        .chain(init_caps)
        .chain([
            Capability::SysAdmin,
            Capability::Setuid,
            Capability::Setgid,
            Capability::Setpcap,
        ])
        .collect();
    let mut caps = oci_spec::runtime::LinuxCapabilities::default();
    caps.set_bounding(Some(all.clone()));
    caps.set_effective(Some(all.clone()));
    caps.set_permitted(Some(all));
    caps.set_inheritable(None);
    caps.set_ambient(None);
    root.set_capabilities(Some(caps));
    root
}

fn write_process_file(
    container: &libcontainer::container::Container,
    process: &oci_spec::runtime::Process,
) -> Result<ProcessFile, RuntimeError> {
    let out = container
        .bundle()
        .join(format!("exec-process-{}.json", std::process::id()));
    let json = serde_json::to_vec(process).map_err(|e| invalid(&out, e.to_string()))?;
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
    let spec = oci_spec::runtime::Spec::load(container.bundle().join("config.json"))
        .map_err(libcontainer::error::LibcontainerError::from)?;
    // A container with its own user namespace: libcontainer does not join
    // it, the executor does, through this fd (inherited by the fork).
    let userns = match (container.pid(), has_userns(&spec)) {
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
    // In a system container a root process gets the init's capabilities.
    let process = crate::spec::exec_process(&spec, requested_process(&spec, &args)?);
    let file = write_process_file(&container, &as_root(&process, &spec))?;
    let file_path = file.path().to_path_buf();
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    let channel = ExecChannel::start(Registration {
        id: args.container_id.clone(),
        bundle: container.bundle().to_path_buf(),
        listener: seccomp.as_ref().and_then(|s| s.listener_path().clone()),
        metadata: seccomp.as_ref().and_then(|s| s.listener_metadata().clone()),
        annotations: spec.annotations().clone(),
    })?;
    let plan = ExecPlan {
        userns: userns.as_ref().map(|f| f.as_raw_fd()),
        seccomp: seccomp.clone(),
        channel: channel.theirs(),
        process,
    };
    // As in create: what libseccomp cannot name is refused by number, in
    // this process and so in the exec'd one.
    if seccomp
        .as_ref()
        .is_some_and(crate::spec::seccomp::is_warrens)
    {
        crate::spec::seccomp::refuse_by_number()
            .map_err(|e| RuntimeError::io("cannot load the filter of", "unnamed syscalls", e))?;
    }
    // Not dumpable: nothing in the container may ptrace the process before
    // it has loaded its filter (execve makes the program dumpable again).
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let built = ContainerBuilder::new(args.container_id.clone(), SyscallType::default())
        .with_executor(RuncLikeExecutor { exec: Some(plan) })
        .with_root_path(globals.root.clone())
        .and_then(|b| b.with_pid_file(args.pid_file.as_ref()))
        .and_then(|b| {
            b.with_console_socket(args.console_socket.as_ref())
                .with_preserved_fds(args.preserve_fds)
                .as_tenant()
                .with_detach(args.detach)
                .with_process(Some(&file_path))
                .with_ignore_paused(args.ignore_paused)
                .with_sub_cgroup(args.cgroup)
                .build()
        });
    drop(file);
    // libcontainer's error first: when it failed, the process never got as
    // far as its filter.
    let served = channel.finish();
    let pid = match (built, served) {
        (Ok(pid), Ok(())) => pid,
        (Err(err), _) => return Err(err.into()),
        (Ok(_), Err(err)) => return Err(err.into()),
    };
    if args.detach {
        return Ok(0);
    }
    forward_and_wait(pid)
}
