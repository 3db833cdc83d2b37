//! Embeds the eBPF probes when `cargo xtask build-ebpf` has built them; an
//! empty object otherwise, which the interceptor reports as "not built".
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = std::env::var_os("WARREN_EBPF_OBJECT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/ebpf/bpfel-unknown-none/release/warren-probes")
        });
    println!("cargo:rerun-if-env-changed=WARREN_EBPF_OBJECT");
    println!("cargo:rerun-if-changed={}", object.display());
    let bytes = std::fs::read(&object).unwrap_or_default();
    if bytes.is_empty() {
        println!(
            "cargo:warning=eBPF probes not found at {}; run `cargo xtask build-ebpf` to embed them",
            object.display()
        );
    }
    std::fs::write(out.join("warren-probes.o"), bytes).expect("write OUT_DIR object");
}
