//! The response body: a whole buffer, or a stream of frames produced by a future chain (for
//! Server-Sent Events). Streams own their state: dropping the body (the client went away) drops
//! the subscription with it, and nothing is spawned per stream.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;

/// A response body.
pub(crate) enum Body {
    /// A complete body (taken on the first poll), with the memory reservation it holds until the
    /// body is dropped (written out, or the connection closed).
    Full {
        /// The bytes, until polled.
        bytes: Option<Bytes>,
        /// Released when the body is dropped.
        _reservation: Option<OwnedSemaphorePermit>,
    },
    /// Frames until the stream ends.
    Stream(FrameStream),
}

impl Body {
    /// A complete body.
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        Body::Full { bytes: Some(bytes.into()), _reservation: None }
    }

    /// A complete body that keeps `reservation` until it is dropped.
    pub(crate) fn full_with(bytes: impl Into<Bytes>, reservation: OwnedSemaphorePermit) -> Self {
        Body::Full { bytes: Some(bytes.into()), _reservation: Some(reservation) }
    }

    /// An empty body.
    pub(crate) fn empty() -> Self {
        Body::Full { bytes: None, _reservation: None }
    }

    /// Whether frames keep coming until the stream ends (a live stream), as opposed to one buffer.
    pub(crate) fn is_stream(&self) -> bool {
        matches!(self, Body::Stream(_))
    }
}

/// The next frame and the rest of the stream, or `None` at its end.
type NextFrame = Pin<Box<dyn Future<Output = Option<(Bytes, FrameStream)>> + Send>>;

/// A stream of body frames: each step is a future that yields one frame and the stream after it.
pub(crate) struct FrameStream {
    next: Option<NextFrame>,
}

impl FrameStream {
    /// A stream whose next frame (and continuation) `step` produces.
    pub(crate) fn new(step: impl Future<Output = Option<(Bytes, FrameStream)>> + Send + 'static) -> Self {
        Self { next: Some(Box::pin(step)) }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let Some(step) = self.next.as_mut() else { return Poll::Ready(None) };
        match step.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.next = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some((frame, rest))) => {
                *self = rest;
                Poll::Ready(Some(frame))
            }
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full { bytes, .. } => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(stream) => stream.poll_next(cx).map(|frame| frame.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full { bytes: None, .. })
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full { bytes: Some(b), .. } => SizeHint::with_exact(b.len() as u64),
            Body::Full { bytes: None, .. } => SizeHint::with_exact(0),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn counting(from: u32, to: u32) -> FrameStream {
        FrameStream::new(async move { (from < to).then(|| (Bytes::from(from.to_string()), counting(from + 1, to))) })
    }

    #[tokio::test]
    async fn a_stream_yields_its_frames_in_order_then_ends() {
        let body = Body::Stream(counting(1, 4)).collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"123");
        let body = Body::full("whole").collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"whole");
        assert!(hyper::body::Body::is_end_stream(&Body::empty()));
    }
}
