//! Reading a trapped caller's memory: bounded copies with process_vm_readv,
//! made before any decision, so the decision never rereads what the caller
//! could change.

use std::io::IoSliceMut;

use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;

/// Longest path accepted (PATH_MAX, NUL included).
pub const PATH_MAX: usize = 4096;
/// Longest mount data accepted: one page.
pub const DATA_MAX: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("bad address")]
    Fault,
    #[error("string longer than {0} bytes")]
    TooLong(usize),
    #[error("string is not UTF-8")]
    NotUtf8,
}

impl ReadError {
    /// The errno the kernel would give the caller for this.
    pub fn errno(&self) -> i32 {
        match self {
            ReadError::Fault => libc::EFAULT,
            ReadError::TooLong(_) => libc::ENAMETOOLONG,
            ReadError::NotUtf8 => libc::EINVAL,
        }
    }
}

/// Copies a NUL-terminated string of at most `max` bytes (NUL included)
/// from `addr` in process `pid`. A read that stops at an unmapped page
/// keeps what it got; no NUL in what could be read is an error.
pub fn read_cstring(pid: i32, addr: u64, max: usize) -> Result<String, ReadError> {
    if addr == 0 {
        return Err(ReadError::Fault);
    }
    let mut buf = vec![0u8; max];
    let mut got = 0usize;
    // Read page by page so that a string ending just before an unmapped
    // page is still read whole.
    while got < max {
        let start = addr + got as u64;
        let to_page_end = 4096 - (start % 4096) as usize;
        let len = to_page_end.min(max - got);
        let remote = [RemoteIoVec {
            base: start as usize,
            len,
        }];
        let mut local = [IoSliceMut::new(&mut buf[got..got + len])];
        match process_vm_readv(Pid::from_raw(pid), &mut local, &remote) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let chunk = &buf[got..got + n];
                if let Some(nul) = chunk.iter().position(|b| *b == 0) {
                    buf.truncate(got + nul);
                    return String::from_utf8(buf).map_err(|_| ReadError::NotUtf8);
                }
                got += n;
            }
        }
    }
    if got == 0 {
        Err(ReadError::Fault)
    } else if got >= max {
        Err(ReadError::TooLong(max))
    } else {
        Err(ReadError::Fault)
    }
}

/// Like [`read_cstring`], with a NULL pointer read as None.
pub fn read_optional(pid: i32, addr: u64, max: usize) -> Result<Option<String>, ReadError> {
    if addr == 0 {
        Ok(None)
    } else {
        read_cstring(pid, addr, max).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_strings_and_refuses_bad_ones() {
        let me = std::process::id() as i32;
        let s = std::ffi::CString::new("/proc").unwrap();
        assert_eq!(
            read_cstring(me, s.as_ptr() as u64, PATH_MAX),
            Ok("/proc".to_owned())
        );
        assert_eq!(read_cstring(me, 0, PATH_MAX), Err(ReadError::Fault));
        assert_eq!(read_cstring(me, 8, PATH_MAX), Err(ReadError::Fault));
        let long = std::ffi::CString::new("a".repeat(5000)).unwrap();
        assert_eq!(
            read_cstring(me, long.as_ptr() as u64, PATH_MAX),
            Err(ReadError::TooLong(PATH_MAX))
        );
        assert_eq!(read_optional(me, 0, 10), Ok(None));
    }
}
