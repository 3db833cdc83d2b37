//! What the interceptor knows about each registered container.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::handlers::mount::{Facts, Known};
use crate::mounts::{self, MountEntry};

#[derive(Debug, Default)]
pub struct Added {
    pub masks: Known,
    pub emulated: Known,
}

#[derive(Debug)]
pub struct Container {
    pub id: String,
    pub init_pid: i32,
    /// The container's first mount namespace (inode of /proc/PID/ns/mnt).
    pub mnt_ns: u64,
    pub masked: Vec<String>,
    pub readonly: Vec<String>,
    initial: Known,
    initial_ro: Known,
    initial_masks: Known,
    root: Known,
    pub added: Mutex<Added>,
    /// The container's user namespace, held from registration.
    userns: Option<std::os::fd::OwnedFd>,
    /// The helper acting with the container's credentials, once needed.
    helper: Mutex<Option<crate::nsexec::Helper>>,
    /// The container's cgroup v2 for the eBPF probes, when they run.
    pub tracking: Mutex<Option<crate::cgroup2::Tracking>>,
    /// Registration is complete (tracking included).
    pub ready: std::sync::atomic::AtomicBool,
}

/// The inode of a process's mount namespace.
pub fn mnt_ns_of(pid: i32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/mnt"))
        .map(|m| m.ino())
        .unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("cannot read the container's mount table")]
    Mountinfo(#[source] std::io::Error),
    #[error("cannot read the container's spec {path}")]
    Spec {
        path: std::path::PathBuf,
        #[source]
        source: Box<oci_spec::OciSpecError>,
    },
}

impl Container {
    /// Records the container's initial mounts (as its init sees them when
    /// it registers, after the runtime set them up) and the spec's masks.
    pub fn new(id: &str, pid: i32, bundle: &Path) -> Result<Container, RegisterError> {
        let (masked, readonly) = spec_paths(bundle)?;
        let table = mounts::read(pid).map_err(RegisterError::Mountinfo)?;
        let mut c = Container::from_table(id, pid, masked, readonly, &table);
        c.mnt_ns = mnt_ns_of(pid);
        c.userns = crate::sys::open_path(&format!("/proc/{pid}/ns/user"), libc::O_RDONLY).ok();
        Ok(c)
    }

    pub fn from_table(
        id: &str,
        pid: i32,
        masked: Vec<String>,
        readonly: Vec<String>,
        table: &[MountEntry],
    ) -> Container {
        let mut initial = Known::default();
        let mut initial_ro = Known::default();
        let mut initial_masks = Known::default();
        let mut root = Known::default();
        for m in table {
            if m.mount_point == "/" {
                root.insert(m.id, m.identity());
            }
            initial.insert(m.id, m.identity());
            if m.read_only {
                initial_ro.insert(m.id, m.identity());
            }
            if masked.contains(&m.mount_point) {
                initial_masks.insert(m.id, m.identity());
            }
        }
        Container {
            id: id.to_owned(),
            init_pid: pid,
            mnt_ns: 0,
            masked,
            readonly,
            initial,
            initial_ro,
            initial_masks,
            root,
            added: Mutex::new(Added::default()),
            userns: None,
            helper: Mutex::new(None),
            tracking: Mutex::new(None),
            ready: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Runs `f` with the container's helper, starting it on first use.
    pub fn with_helper<T>(
        &self,
        f: impl FnOnce(&crate::nsexec::Helper) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        use std::os::fd::AsFd;
        let mut slot = self.helper.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            let ns = self
                .userns
                .as_ref()
                .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ESRCH))?;
            *slot = Some(crate::nsexec::Helper::start(ns.as_fd())?);
        }
        let helper = slot
            .as_ref()
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EIO))?;
        let result = f(helper);
        // A helper that broke is replaced on the next call.
        if matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EPIPE) || e.raw_os_error() == Some(libc::EIO))
        {
            *slot = None;
        }
        result
    }

    pub fn facts(&self, caller_admin: bool, caller_mnt_ns: u64) -> Facts {
        let added = self.added.lock().unwrap_or_else(|p| p.into_inner());
        let mut masks = self.initial_masks.clone();
        masks.extend(&added.masks);
        // What the interceptor put on an emulated proc or sysfs (its masks
        // and read-only paths) is read-only as the runtime's own are.
        let mut initial_ro = self.initial_ro.clone();
        initial_ro.extend(&added.masks);
        Facts {
            initial: self.initial.clone(),
            initial_ro,
            masks,
            emulated: added.emulated.clone(),
            root: self.root.clone(),
            same_ns: caller_mnt_ns == self.mnt_ns,
            caller_admin,
        }
    }
}

/// The masked and read-only paths of the spec in `bundle`. A spec that
/// cannot be read is an error: a container whose masks are unknown is not
/// registered (fail closed).
fn spec_paths(bundle: &Path) -> Result<(Vec<String>, Vec<String>), RegisterError> {
    let path = bundle.join("config.json");
    let spec = oci_spec::runtime::Spec::load(&path).map_err(|e| RegisterError::Spec {
        path: path.clone(),
        source: Box::new(e),
    })?;
    // warren-runc builds a system container's masks on the host side and
    // keeps the full lists in annotations (libcontainer gets only the rest).
    let annotated = |key: &str| -> Option<Vec<String>> {
        let text = spec.annotations().as_ref()?.get(key)?;
        serde_json::from_str(text).ok()
    };
    let linux = spec.linux().clone().unwrap_or_default();
    Ok((
        annotated("io.warren.masked-paths")
            .unwrap_or_else(|| linux.masked_paths().clone().unwrap_or_default()),
        annotated("io.warren.readonly-paths")
            .unwrap_or_else(|| linux.readonly_paths().clone().unwrap_or_default()),
    ))
}

/// Registered containers by id, with how many notify fds each has.
#[derive(Default, Debug)]
pub struct Registry {
    inner: Mutex<HashMap<String, (Arc<Container>, usize)>>,
}

impl Registry {
    /// Adds an fd for the container at `key`, creating its record on the
    /// first.
    pub fn attach(
        &self,
        key: &str,
        make: impl FnOnce() -> Result<Container, RegisterError>,
    ) -> Result<(Arc<Container>, bool), RegisterError> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((c, n)) = map.get_mut(key) {
            *n += 1;
            return Ok((c.clone(), false));
        }
        let c = Arc::new(make()?);
        map.insert(key.to_owned(), (c.clone(), 1));
        Ok((c, true))
    }

    /// The record at `key`.
    pub fn get(&self, key: &str) -> Option<Arc<Container>> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).map(|(c, _)| c.clone())
    }

    /// Drops an fd; returns true when it was the container's last.
    pub fn detach(&self, key: &str) -> bool {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(key) {
            Some((_, n)) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                map.remove(key);
                true
            }
            None => false,
        }
    }

    /// Every registered container.
    pub fn containers(&self) -> Vec<Arc<Container>> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.values().map(|(c, _)| c.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_registration_whose_spec_cannot_be_read_is_refused() {
        let dir = std::env::temp_dir().join(format!("warren-nospec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let me = std::process::id() as i32;
        let err = Container::new("c", me, &dir).unwrap_err();
        assert!(matches!(err, RegisterError::Spec { .. }), "{err}");
        std::fs::write(dir.join("config.json"), "{ not json").unwrap();
        let err = Container::new("c", me, &dir).unwrap_err();
        assert!(matches!(err, RegisterError::Spec { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    use super::*;

    #[test]
    fn masks_are_the_mounts_at_masked_paths() {
        let table = mounts::parse(
            "1 0 8:1 /r / ro - ext4 /dev/vda ro\n\
             2 1 0:50 / /proc rw - proc proc rw\n\
             3 2 0:5 /null /proc/kcore rw - devtmpfs udev rw\n",
        );
        let c = Container::from_table("c", 1, vec!["/proc/kcore".into()], vec![], &table);
        let f = c.facts(true, 0);
        assert!(f.masks.ids.contains_key(&3));
        assert!(
            f.masks
                .has_identity(&("0:5".to_owned(), "/null".to_owned()))
        );
        assert!(!f.masks.ids.contains_key(&2));
        assert_eq!(f.initial.ids.len(), 3);
        assert!(f.same_ns);
    }

    #[test]
    fn the_registry_counts_fds_per_container() {
        let r = Registry::default();
        let make = || Ok(Container::from_table("c", 1, vec![], vec![], &[]));
        assert!(r.attach("c", make).unwrap().1);
        assert!(!r.attach("c", make).unwrap().1);
        assert_eq!(r.len(), 1);
        assert!(!r.detach("c"));
        assert!(r.detach("c"));
        assert!(r.is_empty());
    }
}
