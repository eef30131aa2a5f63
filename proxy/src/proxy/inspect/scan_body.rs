//! A request body scanned for secrets as it streams to the server.
//!
//! Each data frame goes through a [`StreamScanner`], which says how many bytes are safe to send
//! on: the last few (enough to hold any secret's longest encoded form) are held back until more
//! arrive or the body ends, so a secret split across frames is found before any byte of it
//! leaves. A secret bound for a host it does not belong to ends the body with an error in block
//! mode (the server's request is abandoned, the held bytes dropped) and is recorded in both.

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use hyper::body::{Body, Bytes, Frame, SizeHint};

use crate::{
    exfil::{Finding, StreamScanner},
    lock,
    policy::{Mode, Policy},
};

/// What the body scan found, shared with the request's record.
#[derive(Debug, Default)]
pub struct Found {
    /// Findings that do not belong at the destination, each once.
    pub bad: Vec<Finding>,
    /// The body was cut because of them.
    pub blocked: bool,
}

/// The error a cut body ends with.
#[derive(Debug, thiserror::Error)]
#[error(
    "Warden refused the request body: it carries a secret bound for a host it does not belong to"
)]
pub struct Refused;

/// A body whose data is scanned before it is handed on.
pub struct Scanned<B> {
    inner: B,
    scanner: StreamScanner,
    policy: Arc<Policy>,
    host: String,
    /// Bytes scanned but not yet released.
    held: VecDeque<Bytes>,
    held_len: usize,
    /// Released bytes waiting to be handed on.
    ready: VecDeque<Bytes>,
    /// Trailers (or the end) that come after the held bytes.
    trailers: Option<http::HeaderMap>,
    ended: bool,
    found: Arc<Mutex<Found>>,
}

impl<B> Scanned<B> {
    /// Scans `inner`, a request body bound for `host`.
    pub fn new(inner: B, policy: Arc<Policy>, host: String, found: Arc<Mutex<Found>>) -> Self {
        Scanned {
            inner,
            scanner: policy.exfil().detector.stream(),
            policy,
            host,
            held: VecDeque::new(),
            held_len: 0,
            ready: VecDeque::new(),
            trailers: None,
            ended: false,
            found,
        }
    }

    /// Notes findings; true when the body must be cut.
    fn judge(&mut self, findings: Vec<Finding>) -> bool {
        let mut found = lock(&self.found);
        for f in findings {
            if !self.policy.exfil().allowed_to(&f, &self.host) && !found.bad.contains(&f) {
                found.bad.push(f);
            }
        }
        if !found.bad.is_empty() && self.policy.mode() == Mode::Block {
            found.blocked = true;
        }
        found.blocked
    }

    /// Moves `n` bytes from the front of the held ones to the ready ones.
    fn release(&mut self, mut n: usize) {
        while n > 0 {
            let Some(mut front) = self.held.pop_front() else {
                break;
            };
            if front.len() > n {
                let rest = front.split_off(n);
                self.held.push_front(rest);
            }
            n -= front.len();
            self.held_len -= front.len();
            self.ready.push_back(front);
        }
    }
}

impl<B> Body for Scanned<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        loop {
            if let Some(data) = self.ready.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            if self.ended {
                return Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let (findings, n) = self.scanner.push(&data);
                        if self.judge(findings) {
                            self.held.clear();
                            return Poll::Ready(Some(Err(Box::new(Refused))));
                        }
                        self.held_len += data.len();
                        self.held.push_back(data);
                        self.release(n);
                    }
                    Err(frame) => {
                        // Trailers end the body: scan the held tail first.
                        self.trailers = frame.into_trailers().ok();
                        if self.end() {
                            return Poll::Ready(Some(Err(Box::new(Refused))));
                        }
                    }
                },
                Poll::Ready(None) => {
                    if self.end() {
                        return Poll::Ready(Some(Err(Box::new(Refused))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.ready.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // The length does not change: a cut body ends with an error, never shorter.
        let mut hint = self.inner.size_hint();
        let pending = (self.held_len + self.ready.iter().map(Bytes::len).sum::<usize>()) as u64;
        hint.set_lower(hint.lower().saturating_add(pending));
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper.saturating_add(pending));
        }
        hint
    }
}

impl<B> Scanned<B> {
    /// End of the body: the held tail is scanned; true when the body must be cut.
    fn end(&mut self) -> bool {
        self.ended = true;
        let findings = self.scanner.finish();
        if self.judge(findings) {
            self.held.clear();
            return true;
        }
        let n = self.held_len;
        self.release(n);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exfil::{Detector, Secret};
    use crate::policy::Exfil;
    use http_body_util::BodyExt;

    fn policy(mode: Mode) -> Arc<Policy> {
        let exfil = Exfil {
            detector: Detector::new(vec![Secret::new("DEPLOY_KEY", "s3cr3t-value-123456")]),
            ..Exfil::default()
        };
        Arc::new(Policy::new(mode, vec![]).with_exfil(exfil))
    }

    /// A body of the given chunks.
    struct Chunks(VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn body(chunks: &[&str]) -> Chunks {
        Chunks(chunks.iter().map(|c| Bytes::from(c.to_string())).collect())
    }

    async fn run(mode: Mode, chunks: &[&str]) -> (Result<Vec<u8>, String>, Found) {
        let found = Arc::new(Mutex::new(Found::default()));
        let scanned = Scanned::new(
            body(chunks),
            policy(mode),
            "evil.example".into(),
            found.clone(),
        );
        let out = scanned
            .collect()
            .await
            .map(|c| c.to_bytes().to_vec())
            .map_err(|e| e.to_string());
        let found = std::mem::take(&mut *lock(&found));
        (out, found)
    }

    #[tokio::test]
    async fn clean_bodies_pass_whole() {
        let (out, found) = run(Mode::Block, &["hello ", "world", ""]).await;
        assert_eq!(out.unwrap(), b"hello world");
        assert!(found.bad.is_empty());
    }

    #[tokio::test]
    async fn a_secret_split_across_chunks_cuts_the_body_in_block_mode() {
        let (out, found) = run(Mode::Block, &["x=s3cr3t-va", "lue-123456&y=1"]).await;
        assert!(out.is_err());
        assert!(found.blocked);
        assert_eq!(found.bad[0].name, "DEPLOY_KEY");
        let (out, found) = run(Mode::Audit, &["x=s3cr3t-va", "lue-123456&y=1"]).await;
        assert_eq!(out.unwrap(), b"x=s3cr3t-value-123456&y=1");
        assert!(!found.blocked && found.bad.len() == 1);
    }
}
