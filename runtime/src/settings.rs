//! The node's settings: `/etc/warren/config.toml`, every key optional.
//!
//! `--config PATH` or `WARREN_CONFIG` name another file; a file named that
//! way must exist. Annotations on a container override some keys for it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_CONFIG: &str = "/etc/warren/config.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RootfsFallback {
    /// A rootfs that cannot be ID-mapped is an error.
    #[default]
    None,
    /// Copy the rootfs with its owners shifted into the container's range.
    Chown,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Settings {
    /// Where warren keeps the ID allocator and other node state.
    pub state_dir: PathBuf,
    /// The user whose subordinate ranges warren allocates from.
    pub subid_user: String,
    pub subuid_file: PathBuf,
    pub subgid_file: PathBuf,
    /// The size of each container's exclusive ID range.
    pub ids_per_container: u32,
    /// The size of the subordinate range warren adds for `subid-user` when
    /// the files have none.
    pub subid_pool_size: u32,
    /// What to do with a rootfs whose filesystem cannot be ID-mapped.
    pub rootfs_fallback: RootfsFallback,
    /// Whether system containers send mount and umount to the interceptor.
    pub intercept: bool,
    /// The interceptor's listenerPath socket.
    pub interceptor_socket: PathBuf,
    /// Where an interceptor that warren-runc starts logs.
    pub interceptor_log: PathBuf,
    /// Where that interceptor serves metrics ("off": nowhere).
    pub interceptor_metrics: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            state_dir: PathBuf::from("/var/lib/warren"),
            subid_user: "warren".to_owned(),
            subuid_file: PathBuf::from("/etc/subuid"),
            subgid_file: PathBuf::from("/etc/subgid"),
            ids_per_container: 65536,
            subid_pool_size: 65536 * 4096,
            rootfs_fallback: RootfsFallback::None,
            intercept: true,
            interceptor_socket: PathBuf::from("/run/warren/interceptor.sock"),
            interceptor_log: PathBuf::from("/var/log/warren/interceptor.log"),
            interceptor_metrics: "127.0.0.1:9464".to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("settings {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("settings {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl Settings {
    pub fn parse(path: &Path, text: &str) -> Result<Settings, SettingsError> {
        let settings: Settings = toml::from_str(text).map_err(|source| SettingsError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |reason: &str| SettingsError::Invalid {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if settings.ids_per_container == 0 {
            return Err(invalid("ids-per-container must be at least 1"));
        }
        if settings.subid_pool_size < settings.ids_per_container {
            return Err(invalid("subid-pool-size must hold at least one container"));
        }
        if settings.subid_user.is_empty() || settings.subid_user.contains(':') {
            return Err(invalid("subid-user must be a user name"));
        }
        Ok(settings)
    }

    /// Loads the settings: `explicit` (from `--config` or `WARREN_CONFIG`)
    /// must exist; the default file may be absent.
    pub fn load(explicit: Option<&Path>) -> Result<Settings, SettingsError> {
        let (path, required) = match explicit {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Settings::parse(&path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Settings::default())
            }
            Err(source) => Err(SettingsError::Read { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(
            Settings::parse(Path::new("c.toml"), "").unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn keys_are_kebab_case() {
        let s = Settings::parse(
            Path::new("c.toml"),
            "state-dir = \"/x\"\nids-per-container = 1000\nsubid-pool-size = 100000\nrootfs-fallback = \"chown\"\n",
        )
        .unwrap();
        assert_eq!(s.state_dir, PathBuf::from("/x"));
        assert_eq!(s.ids_per_container, 1000);
        assert_eq!(s.rootfs_fallback, RootfsFallback::Chown);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(Settings::parse(Path::new("c.toml"), "nope = 1\n").is_err());
        assert!(Settings::parse(Path::new("c.toml"), "ids-per-container = 0\n").is_err());
        assert!(Settings::parse(Path::new("c.toml"), "rootfs-fallback = \"copy\"\n").is_err());
        let err = Settings::parse(Path::new("c.toml"), "ids-per-container = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("c.toml"));
    }

    #[test]
    fn a_named_file_must_exist() {
        assert!(Settings::load(Some(Path::new("/nonexistent/warren.toml"))).is_err());
    }
}
