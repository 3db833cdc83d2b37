//! warren-interceptor: receives each system container's seccomp notify fd
//! and emulates the privileged calls the kernel refuses in a user
//! namespace, without letting the container undo the runtime's protections.

pub mod act;
pub mod cgroup2;
pub mod container;
pub mod ebpf;
pub mod handlers;
pub mod handshake;
pub mod memory;
pub mod metrics;
pub mod mknod;
pub mod mounts;
pub mod notify;
pub mod nsexec;
pub mod server;
pub mod supervise;
pub mod sys;
