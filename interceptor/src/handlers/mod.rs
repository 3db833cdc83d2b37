//! One module per syscall family. Each decides through a pure function.

pub mod mount;
