//! `chat-runner --connect HOST:PORT`: the terminal client.
//!
//! Two sources feed one loop: what the person types (a line editor on its own thread, or stdin
//! when it is not a terminal) and what the server sends (a reader task). The loop writes typed
//! lines to the socket and prints the server's lines, sanitised, above the prompt.

mod screen;
mod terminal;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, future};
use futures_rustls::TlsConnector;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use smol::Timer;
use smol::channel::{Receiver, Sender};
use smol::net::TcpStream;

use self::screen::{plain, sanitize};
use self::terminal::{Editor, Output};

/// The longest line kept whole from the server; a longer one is printed in pieces, so a broken
/// server cannot make the client buffer without bound.
const MAX_SERVER_LINE: usize = 64 * 1024;

/// How long the client waits for the server to answer `/quit` or the final `/ping`.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the TLS handshake may take once the TCP connection is made.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Backoff between reconnection attempts: doubles from the first value up to the second.
const RECONNECT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(500), Duration::from_secs(30));

/// The client's settings, from the command line.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) addr: String,
    pub(crate) colour: bool,
    pub(crate) reconnect: bool,
    /// Speak TLS (`--tls`).
    pub(crate) tls: bool,
    /// Trust these CAs instead of the public ones (`--tls-ca`).
    pub(crate) tls_ca: Option<PathBuf>,
}

/// What the client needs for TLS: the configuration, and the name the certificate must have.
struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl Tls {
    /// The TLS settings from the options: trusting `--tls-ca`'s CAs, or the public ones, and
    /// expecting a certificate for the host in `--connect`. The error says which file or
    /// which host is wrong.
    fn new(options: &Options) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        match &options.tls_ca {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|error| {
                    format!("--tls-ca {}: cannot read: {error}", path.display())
                })?;
                let mut found = 0;
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|error| {
                        format!(
                            "--tls-ca {}: not a PEM certificate: {error}",
                            path.display()
                        )
                    })?;
                    roots.add(cert).map_err(|error| {
                        format!(
                            "--tls-ca {}: not a usable CA certificate: {error}",
                            path.display()
                        )
                    })?;
                    found += 1;
                }
                if found == 0 {
                    return Err(format!(
                        "--tls-ca {}: no certificate (BEGIN CERTIFICATE) in it",
                        path.display()
                    ));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS: {error}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let host = host_of(&options.addr);
        let name = ServerName::try_from(host.to_owned()).map_err(|_| {
            format!(
                "--connect {}: {host:?} is not a host name or an IP address, which TLS needs",
                options.addr
            )
        })?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }
}

/// The host in `HOST:PORT`, `[IPv6]:PORT` or `IPv6` without a port's brackets.
fn host_of(addr: &str) -> &str {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => addr,
    };
    host.strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host)
}

/// Something from the person at the keyboard (or the script on stdin).
#[derive(Debug)]
pub(crate) enum Typed {
    Line(String),
    /// Ctrl-D, Ctrl-C on an empty line, or the end of piped input.
    End,
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// The person left (or the script finished) and the server confirmed.
    Done,
    /// The script ended but the server never confirmed its last line.
    Unanswered,
    /// The server went away unasked.
    Lost,
}

/// Runs the client until the person leaves or the server goes away; the exit code says which.
pub(crate) fn run(options: &Options) -> ExitCode {
    if options.tls_ca.is_some() && !options.tls {
        eprintln!("chat-runner: --tls-ca is for TLS: use it with --tls");
        return ExitCode::from(2);
    }
    let tls = if options.tls {
        match Tls::new(options) {
            Ok(tls) => Some(tls),
            Err(message) => {
                eprintln!("chat-runner: {message}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let interactive = io::stdin().is_terminal();
    let colour = options.colour && io::stdout().is_terminal() && no_color_unset();
    let (typed_tx, typed) = smol::channel::unbounded();
    let (output, editor) = if interactive {
        match Editor::start(typed_tx) {
            Ok((output, editor)) => (output, Some(editor)),
            Err(error) => {
                eprintln!("chat-runner: cannot start the line editor: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        terminal::read_stdin(typed_tx);
        (Output::Stdout(io::stdout()), None)
    };
    let mut client = Client {
        options,
        tls,
        colour,
        interactive,
        output,
        typed,
        nickname: None,
    };
    let code = smol::block_on(client.run());
    if let Some(editor) = editor {
        editor.restore();
    }
    code
}

fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

struct Client<'a> {
    options: &'a Options,
    tls: Option<Tls>,
    colour: bool,
    interactive: bool,
    output: Output,
    typed: Receiver<Typed>,
    /// The nickname the server last confirmed, restored after a reconnect.
    nickname: Option<String>,
}

impl Client<'_> {
    async fn run(&mut self) -> ExitCode {
        let mut backoff = RECONNECT_BACKOFF.0;
        loop {
            let ending = match self.connect().await {
                Ok(Connected::Plain(stream)) => Ok(self.session(stream.clone(), stream).await),
                Ok(Connected::Tls(stream)) => {
                    let (reader, writer) = futures_lite::io::split(stream);
                    Ok(self.session(reader, writer).await)
                }
                Err(message) => Err(message),
            };
            match ending {
                Ok(ending) => {
                    backoff = RECONNECT_BACKOFF.0;
                    match ending {
                        Ending::Done => return ExitCode::SUCCESS,
                        Ending::Unanswered => {
                            self.notice(&format!(
                                "the server did not answer within {} s",
                                GOODBYE_TIMEOUT.as_secs()
                            ));
                            return ExitCode::FAILURE;
                        }
                        Ending::Lost => self.notice("the server closed the connection"),
                    }
                }
                Err(message) => self.notice(&message),
            }
            if !self.options.reconnect {
                return ExitCode::FAILURE;
            }
            self.notice(&format!("reconnecting in {:.1} s", backoff.as_secs_f32()));
            if !self.wait_disconnected(backoff).await {
                // Left (Ctrl-D, or the script ended) while there was no server to tell.
                return if self.interactive {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                };
            }
            backoff = (backoff * 2).min(RECONNECT_BACKOFF.1);
        }
    }

    /// Waits out a reconnection backoff, still listening to the keyboard: a line typed now has
    /// nowhere to go and is dropped with a notice. False if the person left meanwhile.
    async fn wait_disconnected(&mut self, backoff: Duration) -> bool {
        let mut timer = Timer::after(backoff);
        loop {
            let typed = future::or(async { Some(self.typed.recv().await) }, async {
                (&mut timer).await;
                None
            })
            .await;
            match typed {
                None => return true,
                Some(Ok(Typed::Line(_))) => self.notice("not connected: that line was not sent"),
                Some(Ok(Typed::End) | Err(_)) => return false,
            }
        }
    }

    /// Connects, and with `--tls` makes the handshake; the error is the message to show.
    async fn connect(&self) -> Result<Connected, String> {
        let addr = &self.options.addr;
        let stream = TcpStream::connect(addr.as_str())
            .await
            .map_err(|error| format!("cannot connect to {addr}: {error}"))?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return Ok(Connected::Plain(stream));
        };
        let handshake = tls.connector.connect(tls.name.clone(), stream);
        let timeout = async {
            Timer::after(TLS_HANDSHAKE_TIMEOUT).await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {} s", TLS_HANDSHAKE_TIMEOUT.as_secs()),
            ))
        };
        match future::or(handshake, timeout).await {
            Ok(stream) => Ok(Connected::Tls(Box::new(stream))),
            Err(error) => Err(format!("TLS handshake with {addr} failed: {error}")),
        }
    }

    /// One connection: relays lines both ways until it ends.
    async fn session<R, W>(&mut self, reader: R, mut writer: W) -> Ending
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin,
    {
        let (lines_tx, lines) = smol::channel::bounded(256);
        let _reader = smol::spawn(read_lines(reader, lines_tx));
        if let Some(nickname) = self.nickname.clone() {
            let _ = send(&mut writer, &format!("/nick {nickname}\n")).await;
        }
        // Set once the person has left (or the script ended): the token of the final ping, or
        // empty after a /quit, and when to give up waiting for the server.
        let mut leaving: Option<(String, Timer)> = None;
        loop {
            let next = future::or(async { Event::Server(lines.recv().await.ok()) }, async {
                match &mut leaving {
                    Some((_, deadline)) => {
                        deadline.await;
                        Event::GiveUp
                    }
                    None => Event::Typed(self.typed.recv().await.ok()),
                }
            })
            .await;
            match next {
                Event::Server(Some(line)) => {
                    let text = plain(&line);
                    if let Some((token, _)) = &leaving
                        && !token.is_empty()
                        && text == format!("*** pong {token}")
                    {
                        return Ending::Done;
                    }
                    if let Some(name) = text.strip_prefix("*** You are now known as ") {
                        self.nickname = Some(name.trim_end_matches('.').to_owned());
                    }
                    self.print(&sanitize(&line, self.colour));
                }
                Event::Server(None) => {
                    return if leaving.is_some() {
                        Ending::Done
                    } else {
                        Ending::Lost
                    };
                }
                Event::Typed(Some(Typed::Line(line))) => {
                    if is_quit(&line) {
                        leaving = Some((String::new(), Timer::after(GOODBYE_TIMEOUT)));
                    }
                    if send(&mut writer, &format!("{line}\n")).await.is_err() {
                        return if leaving.is_some() {
                            Ending::Done
                        } else {
                            Ending::Lost
                        };
                    }
                }
                Event::Typed(Some(Typed::End) | None) => {
                    let (command, token) = if self.interactive {
                        ("/quit".to_owned(), String::new())
                    } else {
                        let token = format!("end-{}", std::process::id());
                        (format!("/ping {token}"), token)
                    };
                    leaving = Some((token, Timer::after(GOODBYE_TIMEOUT)));
                    if send(&mut writer, &format!("{command}\n")).await.is_err() {
                        return Ending::Done;
                    }
                }
                // After /quit a server that does not close is only impolite; a script's lines
                // that were never confirmed are a failure.
                Event::GiveUp => {
                    return match &leaving {
                        Some((token, _)) if !token.is_empty() => Ending::Unanswered,
                        _ => Ending::Done,
                    };
                }
            }
        }
    }

    fn print(&mut self, text: &str) {
        self.output.print(text);
    }

    fn notice(&mut self, text: &str) {
        let line = if self.colour {
            format!("\x1b[33m***\x1b[0m {text}")
        } else {
            format!("*** {text}")
        };
        if self.interactive {
            self.print(&line);
        } else {
            // In a script, stdout carries the server's lines; the client's own go to stderr.
            let _ = writeln!(io::stderr(), "{line}");
        }
    }
}

/// A connection made: plain, or TLS with its handshake done.
enum Connected {
    Plain(TcpStream),
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

/// Writes `text` and flushes it: a TLS stream may hold written bytes until flushed.
async fn send(writer: &mut (impl AsyncWrite + Unpin), text: &str) -> io::Result<()> {
    writer.write_all(text.as_bytes()).await?;
    writer.flush().await
}

enum Event {
    Server(Option<Vec<u8>>),
    Typed(Option<Typed>),
    GiveUp,
}

fn is_quit(line: &str) -> bool {
    let word = line.split_whitespace().next().unwrap_or("");
    word.eq_ignore_ascii_case("/quit")
}

/// Reads the server's lines (without their line endings) into `lines` until the connection ends.
async fn read_lines(mut stream: impl AsyncRead + Unpin, lines: Sender<Vec<u8>>) {
    let mut buffer = vec![0; 16 * 1024];
    let mut partial = Vec::new();
    loop {
        let read = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        for piece in buffer[..read].split_inclusive(|&b| b == b'\n') {
            partial.extend_from_slice(piece);
            if piece.ends_with(b"\n") || partial.len() >= MAX_SERVER_LINE {
                let mut line = std::mem::take(&mut partial);
                while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    line.pop();
                }
                if lines.send(line).await.is_err() {
                    return;
                }
            }
        }
    }
    if !partial.is_empty() {
        let _ = lines.send(partial).await;
    }
}
