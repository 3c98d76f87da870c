//! A connection's socket as its reader and writer see it ([`Socket`]): a plain TCP socket, or
//! a TLS connection once its handshake is done ([`TlsSocket`]). Imports nothing of the crate.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

use futures_lite::AsyncWriteExt;
use rustls::ServerConnection;
use smol::Async;

/// What the reader and the writer need of a connection's socket. A plain socket
/// (`Async<TcpStream>`) does exactly what the tasks did before TLS existed: the tasks are
/// compiled once per kind of socket, so the plain path pays nothing for TLS.
pub(crate) trait Socket {
    /// Waits until the socket may have bytes to read.
    async fn readable(&self) -> io::Result<()>;
    /// Reads what is there without waiting: `WouldBlock` when there is nothing, 0 at the end.
    fn read_now(&self, buffer: &mut [u8]) -> io::Result<usize>;
    /// Writes what the socket takes of `bytes` now, without waiting: `None` when all of them
    /// are out, `Some(n)` when only the first `n` were taken, and the rest (from `n`; none, for
    /// a TLS socket that still holds records to send) is for [`Self::write_all`].
    fn write_now(&self, bytes: &[u8]) -> io::Result<Option<usize>>;
    /// Writes all of `bytes`, waiting for the socket to take them.
    async fn write_all(&self, bytes: &[u8]) -> io::Result<()>;
    /// Closes both directions, best effort.
    fn shutdown(&self);
}

impl Socket for Async<TcpStream> {
    #[inline]
    async fn readable(&self) -> io::Result<()> {
        Self::readable(self).await
    }

    #[inline]
    fn read_now(&self, buffer: &mut [u8]) -> io::Result<usize> {
        self.get_ref().read(buffer)
    }

    #[inline]
    fn write_now(&self, bytes: &[u8]) -> io::Result<Option<usize>> {
        let mut written = 0;
        while written < bytes.len() {
            match self.get_ref().write(&bytes[written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(taken) => written += taken,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Some(written));
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }

    #[inline]
    async fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        AsyncWriteExt::write_all(&mut &*self, bytes).await
    }

    fn shutdown(&self) {
        let _ = self.get_ref().shutdown(Shutdown::Both);
    }
}

/// A TLS connection once its handshake is done: the socket and rustls's state, shared by the
/// connection's reader and writer on the one thread. Neither holds the state across an await:
/// each borrows it only to move bytes between rustls and the socket without blocking, and
/// waits for the socket outside the borrow.
pub(crate) struct TlsSocket {
    socket: Async<TcpStream>,
    connection: RefCell<ServerConnection>,
}

impl fmt::Debug for TlsSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSocket")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl TlsSocket {
    /// A connection whose handshake (by `tls`) is done: its socket and rustls's state.
    pub(crate) fn new(socket: Async<TcpStream>, connection: ServerConnection) -> Self {
        Self {
            socket,
            connection: RefCell::new(connection),
        }
    }

    /// Writes what rustls has to send, as far as the socket takes it now: `Ok(true)` once
    /// everything is out, `Ok(false)` if the socket is full.
    fn send_tls(&self, connection: &mut ServerConnection) -> io::Result<bool> {
        while connection.wants_write() {
            match connection.write_tls(&mut self.socket.get_ref()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(true)
    }
}

impl Socket for TlsSocket {
    async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    fn read_now(&self, buffer: &mut [u8]) -> io::Result<usize> {
        let mut connection = self.connection.borrow_mut();
        loop {
            match connection.reader().read(buffer) {
                // 0: the peer sent close_notify.
                Ok(read) => return Ok(read),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
            // No plaintext waiting: take records from the socket (`WouldBlock` if none).
            if connection.read_tls(&mut self.socket.get_ref())? == 0 {
                return Ok(0);
            }
            if let Err(error) = connection.process_new_packets() {
                // Tell the peer with an alert, best effort.
                let _ = self.send_tls(&mut connection);
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
            // Answers rustls owes the peer (a key update), best effort: the writer sends the
            // rest with its next write.
            let _ = self.send_tls(&mut connection);
        }
    }

    fn write_now(&self, bytes: &[u8]) -> io::Result<Option<usize>> {
        let mut connection = self.connection.borrow_mut();
        let mut taken = 0;
        while taken < bytes.len() {
            // rustls takes up to its buffer's limit (64 KiB) and encrypts it.
            let took = connection.writer().write(&bytes[taken..])?;
            if took == 0 {
                break;
            }
            taken += took;
        }
        let sent = self.send_tls(&mut connection)?;
        Ok((!sent || taken < bytes.len()).then_some(taken))
    }

    async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        loop {
            {
                let mut connection = self.connection.borrow_mut();
                while !bytes.is_empty() {
                    // rustls takes up to its buffer's limit (64 KiB) and encrypts it.
                    let taken = connection.writer().write(bytes)?;
                    if taken == 0 {
                        break;
                    }
                    bytes = &bytes[taken..];
                }
                if self.send_tls(&mut connection)? && bytes.is_empty() {
                    return Ok(());
                }
            }
            self.socket.writable().await?;
        }
    }

    fn shutdown(&self) {
        if let Ok(mut connection) = self.connection.try_borrow_mut() {
            connection.send_close_notify();
            let _ = self.send_tls(&mut connection);
        }
        let _ = self.socket.get_ref().shutdown(Shutdown::Both);
    }
}
