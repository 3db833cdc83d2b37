//! The allocator: a table of live ranges in `<state-dir>/ids.json`, changed
//! only under an exclusive lock on `<state-dir>/ids.lock`.
//!
//! An entry is written before the container exists, with the creating
//! process as its creator, and committed once the create has finished. An
//! entry is stale when its creator died before committing (a crash or a
//! kill -9 in the middle of create), or, once committed, when the
//! container's state is gone. Stale entries are reaped, leftovers first, by
//! the next allocation.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::{SubidError, ensure_entry};
use crate::settings::Settings;

/// One contiguous run of host IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRange {
    pub host: u32,
    pub size: u32,
}

impl HostRange {
    fn overlaps(&self, other: &HostRange) -> bool {
        let (a0, a1) = (
            u64::from(self.host),
            u64::from(self.host) + u64::from(self.size),
        );
        let (b0, b1) = (
            u64::from(other.host),
            u64::from(other.host) + u64::from(other.size),
        );
        a0 < b1 && b0 < a1
    }
}

/// The process creating a container, identified so that pid reuse is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Creator {
    pub pid: i32,
    pub start_time: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub root: PathBuf,
    pub id: String,
    pub uids: Vec<HostRange>,
    pub gids: Vec<HostRange>,
    /// Set while the create is in progress.
    pub creator: Option<Creator>,
}

/// What the container asks for.
#[derive(Debug, Clone)]
pub enum Request {
    /// An exclusive range from the pool.
    Allocate,
    /// The spec's own mappings, recorded so that no later allocation
    /// overlaps them.
    Given {
        uids: Vec<HostRange>,
        gids: Vec<HostRange>,
    },
}

/// An allocated range: container ID 0 maps to these host bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub uid_base: u32,
    pub gid_base: u32,
    pub size: u32,
}

/// A stale entry, handed to the caller to clean up.
pub type Stale = Allocation;

pub struct Allocator {
    settings: Settings,
}

#[derive(Default, Serialize, Deserialize)]
struct Table {
    entries: Vec<Allocation>,
}

impl Allocator {
    pub fn new(settings: &Settings) -> Allocator {
        Allocator {
            settings: settings.clone(),
        }
    }

    fn table_path(&self) -> PathBuf {
        self.settings.state_dir.join("ids.json")
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SubidError + '_ {
        move |source| SubidError::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn lock(&self) -> Result<Flock<File>, SubidError> {
        let dir = &self.settings.state_dir;
        std::fs::create_dir_all(dir).map_err(Self::io(dir))?;
        let path = dir.join("ids.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Self::io(&path))?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| SubidError::Io {
            path,
            source: e.into(),
        })
    }

    fn load(&self) -> Result<Table, SubidError> {
        let path = self.table_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| SubidError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Table::default()),
            Err(e) => Err(Self::io(&path)(e)),
        }
    }

    fn save(&self, table: &Table) -> Result<(), SubidError> {
        let path = self.table_path();
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(table).map_err(|source| SubidError::Corrupt {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, bytes).map_err(Self::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(Self::io(&path))
    }

    /// Every entry, for inspection.
    pub fn entries(&self) -> Result<Vec<Allocation>, SubidError> {
        let _lock = self.lock()?;
        Ok(self.load()?.entries)
    }

    /// Reserves IDs for container `id` under `root`.
    ///
    /// `is_live` says whether an entry still belongs to a container; `reap`
    /// cleans up what a stale entry's container left, and only entries it
    /// cleaned are dropped.
    pub fn reserve(
        &self,
        root: &Path,
        id: &str,
        request: &Request,
        creator: Creator,
        is_live: impl Fn(&Allocation) -> bool,
        mut reap: impl FnMut(&Allocation) -> bool,
    ) -> Result<Option<Lease>, SubidError> {
        let _lock = self.lock()?;
        let mut table = self.load()?;
        table.entries.retain(|a| {
            let same = a.root == root && a.id == id;
            // An entry for this very container is a leftover of a crashed
            // create of the same id.
            if same || !is_live(a) { !reap(a) } else { true }
        });
        let (uids, gids, lease) = match request {
            Request::Given { uids, gids } => {
                check_free(&table, "uid", uids, |a| &a.uids)?;
                check_free(&table, "gid", gids, |a| &a.gids)?;
                (uids.clone(), gids.clone(), None)
            }
            Request::Allocate => {
                let lease = self.find_slot(&table)?;
                let u = HostRange {
                    host: lease.uid_base,
                    size: lease.size,
                };
                let g = HostRange {
                    host: lease.gid_base,
                    size: lease.size,
                };
                (vec![u], vec![g], Some(lease))
            }
        };
        table.entries.push(Allocation {
            root: root.to_owned(),
            id: id.to_owned(),
            uids,
            gids,
            creator: Some(creator),
        });
        self.save(&table)?;
        Ok(lease)
    }

    fn find_slot(&self, table: &Table) -> Result<Lease, SubidError> {
        let s = &self.settings;
        let su = ensure_entry(&s.subuid_file, &s.subid_user, s.subid_pool_size)?;
        let sg = ensure_entry(&s.subgid_file, &s.subid_user, s.subid_pool_size)?;
        let size = s.ids_per_container;
        let slots = su.count.min(sg.count) / size;
        for k in 0..slots {
            let u = HostRange {
                host: su.start + k * size,
                size,
            };
            let g = HostRange {
                host: sg.start + k * size,
                size,
            };
            let taken = table.entries.iter().any(|a| {
                a.uids.iter().any(|r| r.overlaps(&u)) || a.gids.iter().any(|r| r.overlaps(&g))
            });
            if !taken {
                return Ok(Lease {
                    uid_base: u.host,
                    gid_base: g.host,
                    size,
                });
            }
        }
        Err(SubidError::Exhausted {
            user: s.subid_user.clone(),
            uid_start: su.start,
            count: su.count,
            size,
        })
    }

    /// Marks the create of `id` as finished.
    pub fn commit(&self, root: &Path, id: &str) -> Result<(), SubidError> {
        let _lock = self.lock()?;
        let mut table = self.load()?;
        for a in table
            .entries
            .iter_mut()
            .filter(|a| a.root == root && a.id == id)
        {
            a.creator = None;
        }
        self.save(&table)
    }

    /// Frees the IDs of `id`.
    pub fn release(&self, root: &Path, id: &str) -> Result<(), SubidError> {
        let _lock = self.lock()?;
        let mut table = self.load()?;
        let before = table.entries.len();
        table.entries.retain(|a| !(a.root == root && a.id == id));
        if table.entries.len() != before {
            self.save(&table)?;
        }
        Ok(())
    }
}

fn check_free(
    table: &Table,
    kind: &'static str,
    wanted: &[HostRange],
    ranges: impl Fn(&Allocation) -> &Vec<HostRange>,
) -> Result<(), SubidError> {
    for w in wanted {
        if let Some(other) = table
            .entries
            .iter()
            .find(|a| ranges(a).iter().any(|r| r.overlaps(w)))
        {
            return Err(SubidError::Overlap {
                kind,
                host_start: w.host,
                size: w.size,
                other: other.id.clone(),
            });
        }
    }
    Ok(())
}

/// The start time of a process, in clock ticks since boot (field 22 of
/// /proc/PID/stat), or None when it does not exist.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    // Fields after comm start at field 3 (state); starttime is field 22.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

impl Creator {
    pub fn this_process() -> Creator {
        let pid = std::process::id() as i32;
        Creator {
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
        }
    }

    /// Whether the creating process is still the same, living process.
    pub fn is_alive(&self) -> bool {
        process_start_time(self.pid) == Some(self.start_time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path, pool: u32) -> Settings {
        std::fs::write(
            dir.join("subuid"),
            format!("other:100000:65536\nwarren:200000:{pool}\n"),
        )
        .unwrap();
        std::fs::write(dir.join("subgid"), format!("warren:300000:{pool}\n")).unwrap();
        Settings {
            state_dir: dir.join("state"),
            subuid_file: dir.join("subuid"),
            subgid_file: dir.join("subgid"),
            ids_per_container: 1000,
            ..Settings::default()
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("warren-alloc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const ME: Creator = Creator {
        pid: 1,
        start_time: 0,
    };

    #[test]
    fn ranges_are_disjoint_and_freed() {
        let d = tmp("disjoint");
        let a = Allocator::new(&settings(&d, 3000));
        let root = Path::new("/r");
        let l1 = a
            .reserve(root, "a", &Request::Allocate, ME, |_| true, |_| true)
            .unwrap()
            .unwrap();
        let l2 = a
            .reserve(root, "b", &Request::Allocate, ME, |_| true, |_| true)
            .unwrap()
            .unwrap();
        assert_eq!((l1.uid_base, l1.gid_base), (200000, 300000));
        assert_eq!((l2.uid_base, l2.gid_base), (201000, 301000));
        a.release(root, "a").unwrap();
        let l3 = a
            .reserve(root, "c", &Request::Allocate, ME, |_| true, |_| true)
            .unwrap()
            .unwrap();
        assert_eq!(l3.uid_base, 200000, "the freed slot is reused");
        a.release(root, "b").unwrap();
        a.release(root, "c").unwrap();
        assert!(a.entries().unwrap().is_empty());
    }

    #[test]
    fn exhaustion_is_an_error_naming_the_pool() {
        let d = tmp("full");
        let a = Allocator::new(&settings(&d, 1000));
        let root = Path::new("/r");
        a.reserve(root, "a", &Request::Allocate, ME, |_| true, |_| true)
            .unwrap();
        let err = a
            .reserve(root, "b", &Request::Allocate, ME, |_| true, |_| true)
            .unwrap_err();
        assert!(err.to_string().contains("no free id range"), "{err}");
    }

    #[test]
    fn stale_entries_are_reaped_before_allocating() {
        let d = tmp("stale");
        let a = Allocator::new(&settings(&d, 1000));
        let root = Path::new("/r");
        a.reserve(root, "dead", &Request::Allocate, ME, |_| true, |_| true)
            .unwrap();
        let mut reaped = Vec::new();
        let l = a
            .reserve(
                root,
                "new",
                &Request::Allocate,
                ME,
                |e| e.id != "dead",
                |e| {
                    reaped.push(e.id.clone());
                    true
                },
            )
            .unwrap()
            .unwrap();
        assert_eq!(reaped, vec!["dead".to_owned()]);
        assert_eq!(l.uid_base, 200000);
    }

    #[test]
    fn an_entry_that_cannot_be_reaped_keeps_its_range() {
        let d = tmp("keep");
        let a = Allocator::new(&settings(&d, 1000));
        let root = Path::new("/r");
        a.reserve(root, "dead", &Request::Allocate, ME, |_| true, |_| true)
            .unwrap();
        let err = a
            .reserve(root, "new", &Request::Allocate, ME, |_| false, |_| false)
            .unwrap_err();
        assert!(matches!(err, SubidError::Exhausted { .. }));
    }

    #[test]
    fn given_mappings_must_not_overlap_live_ranges() {
        let d = tmp("given");
        let a = Allocator::new(&settings(&d, 3000));
        let root = Path::new("/r");
        a.reserve(root, "a", &Request::Allocate, ME, |_| true, |_| true)
            .unwrap();
        let clash = Request::Given {
            uids: vec![HostRange {
                host: 200500,
                size: 10,
            }],
            gids: vec![HostRange {
                host: 900000,
                size: 10,
            }],
        };
        let err = a
            .reserve(root, "b", &clash, ME, |_| true, |_| true)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "uid mapping 200500+10 overlaps the range of live container \"a\""
        );
        let fine = Request::Given {
            uids: vec![HostRange {
                host: 900000,
                size: 10,
            }],
            gids: vec![HostRange {
                host: 900000,
                size: 10,
            }],
        };
        assert_eq!(
            a.reserve(root, "b", &fine, ME, |_| true, |_| true).unwrap(),
            None
        );
        // The given range is now taken too.
        let err = a
            .reserve(root, "c", &fine, ME, |_| true, |_| true)
            .unwrap_err();
        assert!(err.to_string().contains("\"b\""), "{err}");
    }

    #[test]
    fn a_missing_entry_is_added_to_the_files() {
        let d = tmp("add");
        std::fs::write(d.join("subuid"), "alice:100000:65536\n").unwrap();
        let s = Settings {
            state_dir: d.join("state"),
            subuid_file: d.join("subuid"),
            subgid_file: d.join("subgid"),
            ..Settings::default()
        };
        let a = Allocator::new(&s);
        let l = a
            .reserve(
                Path::new("/r"),
                "x",
                &Request::Allocate,
                ME,
                |_| true,
                |_| true,
            )
            .unwrap()
            .unwrap();
        assert_eq!(l.uid_base, 196608);
        let text = std::fs::read_to_string(d.join("subuid")).unwrap();
        assert_eq!(
            text,
            format!("alice:100000:65536\nwarren:196608:{}\n", s.subid_pool_size)
        );
        assert!(
            std::fs::read_to_string(d.join("subgid"))
                .unwrap()
                .starts_with("warren:131072:")
        );
    }

    #[test]
    fn creators_are_told_apart_from_reused_pids() {
        let me = Creator::this_process();
        assert!(me.is_alive());
        let impostor = Creator {
            pid: me.pid,
            start_time: me.start_time + 1,
        };
        assert!(!impostor.is_alive());
    }
}
