//! Builds the eBPF object (`redirect-ebpf`, for bpfel-unknown-none) into OUT_DIR, where
//! `src/ebpf.rs` embeds it with `include_bytes_aligned!`.
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("../redirect-ebpf");
    let root = root
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 path {root:?}"))?;
    let skip = std::env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v == "true");
    if skip {
        // `cargo check`/clippy without the eBPF toolchain: embed an empty object; loading it fails
        // with a clear error at run time.
        let out = PathBuf::from(std::env::var("OUT_DIR")?).join("redirect-ebpf");
        if !out.exists() {
            std::fs::write(out, [])?;
        }
    }
    // The installed nightly (PLATFORM-NOTES: automatic toolchain installs are off).
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "redirect-ebpf",
            root_dir: root,
            features: &["programs"],
            ..Default::default()
        }],
        aya_build::Toolchain::Custom("nightly"),
    )
}
