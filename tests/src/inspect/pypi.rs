//! `https://pypi.example/simple/`: a PEP 503 simple repository holding one tiny wheel, so
//! `pip download` can be run through TLS inspection the way CI installs packages.
//!
//! The wheel is built when the origins start, by hand rather than by a build backend (no
//! network, no setuptools needed): a zip with the package, `METADATA`, `WHEEL` and a `RECORD`
//! of hashes, written by python's `zipfile`. The project page links it with its `sha256`, which
//! pip checks.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use http::{HeaderValue, Response, header};

use super::routes::{full, text};
use super::server::Body;

/// The one project the index serves.
pub const PYPI_PACKAGE: &str = "tinypkg";
/// Its one version.
pub const PYPI_VERSION: &str = "0.1.0";

/// Writes the wheel named by argv[1] for project argv[2], version argv[3]; prints its sha256.
const BUILD_WHEEL_PY: &str = r#"
import base64, hashlib, sys, zipfile
out, name, version = sys.argv[1], sys.argv[2], sys.argv[3]
dist = f"{name}-{version}.dist-info"
files = {
    f"{name}/__init__.py": f'"""Served by the Warden test index."""\nVERSION = "{version}"\n',
    f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    "Summary: A package served by the Warden test index\n",
    f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: warden-tests\nRoot-Is-Purelib: true\n"
    "Tag: py3-none-any\n",
}
record = []
for path, text in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
    record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
record.append(f"{dist}/RECORD,,")
files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for path, text in files.items():
        z.writestr(zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0)), text)
with open(out, "rb") as f:
    print(hashlib.sha256(f.read()).hexdigest())
"#;

/// The index and the wheel it serves.
#[derive(Debug)]
pub struct PypiIndex {
    wheel: PathBuf,
    sha256: String,
}

impl PypiIndex {
    /// Builds the wheel into `dir`.
    pub(super) fn create(dir: &Path) -> anyhow::Result<PypiIndex> {
        let wheel = dir.join(format!("{PYPI_PACKAGE}-{PYPI_VERSION}-py3-none-any.whl"));
        let out = std::process::Command::new("python3")
            .args(["-c", BUILD_WHEEL_PY])
            .arg(&wheel)
            .args([PYPI_PACKAGE, PYPI_VERSION])
            .output()
            .context("cannot run python3")?;
        if !out.status.success() {
            bail!(
                "building the test wheel failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let sha256 = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Ok(PypiIndex { wheel, sha256 })
    }

    /// The wheel's file name, as `pip download` saves it.
    pub fn wheel_name(&self) -> String {
        self.wheel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The wheel's SHA-256, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The wheel's bytes as served.
    pub fn wheel_bytes(&self) -> std::io::Result<Vec<u8>> {
        std::fs::read(&self.wheel)
    }

    pub(super) fn serves(&self, path: &str) -> bool {
        path.starts_with("/simple") || path.starts_with("/packages/")
    }

    /// Answers `/simple/`, `/simple/tinypkg/` and `/packages/<wheel>` (PEP 503).
    pub(super) fn serve(&self, path: &str) -> Response<Body> {
        let project = format!("/simple/{PYPI_PACKAGE}/");
        let file = format!("/packages/{}", self.wheel_name());
        let mut response = if path == "/simple/" {
            html(format!("<a href=\"{PYPI_PACKAGE}/\">{PYPI_PACKAGE}</a>"))
        } else if path == project {
            html(format!(
                "<a href=\"../../packages/{name}#sha256={sha}\">{name}</a>",
                name = self.wheel_name(),
                sha = self.sha256
            ))
        } else if path == file {
            match self.wheel_bytes() {
                Ok(bytes) => {
                    let mut response = Response::new(full(bytes));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    );
                    response
                }
                Err(e) => text(500, format!("cannot read the wheel: {e}\n")),
            }
        } else {
            text(404, format!("no {path} in this index\n"))
        };
        // pip keeps an HTTP cache; a test must see each of its requests reach the network.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

fn html(links: String) -> Response<Body> {
    let page = format!(
        "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\">\
         <title>Warden test index</title></head>\n<body>\n{links}\n</body></html>\n"
    );
    let mut response = Response::new(full(page));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}
