//! `https://git.example/repo.git`: a real git repository over smart HTTP, the way hosted git is
//! reached from CI, so `git clone` can be run through TLS inspection.
//!
//! The repository is a bare one with two commits, made with the real `git` in a temporary
//! directory when the origins start. Requests under `/repo.git/` are handed to `git
//! http-backend` as a CGI program (RFC 3875): one process per request, the request described
//! in its environment, the body piped to its stdin, and its output parsed as CGI headers (a
//! `Status:` line and ordinary headers) followed by the body, which is streamed to the client.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use hyper::body::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, Command};

use super::server::{Body, BoxError, Conn, Counted};

/// The repository's name on the server: its URL is `https://git.example/repo.git`.
pub const GIT_REPO: &str = "repo.git";
/// The branch the repository's HEAD names.
pub const GIT_BRANCH: &str = "main";
/// The file the second commit adds, and its content.
pub const GIT_FILE: (&str, &str) = ("second.txt", "the second commit\n");

/// Largest CGI header block read.
const MAX_CGI_HEAD: usize = 64 * 1024;

/// The bare repository `git http-backend` serves.
#[derive(Debug)]
pub struct GitRepo {
    root: PathBuf,
    commits: Vec<String>,
}

impl GitRepo {
    /// Creates `repo.git` under `root` (the CGI's `GIT_PROJECT_ROOT`), with two commits on `main`,
    /// using `work` as the scratch working tree.
    pub(super) fn create(root: &Path, work: &Path) -> anyhow::Result<GitRepo> {
        git(
            None,
            &["init", "-q", "-b", GIT_BRANCH, &work.to_string_lossy()],
        )?;
        std::fs::write(work.join("README.md"), "served by git.example\n")?;
        git(Some(work), &["add", "README.md"])?;
        git(Some(work), &["commit", "-q", "-m", "first commit"])?;
        std::fs::write(work.join(GIT_FILE.0), GIT_FILE.1)?;
        git(Some(work), &["add", GIT_FILE.0])?;
        git(Some(work), &["commit", "-q", "-m", "second commit"])?;
        let bare = root.join(GIT_REPO);
        git(
            None,
            &[
                "clone",
                "-q",
                "--bare",
                &work.to_string_lossy(),
                &bare.to_string_lossy(),
            ],
        )?;
        // Pushes over HTTP are refused unless enabled (there is no authenticated REMOTE_USER).
        git(Some(&bare), &["config", "http.receivepack", "true"])?;
        let log = git(Some(&bare), &["log", "--format=%H", GIT_BRANCH])?;
        Ok(GitRepo {
            root: root.to_owned(),
            commits: log.lines().map(str::to_owned).collect(),
        })
    }

    /// The commit ids on `main` as created (a push adds more), newest first: two of them.
    pub fn commits(&self) -> &[String] {
        &self.commits
    }

    /// The newest commit on `main`, which a clone checks out.
    pub fn head(&self) -> &str {
        &self.commits[0]
    }

    /// The bare repository's directory, e.g. to check what a push left in it.
    pub fn path(&self) -> PathBuf {
        self.root.join(GIT_REPO)
    }

    pub(super) fn serves(&self, path: &str) -> bool {
        path.strip_prefix('/')
            .and_then(|p| p.strip_prefix(GIT_REPO))
            .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// Runs git with no system or global configuration and a fixed identity and date, so the
/// repository is the same whatever the machine's configuration.
fn git(dir: Option<&Path>, args: &[&str]) -> anyhow::Result<String> {
    let mut cmd = std::process::Command::new("git");
    if let Some(dir) = dir {
        cmd.arg("-C").arg(dir);
    }
    cmd.args(args);
    isolate(&mut cmd);
    for (var, value) in [
        ("GIT_AUTHOR_NAME", "Warden Tests"),
        ("GIT_AUTHOR_EMAIL", "tests@warden.example"),
        ("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z"),
        ("GIT_COMMITTER_NAME", "Warden Tests"),
        ("GIT_COMMITTER_EMAIL", "tests@warden.example"),
        ("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z"),
    ] {
        cmd.env(var, value);
    }
    let out = cmd.output().context("cannot run git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Keeps the machine's git configuration out of a harness git process.
fn isolate(cmd: &mut std::process::Command) {
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
}

/// Serves one request with `git http-backend`.
pub(super) async fn cgi(
    req: Request<Counted>,
    conn: &Conn,
    repo: &GitRepo,
) -> Result<Response<Body>, BoxError> {
    let mut cmd = std::process::Command::new("git");
    cmd.arg("http-backend").env_clear();
    isolate(&mut cmd);
    cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(cgi_env(&req, conn, &repo.root))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Command::from(cmd).kill_on_drop(true).spawn()?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    // The body is fed while the output is read, so neither side can fill a pipe and stall.
    let feeding = tokio::spawn(feed(req.into_body(), stdin));
    let (head, rest) = read_cgi_head(&mut stdout).await?;
    let mut response = parse_cgi_head(&head)?;
    let (mut tx, body) = Channel::<Bytes, BoxError>::new(4);
    let (origin, peer) = (conn.origin.clone(), conn.peer);
    tokio::spawn(async move {
        let streamed = async {
            if !rest.is_empty() {
                tx.send_data(Bytes::from(rest)).await?;
            }
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = stdout.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, BoxError>(());
                }
                tx.send_data(Bytes::copy_from_slice(&buf[..n])).await?;
            }
        };
        let mut errors = String::new();
        if let Err(e) = streamed.await {
            errors.push_str(&format!("streaming its output: {e}; "));
        }
        match feeding.await {
            Ok(Err(e)) => errors.push_str(&format!("feeding its input: {e}; ")),
            Err(e) => errors.push_str(&format!("feeding its input: {e}; ")),
            Ok(Ok(())) => {}
        }
        let mut messages = String::new();
        let _ = stderr.read_to_string(&mut messages).await;
        match child.wait().await {
            Ok(status) if status.success() && errors.is_empty() => {}
            status => origin.record_error(
                peer,
                format!("git http-backend: {status:?}: {errors}{}", messages.trim()),
            ),
        }
    });
    *response.body_mut() = body.boxed();
    Ok(response)
}

/// The CGI meta-variables (RFC 3875 §4.1) for `req`, and `HTTP_*` for each header (git reads
/// `HTTP_GIT_PROTOCOL` for protocol v2 and `HTTP_CONTENT_ENCODING` for gzipped requests).
fn cgi_env(req: &Request<Counted>, conn: &Conn, root: &Path) -> Vec<(String, String)> {
    let header = |name: http::header::HeaderName| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let mut env = vec![
        (
            "GIT_PROJECT_ROOT".into(),
            root.to_string_lossy().into_owned(),
        ),
        ("GIT_HTTP_EXPORT_ALL".into(), "1".into()),
        ("GATEWAY_INTERFACE".into(), "CGI/1.1".into()),
        ("SERVER_PROTOCOL".into(), format!("{:?}", req.version())),
        ("SERVER_NAME".into(), conn.origin.name().into()),
        ("REQUEST_METHOD".into(), req.method().to_string()),
        ("PATH_INFO".into(), req.uri().path().into()),
        (
            "QUERY_STRING".into(),
            req.uri().query().unwrap_or("").into(),
        ),
        ("REMOTE_ADDR".into(), conn.peer.ip().to_string()),
    ];
    if let Some(v) = header(http::header::CONTENT_TYPE) {
        env.push(("CONTENT_TYPE".into(), v));
    }
    if let Some(v) = header(http::header::CONTENT_LENGTH) {
        env.push(("CONTENT_LENGTH".into(), v));
    }
    for (name, value) in req.headers() {
        let var = format!(
            "HTTP_{}",
            name.as_str().to_ascii_uppercase().replace('-', "_")
        );
        env.push((var, String::from_utf8_lossy(value.as_bytes()).into_owned()));
    }
    env
}

/// Copies the request body into the CGI's stdin, then closes it.
async fn feed(mut body: Counted, mut stdin: ChildStdin) -> Result<(), BoxError> {
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            stdin.write_all(&data).await?;
        }
    }
    stdin.shutdown().await?;
    Ok(())
}

/// Reads the CGI's output up to the blank line ending its headers; returns the headers and
/// whatever body bytes came with them.
async fn read_cgi_head<R: AsyncRead + Unpin>(out: &mut R) -> Result<(String, Vec<u8>), BoxError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let end = [&b"\r\n\r\n"[..], b"\n\n"]
            .iter()
            .filter_map(|sep| Some((buf.windows(sep.len()).position(|w| w == *sep)?, sep.len())))
            .min();
        if let Some((at, len)) = end {
            let rest = buf.split_off(at + len);
            return Ok((String::from_utf8_lossy(&buf[..at]).into_owned(), rest));
        }
        if buf.len() > MAX_CGI_HEAD {
            return Err("git http-backend wrote more than 64 KiB of headers".into());
        }
        let n = out.read(&mut chunk).await?;
        if n == 0 {
            return Err(format!(
                "git http-backend ended inside its headers: {:?}",
                String::from_utf8_lossy(&buf)
            )
            .into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A response carrying the CGI's status (RFC 3875 §6.3.3, 200 without one) and headers.
fn parse_cgi_head(head: &str) -> Result<Response<Body>, BoxError> {
    let mut response = Response::new(super::routes::empty());
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed CGI header line {line:?}").into());
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().unwrap_or_default();
            *response.status_mut() = StatusCode::from_bytes(code.as_bytes())?;
        } else {
            response.headers_mut().append(
                HeaderName::from_bytes(name.trim().as_bytes())?,
                HeaderValue::from_str(value)?,
            );
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_heads_give_status_and_headers() {
        let response = parse_cgi_head("Status: 404 Not Found\r\nContent-Type: text/plain").unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()["content-type"], "text/plain");
        let response =
            parse_cgi_head("Content-Type: application/x-git-upload-pack-advertisement").unwrap();
        assert_eq!(response.status(), 200);
        assert!(parse_cgi_head("no colon here").is_err());
    }

    #[tokio::test]
    async fn the_cgi_head_ends_at_the_first_blank_line() {
        let mut out: &[u8] = b"Status: 200 OK\nContent-Type: x\n\nbody\r\n\r\nmore";
        let (head, rest) = read_cgi_head(&mut out).await.unwrap();
        assert_eq!(head, "Status: 200 OK\nContent-Type: x");
        assert_eq!(rest, b"body\r\n\r\nmore");
    }
}
