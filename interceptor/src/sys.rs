//! The syscall wrappers the interceptor acts with live in `warren-sys`,
//! shared with warren-runc.

pub use warren_sys::*;
