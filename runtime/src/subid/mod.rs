//! Exclusive ID ranges for containers, carved from the subordinate ranges
//! of one user (`warren` by default) in /etc/subuid and /etc/subgid.

mod alloc;
mod files;

pub use alloc::{
    Allocation, Allocator, Creator, HostRange, Lease, Request, Stale, process_start_time,
};
pub use files::{SubidEntry, ensure_entry, parse};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SubidError {
    #[error("cannot access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: {reason}")]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: no room for a range of {size} ids for user {user}")]
    NoRoomForEntry {
        path: PathBuf,
        user: String,
        size: u32,
    },
    #[error(
        "no free id range of {size}: all of {user}'s subordinate ids ({uid_start}+{count}) are taken by live containers"
    )]
    Exhausted {
        user: String,
        uid_start: u32,
        count: u32,
        size: u32,
    },
    #[error("{kind} mapping {host_start}+{size} overlaps the range of live container {other:?}")]
    Overlap {
        kind: &'static str,
        host_start: u32,
        size: u32,
        other: String,
    },
    #[error("allocator state {path} is corrupt")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}
