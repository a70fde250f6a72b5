//! Connection-level limits the framework does not give: a request must be read and answered
//! within a deadline, so a client that trickles its headers or body a byte at a time (slowloris)
//! is cut off instead of holding a connection and a task forever.
//!
//! The deadline starts when the first byte of a request arrives and ends when the first byte of
//! the response is written; time a keep-alive connection spends idle between requests does not
//! count (the server's idle timeout bounds that). When it passes, the connection is closed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Wraps every accepted connection in a [`DeadlineIo`].
pub struct DeadlineAcceptor<A> {
    inner: A,
    limit: Duration,
}

impl<A> DeadlineAcceptor<A> {
    pub fn new(inner: A, limit: Duration) -> Self {
        DeadlineAcceptor { inner, limit }
    }
}

impl<A: Acceptor> Acceptor for DeadlineAcceptor<A> {
    type Io = DeadlineIo<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok((
            DeadlineIo {
                inner: io,
                limit: self.limit,
                deadline: None,
            },
            local,
            remote,
            scheme,
        ))
    }
}

/// A connection whose requests must be answered within a deadline.
pub struct DeadlineIo<T> {
    inner: T,
    limit: Duration,
    /// Running while a request is being read or handled.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<T> DeadlineIo<T> {
    /// Whether the running deadline has passed (registers the waker when it has not).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline
            .as_mut()
            .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready())
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "request not completed in time")
}

impl<T: AsyncRead + Unpin> AsyncRead for DeadlineIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result
            && buf.filled().len() > before
            && this.deadline.is_none()
        {
            let mut deadline = Box::pin(tokio::time::sleep(this.limit));
            // Poll once so the waker is registered even if no more reads come.
            let _ = deadline.as_mut().poll(cx);
            this.deadline = Some(deadline);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for DeadlineIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.expired(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result
            && n > 0
        {
            // The response is on its way: the request met its deadline.
            this.deadline = None;
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
