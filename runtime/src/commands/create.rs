use std::os::fd::AsFd;
use std::path::Path;

use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;

use crate::bundle::Bundle;
use crate::cli::Globals;
use crate::container::{WarrenMeta, container_dir};
use crate::error::RuntimeError;
use crate::executor::RuncLikeExecutor;
use crate::syscont;

/// What `create` and `run` share.
pub struct CreateOptions<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub preserve_fds: i32,
    pub no_pivot: bool,
    pub detach: bool,
}

pub fn create(args: liboci_cli::Create, globals: &Globals) -> Result<Container, RuntimeError> {
    create_container(
        &CreateOptions {
            id: &args.container_id,
            bundle: &args.bundle,
            pid_file: args.pid_file.as_deref(),
            console_socket: args.console_socket.as_deref(),
            preserve_fds: args.preserve_fds,
            no_pivot: args.no_pivot,
            detach: true,
        },
        globals,
    )
}

/// This thread's stay in another network namespace, left when dropped.
struct NetnsStay {
    back: std::fs::File,
}

impl NetnsStay {
    fn enter(path: &Path) -> Result<NetnsStay, RuntimeError> {
        use nix::sched::{CloneFlags, setns};
        let own = Path::new("/proc/thread-self/ns/net");
        let back = std::fs::File::open(own).map_err(|e| RuntimeError::io("cannot open", own, e))?;
        let target =
            std::fs::File::open(path).map_err(|e| RuntimeError::io("cannot open", path, e))?;
        setns(&target, CloneFlags::CLONE_NEWNET)
            .map_err(|e| RuntimeError::io("cannot enter the network namespace", path, e.into()))?;
        Ok(NetnsStay { back })
    }
}

impl Drop for NetnsStay {
    fn drop(&mut self) {
        if let Err(e) = nix::sched::setns(&self.back, nix::sched::CloneFlags::CLONE_NEWNET) {
            tracing::warn!(error = %e, "cannot return to warren-runc's network namespace");
        }
    }
}

pub fn create_container(
    opts: &CreateOptions<'_>,
    globals: &Globals,
) -> Result<Container, RuntimeError> {
    let dir = container_dir(&globals.root, opts.id)?;
    let bundle = Bundle::load(opts.bundle)?;
    if dir.exists() {
        return Err(RuntimeError::Exists(opts.id.to_owned()));
    }
    std::fs::create_dir_all(&globals.root)
        .map_err(|e| RuntimeError::io("cannot create state root", &globals.root, e))?;
    let (prepared_dir, mut prepared, userns) = syscont::prepare(globals, opts.id, &bundle)?;
    let syscont = crate::spec::is_syscont(&bundle.spec);
    // A pod's network namespace owned by the host: entered here, inherited
    // by the container (see spec::move_host_netns).
    let netns = match crate::spec::host_netns(&prepared).map(|p| NetnsStay::enter(&p)) {
        Some(Err(err)) => {
            remove_leftover(globals, opts.id, &dir);
            return Err(err);
        }
        Some(Ok(stay)) => Some(stay),
        None => None,
    };
    let own_cgroups = if syscont && !globals.systemd_cgroup {
        let entered =
            crate::prepared::cgroups_path(&globals.root, opts.id, &prepared).and_then(|rel| {
                crate::cgroups::OwnCgroups::enter(&rel).inspect_err(|_| {
                    crate::cgroups::remove_own_cgroups(&rel);
                })
            });
        match entered {
            Ok(n) => Some(n),
            Err(err) => {
                remove_leftover(globals, opts.id, &dir);
                return Err(err);
            }
        }
    } else {
        None
    };

    // The protected mounts, built on the host side so that the kernel locks
    // them; after the pod's network namespace was entered (sysfs shows it).
    // warren-runc stays in the mount namespace the container starts from
    // until libcontainer is done.
    let view = crate::locked::view_dir(&syscont::per_root_name(&globals.root, opts.id));
    let stay = match userns {
        Some(userns) if crate::locked::applies(&prepared) => {
            let entered = std::fs::read_link("/proc/self/exe")
                .map_err(|e| RuntimeError::io("cannot read", "/proc/self/exe", e))
                .and_then(|bin| {
                    crate::locked::enter(&mut prepared, userns.as_fd(), &bin, &prepared_dir, &view)
                        .map_err(RuntimeError::from)
                })
                .and_then(|stay| {
                    crate::prepared::write(&globals.root, opts.id, &prepared).map(|_| stay)
                });
            match entered {
                Ok(stay) => Some(stay),
                Err(err) => {
                    drop(own_cgroups);
                    drop(netns);
                    remove_leftover(globals, opts.id, &dir);
                    return Err(err);
                }
            }
        }
        _ => None,
    };
    // The container's processes inherit it: the syscalls of warren's table
    // that libseccomp cannot name are refused by number. warren-runc needs
    // none of them from here on.
    let warrens_rules = prepared
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .is_some_and(crate::spec::seccomp::is_warrens);
    if warrens_rules {
        if let Err(e) = crate::spec::seccomp::refuse_by_number() {
            remove_leftover(globals, opts.id, &dir);
            return Err(RuntimeError::io(
                "cannot load the filter of",
                "unnamed syscalls",
                e,
            ));
        }
    }
    let built = ContainerBuilder::new(opts.id.to_owned(), SyscallType::default())
        .with_executor(RuncLikeExecutor::default())
        .with_root_path(globals.root.clone())
        .and_then(|b| b.with_pid_file(opts.pid_file))
        .map(|b| {
            b.with_console_socket(opts.console_socket)
                .with_preserved_fds(opts.preserve_fds)
                .as_init(&prepared_dir)
                .with_systemd(globals.systemd_cgroup)
                .with_detach(opts.detach)
                .with_no_pivot(opts.no_pivot)
        })
        .and_then(|b| b.build());

    // Back in the host's mount namespace before anything is torn down, and
    // the spec on disk names the host's paths again.
    if stay.is_some() {
        crate::locked::unview(&mut prepared, &prepared_dir, &view);
        if let Err(err) = crate::prepared::write(&globals.root, opts.id, &prepared) {
            tracing::warn!(id = %opts.id, %err, "cannot rewrite the prepared spec");
        }
    }
    drop(stay);
    let leftover_cgroups = own_cgroups.as_ref().map(|n| n.dirs()).unwrap_or_default();
    drop(own_cgroups);
    drop(netns);
    let remove_leftover = |globals: &Globals, id: &str, dir: &Path| {
        remove_leftover(globals, id, dir);
        for d in &leftover_cgroups {
            let _ = std::fs::remove_dir(d);
        }
    };
    let container = match built {
        Ok(c) => c,
        Err(err) => {
            remove_leftover(globals, opts.id, &dir);
            return Err(err.into());
        }
    };
    // libcontainer's state points at the prepared bundle, which exec reads
    // too; `state` reports the caller's bundle from warren's record.
    let meta = WarrenMeta {
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
    };
    // Fail closed: a system container the interceptor did not take runs
    // nowhere.
    if globals.settings.intercept
        && syscont
        && !crate::interceptor_client::wait_registered(&globals.settings, opts.id, &prepared_dir)
    {
        remove_leftover(globals, opts.id, &dir);
        return Err(crate::interceptor_client::InterceptorError::NotRegistered {
            id: opts.id.to_owned(),
            log: globals.settings.interceptor_log.clone(),
        }
        .into());
    }
    // Engines inside a system container make their own child cgroups.
    let delegated = match container.pid() {
        Some(pid) if syscont => crate::cgroups::delegate(pid.as_raw()).map(|_| ()),
        _ => Ok(()),
    };
    if let Err(err) = delegated
        .and_then(|()| meta.save(&dir))
        .and_then(|()| syscont::commit(globals, opts.id))
    {
        remove_leftover(globals, opts.id, &dir);
        return Err(err);
    }
    Ok(container)
}

/// Removes what a failed create left in the state root. libcontainer cleans
/// up its cgroup and directory itself; this catches the cases where it
/// failed before it knew it had anything to clean.
fn remove_leftover(globals: &Globals, id: &str, dir: &Path) {
    if dir.exists() {
        if let Ok(mut c) = Container::load(dir.to_path_buf()) {
            if let Err(err) = c.delete(true) {
                tracing::warn!(dir = %dir.display(), %err, "cleanup of failed create");
            }
        }
    }
    if let Err(err) = warren_sys::remove_tree(dir) {
        tracing::warn!(dir = %dir.display(), %err, "cannot remove state of failed create");
    }
    if let Err(err) = syscont::teardown(globals, &globals.root, id) {
        tracing::warn!(%id, %err, "cleanup of failed create");
    }
}
