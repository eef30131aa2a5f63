//! Bodies streamed through an inspected request, counted as they pass, with a hook when they end.
//!
//! Nothing is buffered: each frame is handed on as it arrives (a 1 GiB download costs no more
//! memory than a small one), its data bytes are added to a counter, and trailers (gRPC's status)
//! pass through untouched. The request record is written by whatever owns the last reference to
//! its state, which is how it gets written exactly once: when the response body ends, fails, or
//! is dropped by a client that went away.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use hyper::body::{Body, Frame, SizeHint};

/// Told when a body ended cleanly (so a body dropped half-way can say so).
pub trait Ended {
    /// The body reached its end.
    fn ended(&mut self);
}

impl Ended for () {
    fn ended(&mut self) {}
}

/// A body that counts the data bytes it passes into `counter`, holding `keep` until it is done
/// or dropped.
pub struct Counted<B, K> {
    inner: B,
    counter: Arc<AtomicU64>,
    keep: Option<K>,
}

impl<B, K> Counted<B, K> {
    /// Wraps `inner`.
    pub fn new(inner: B, counter: Arc<AtomicU64>, keep: Option<K>) -> Self {
        Self {
            inner,
            counter,
            keep,
        }
    }
}

impl<B, K> Body for Counted<B, K>
where
    B: Body + Unpin,
    K: Ended + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.counter
                        .fetch_add(hyper::body::Buf::remaining(data) as u64, Ordering::Relaxed);
                }
                // A body of known length may not be polled again after its last frame.
                if self.inner.is_end_stream() {
                    self.finish();
                }
            }
            // Ended: let go of what we hold now, not when hyper drops us.
            Poll::Ready(None) => self.finish(),
            Poll::Ready(Some(Err(_))) => drop(self.keep.take()),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B, K: Ended> Counted<B, K> {
    fn finish(&mut self) {
        if let Some(mut keep) = self.keep.take() {
            keep.ended();
        }
    }
}
