//! warren-runc: a runc-compatible OCI runtime for system containers, built on
//! youki's libcontainer.

pub mod bundle;
pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod container;
pub mod error;
pub mod exec_listener;
pub mod executor;
pub mod features;
pub mod idmap;
pub mod interceptor_client;
pub mod join;
pub mod locked;
pub mod logging;
pub mod prepared;
pub mod settings;
pub mod signal;
pub mod spec;
pub mod subid;
pub mod syscont;
