//! OCI image archives built from a rootfs directory, for clients that import
//! images (`ctr image import`), since no registry is reachable.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::json;
use sha2::{Digest, Sha256};

fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    Ok((hex(&Sha256::digest(&bytes)), bytes.len() as u64))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a blob into `blobs/sha256/` and returns its descriptor fields.
fn put_blob(dir: &Path, bytes: &[u8]) -> Result<(String, u64)> {
    let digest = hex(&Sha256::digest(bytes));
    let path = dir.join("blobs/sha256").join(&digest);
    std::fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))?;
    Ok((digest, bytes.len() as u64))
}

/// Builds `<work>/image.tar`: an OCI layout with one uncompressed layer
/// holding `rootfs`, tagged `reference`, plus a docker `manifest.json` so
/// that both `ctr image import` and `docker load` accept it.
pub fn oci_archive(rootfs: &Path, reference: &str, work: &Path) -> Result<PathBuf> {
    oci_archive_with_cmd(rootfs, reference, work, &["sh"])
}

/// As [`oci_archive`], with `cmd` as the image's default command.
pub fn oci_archive_with_cmd(
    rootfs: &Path,
    reference: &str,
    work: &Path,
    cmd: &[&str],
) -> Result<PathBuf> {
    let _ = std::fs::remove_dir_all(work);
    let layout = work.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256"))?;
    let layer = work.join("layer.tar");
    let status = Command::new("tar")
        .args(["--numeric-owner", "--exclude=./.complete", "-C"])
        .arg(rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg(".")
        .status()
        .context("run tar")?;
    if !status.success() {
        bail!("tar of {} failed", rootfs.display());
    }
    let (layer_digest, layer_size) = sha256_file(&layer)?;
    std::fs::rename(&layer, layout.join("blobs/sha256").join(&layer_digest))?;

    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": cmd },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{layer_digest}")] },
        "history": [{ "created_by": "warren test fixture" }],
    });
    let (config_digest, config_size) = put_blob(&layout, config.to_string().as_bytes())?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{config_digest}"),
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{layer_digest}"),
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = put_blob(&layout, manifest.to_string().as_bytes())?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest_size,
            "annotations": {
                "io.containerd.image.name": reference,
                "org.opencontainers.image.ref.name": reference.rsplit(':').next().unwrap_or("latest"),
            },
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string())?;
    std::fs::write(
        layout.join("oci-layout"),
        json!({"imageLayoutVersion": "1.0.0"}).to_string(),
    )?;
    let docker_manifest = json!([{
        "Config": format!("blobs/sha256/{config_digest}"),
        "RepoTags": [reference],
        "Layers": [format!("blobs/sha256/{layer_digest}")],
    }]);
    std::fs::write(layout.join("manifest.json"), docker_manifest.to_string())?;

    let archive = work.join("image.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .context("run tar")?;
    if !status.success() {
        bail!("tar of the image layout failed");
    }
    Ok(archive)
}
