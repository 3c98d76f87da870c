//! TLS on a listener of its own (`--tls-listen`): the server's certificate, loaded at start
//! and reloaded on SIGHUP, and each connection's handshake, in a task of its own with a
//! timeout. Once it is done, the connection's reads and writes go through rustls in
//! [`TlsSocket`].
//!
//! After the handshake a TLS connection goes to the hub like a plain one
//! ([`crate::event::Stream::Tls`]): the same dialect detection, the same limits,
//! the same per-address caps. A handshake that fails never reaches the hub: it is logged in
//! one line and the socket closed.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use futures_lite::future;
use futures_rustls::TlsAcceptor;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use smol::channel::Sender;
use smol::{Async, LocalExecutor, Timer};

use crate::event::{Event, Stream};
use crate::log::{error, info, warn};
use crate::socket::{Socket, TlsSocket};

/// The first byte of every TLS record that opens a handshake (`ContentType::Handshake`).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What someone who speaks plain text on the TLS port is told before the connection closes.
const PLAIN_ON_TLS_PORT: &[u8] = b"*** This port speaks TLS; connect with TLS (e.g. chat-runner \
    --connect HOST:PORT --tls) or use the plain port.\r\n";

/// The most handshakes under way at once; a connection past it is closed at once. Each holds a
/// socket and a task for up to the handshake timeout, so without a bound a flood of
/// connections that never complete one would hold descriptors the chat needs.
const MAX_HANDSHAKES: usize = 1024;

/// The handshake timeout unless told otherwise (`--tls-handshake-timeout`).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's certificate chain and private key, read from PEM files, as a rustls
/// configuration. It remembers the files, so that SIGHUP can read them again.
#[derive(Clone)]
pub struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    config: Arc<ServerConfig>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Reads the certificate chain (PEM, the server's certificate first, then any
    /// intermediates) from `cert` and its private key (PEM: PKCS#8, PKCS#1 or SEC1) from
    /// `key`, and checks that they belong together. The error names the file at fault.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, CertificateError> {
        let fail = |path: &Path, why: String| CertificateError {
            path: path.to_owned(),
            why,
        };
        let pem =
            std::fs::read(cert).map_err(|error| fail(cert, format!("cannot read: {error}")))?;
        let chain = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| fail(cert, format!("not a PEM certificate chain: {error}")))?;
        if chain.is_empty() {
            return Err(fail(
                cert,
                "no certificate (BEGIN CERTIFICATE) in it".to_owned(),
            ));
        }
        let pem = std::fs::read(key).map_err(|error| fail(key, format!("cannot read: {error}")))?;
        let private = PrivateKeyDer::from_pem_slice(&pem).map_err(|error| {
            fail(
                key,
                match error {
                    rustls::pki_types::pem::Error::NoItemsFound => {
                        "no private key (BEGIN PRIVATE KEY) in it".to_owned()
                    }
                    error => format!("not a PEM private key: {error}"),
                },
            )
        })?;
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|error| fail(cert, error.to_string()))?
                .with_no_client_auth()
                .with_single_cert(chain, private)
                .map_err(|error| {
                    fail(
                        key,
                        format!(
                            "does not go with the certificate in {}: {error}",
                            cert.display()
                        ),
                    )
                })?;
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            config: Arc::new(config),
        })
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The private key file.
    pub fn key_path(&self) -> &Path {
        &self.key
    }
}

/// Why a certificate or key could not be used: the file, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateError {
    /// The file at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub why: String,
}

impl fmt::Display for CertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.why)
    }
}

impl std::error::Error for CertificateError {}

/// The TLS listener's settings: where, with which certificate, and how long a handshake may
/// take.
#[derive(Debug)]
pub struct TlsListener {
    /// The bound listener (see [`listen`](crate::listen)).
    pub listener: TcpListener,
    /// The certificate and key, reloaded from the same files on SIGHUP.
    pub certificate: Certificate,
    /// A connection that has not completed its handshake this long after it was accepted is
    /// closed (`--tls-handshake-timeout`).
    pub handshake_timeout: Duration,
}

/// The certificate new handshakes use: shared by the TLS accept loop and the signal task, on
/// the server's one thread.
#[derive(Debug)]
pub(crate) struct Current(RefCell<Certificate>);

impl Current {
    pub(crate) fn new(certificate: Certificate) -> Rc<Self> {
        Rc::new(Self(RefCell::new(certificate)))
    }

    pub(crate) fn cert_path(&self) -> PathBuf {
        self.0.borrow().cert.clone()
    }

    pub(crate) fn key_path(&self) -> PathBuf {
        self.0.borrow().key.clone()
    }

    fn config(&self) -> Arc<ServerConfig> {
        self.0.borrow().config.clone()
    }

    /// Reads the certificate and key again from the same files. On success new handshakes use
    /// them (connections already made keep theirs); on failure the old ones stay. Logs either.
    pub(crate) fn reload(&self) {
        let (cert, key) = {
            let current = self.0.borrow();
            (current.cert.clone(), current.key.clone())
        };
        match Certificate::load(&cert, &key) {
            Ok(certificate) => {
                *self.0.borrow_mut() = certificate;
                info!(
                    "TLS certificate reloaded from {} and {}",
                    cert.display(),
                    key.display()
                );
            }
            Err(error) => warn!("TLS certificate not reloaded, the old one stays: {error}"),
        }
    }
}

/// Accepts connections on the TLS port and gives each a task for its handshake, which hands
/// it to the hub once done. Accept errors are retried like the plain loop's.
pub(crate) async fn accept_loop(
    listener: Async<TcpListener>,
    current: Rc<Current>,
    timeout: Duration,
    executor: Rc<LocalExecutor<'static>>,
    hub: Sender<Event>,
) {
    let under_way = Rc::new(Cell::new(0_usize));
    let mut failures = 0_u64;
    let mut last_logged: Option<StdInstant> = None;
    let mut refused = 0_u64;
    let mut last_refusal_logged: Option<StdInstant> = None;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.get_ref().set_nodelay(true);
                crate::keep_alive(stream.get_ref());
                if under_way.get() >= MAX_HANDSHAKES {
                    // Closed at once (dropped); logged at most once a second, with the count.
                    refused += 1;
                    if last_refusal_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                        warn!(
                            "TLS connection from {peer} closed: {MAX_HANDSHAKES} handshakes \
                             under way already ({refused} closed so far)"
                        );
                        last_refusal_logged = Some(StdInstant::now());
                    }
                    continue;
                }
                under_way.set(under_way.get() + 1);
                let config = current.config();
                let (under_way, hub) = (under_way.clone(), hub.clone());
                executor
                    .spawn(async move {
                        let done = future::or(handshake(stream, config), async {
                            Timer::after(timeout).await;
                            Err(format!("no handshake within {} s", timeout.as_secs_f64()))
                        })
                        .await;
                        under_way.set(under_way.get() - 1);
                        match done {
                            Ok(socket) => {
                                let _ = hub
                                    .send(Event::Accepted(Stream::Tls(Box::new(socket)), peer))
                                    .await;
                            }
                            Err(why) => warn!("TLS handshake with {peer} failed: {why}"),
                        }
                    })
                    .detach();
            }
            Err(error) => {
                failures += 1;
                if last_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    error!("TLS accept failed ({failures} so far): {error}; retrying every 100 ms");
                    last_logged = Some(StdInstant::now());
                }
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One connection's handshake. Someone who speaks plain text first (whose first byte cannot
/// begin a TLS handshake) is told, in one plain line, that this port speaks TLS.
async fn handshake(
    stream: Async<TcpStream>,
    config: Arc<ServerConfig>,
) -> Result<TlsSocket, String> {
    let mut first = [0_u8; 1];
    let peeked = loop {
        match stream.get_ref().peek(&mut first) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                stream.readable().await.map_err(|error| error.to_string())?;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            other => break other.map_err(|error| error.to_string())?,
        }
    };
    if peeked == 0 {
        return Err("closed before the handshake".to_owned());
    }
    if first[0] != TLS_HANDSHAKE_RECORD {
        let _ = Socket::write_all(&stream, PLAIN_ON_TLS_PORT).await;
        let _ = stream.get_ref().shutdown(Shutdown::Both);
        return Err(format!(
            "not TLS (first byte {:#04x}{}); told to use TLS or the plain port",
            first[0],
            if first[0].is_ascii_graphic() {
                format!(", {:?}", char::from(first[0]))
            } else {
                String::new()
            }
        ));
    }
    let stream = TlsAcceptor::from(config)
        .accept(stream)
        .await
        .map_err(|error| error.to_string())?;
    let (socket, connection) = stream.into_inner();
    Ok(TlsSocket::new(socket, connection))
}
