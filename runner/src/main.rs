//! `chat-runner`: the chat server on real sockets. The protocol lives in `chat-core`; this
//! binary only moves bytes and time between sockets and the core. See docs/ARCHITECTURE.md.

mod args;
mod client;
mod connection;
mod event;
mod hub;
mod log;
mod pacer;
mod slow;

use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant as StdInstant};

use async_signal::{Signal, Signals};
use chat_core::{Config, FloodLimit, Instant};
use futures_lite::StreamExt;
use smol::channel::Sender;
use smol::{Async, LocalExecutor, Timer};

use crate::args::Args;
use crate::event::Event;
use crate::hub::{Core, Hub};
use crate::log::log;
use crate::slow::SlowReaders;

/// Connections the kernel may hold waiting to be accepted.
const LISTEN_BACKLOG: i32 = 4096;

/// How many events may wait for the hub before readers and the accept loop wait in turn.
const EVENT_QUEUE: usize = 4096;

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    if args.queue_limit == 0 {
        eprintln!("chat-runner: --queue-limit must be at least 1");
        return ExitCode::from(2);
    }
    if args.lag_limit().is_none() {
        eprintln!("chat-runner: --lag-limit must be at least 1 and at most --queue-limit");
        return ExitCode::from(2);
    }
    let Some(flush_interval) = args.flush_interval() else {
        eprintln!("chat-runner: --flush-interval is in milliseconds, from 0 to 50");
        return ExitCode::from(2);
    };
    if args.flood_burst == 0 || args.flood_rate == 0 {
        eprintln!(
            "chat-runner: --flood-burst and --flood-rate must be at least 1 (or use --no-flood-limit)"
        );
        return ExitCode::from(2);
    }
    if args.max_clients == 0 || args.max_clients > hub::CLIENTS {
        eprintln!(
            "chat-runner: --max-clients must be between 1 and {}",
            hub::CLIENTS
        );
        return ExitCode::from(2);
    }
    if args.history > chat_core::MAX_HISTORY {
        eprintln!(
            "chat-runner: --history is at most {}",
            chat_core::MAX_HISTORY
        );
        return ExitCode::from(2);
    }
    if args.max_room_members == Some(0) {
        eprintln!("chat-runner: --max-room-members must be at least 1");
        return ExitCode::from(2);
    }
    let server_name = match args.server_name() {
        Ok(name) => name,
        Err(message) => {
            eprintln!("chat-runner: {message}");
            return ExitCode::from(2);
        }
    };
    if let Some(addr) = &args.connect {
        return client::run(&client::Options {
            addr: addr.clone(),
            colour: !args.no_color,
            reconnect: args.reconnect,
        });
    }
    if args.reconnect {
        eprintln!("chat-runner: --reconnect is for clients: use it with --connect");
        return ExitCode::from(2);
    }
    let addr = match args.listen_addr() {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!("chat-runner: {message}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(addr)
        .and_then(|listener| {
            // std listens with a backlog of 128; a burst of connections overflows that and
            // waits for SYN retries (a second or more). Ask for more (the kernel caps it at
            // net.core.somaxconn).
            rustix::net::listen(&listener, LISTEN_BACKLOG)?;
            Ok(listener)
        })
        .and_then(Async::new)
    {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("chat-runner: cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let signals = match Signals::new([Signal::Int, Signal::Term]) {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("chat-runner: cannot handle signals: {error}");
            return ExitCode::FAILURE;
        }
    };
    let bound = listener.get_ref().local_addr().unwrap_or(addr);
    let descriptors = raise_descriptor_limit();
    let config = Config::default()
        .with_colour(!args.no_color)
        .with_silence_timeout(args.silence_timeout())
        .with_max_room_members(args.max_room_members.unwrap_or(u32::MAX))
        .with_max_clients(args.max_clients)
        .with_history(args.history)
        .with_greeting_delay(Duration::from_millis(args.greeting_delay))
        .with_server_name(server_name)
        .with_irc_lobby(!args.no_irc_lobby)
        .with_announce_limit(args.announce_limit)
        .with_ping(
            (args.ping_interval > 0).then(|| Duration::from_secs(args.ping_interval)),
            Duration::from_secs(args.ping_timeout.max(1)),
        )
        .with_flood_limit((!args.no_flood_limit).then_some(FloodLimit {
            burst: args.flood_burst,
            per_second: args.flood_rate,
        }));
    let started = StdInstant::now();
    let core = new_core(config, started);
    forget_startup_peak();

    // Tests and scripts read this line to learn the port.
    // A closed stdout is no reason to stop serving, hence no println!.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "chat-runner listening on {bound}").and_then(|()| stdout.flush());
    log!(
        "listening on {bound}; up to {} connections ({descriptors}), {} per address, \
         queue limit {} messages, silence timeout {}, flood limit {}",
        args.max_clients,
        match args.max_per_ip {
            0 => "any number".to_owned(),
            most => format!("{most}"),
        },
        args.queue_limit,
        match args.silence_timeout() {
            Some(timeout) => format!("{} s", timeout.as_secs()),
            None => "off".to_owned(),
        },
        match config.flood_limit {
            Some(limit) => format!("{} lines then {}/s", limit.burst, limit.per_second),
            None => "off".to_owned(),
        }
    );

    let executor = Rc::new(LocalExecutor::new());
    let (events, incoming) = smol::channel::bounded(EVENT_QUEUE);
    let hub = Hub::new(
        core,
        executor.clone(),
        events.clone(),
        SlowReaders {
            lag_limit: args.lag_limit().unwrap_or(args.queue_limit),
            queue_limit: args.queue_limit,
            stall_timeout: args.stall_timeout(),
        },
        args.max_per_ip,
        flush_interval,
        started,
    );
    let accepting = executor.spawn(accept_loop(listener, events.clone()));
    executor.spawn(signal_loop(signals, events)).detach();
    // The hub runs as a task of its own rather than as the future `block_on` polls: that
    // future's waker unparks the thread, and after an unpark `block_on` polls the reactor once
    // more (several system calls) before it sleeps. A reader handing the hub a chunk would do
    // that for every chunk; as a task, the hub is only queued on the executor.
    let hub = executor.spawn(hub.run(incoming, accepting));
    smol::block_on(executor.run(hub));
    ExitCode::SUCCESS
}

/// Builds the core on the heap. `Server<CLIENTS>` is several megabytes and Rust may build it on
/// the stack before moving it into the box, so it is built on a thread with room for that.
fn new_core(config: Config, started: StdInstant) -> Box<Core> {
    let size = size_of::<Core>();
    std::thread::Builder::new()
        .name("core-init".into())
        .stack_size(4 * size + (1 << 20))
        .spawn(move || {
            Box::new(Core::new(
                config,
                Instant::from_millis(started.elapsed().as_millis() as u64),
            ))
        })
        .and_then(|thread| {
            thread
                .join()
                .map_err(|_| std::io::Error::other("core-init panicked"))
        })
        .unwrap_or_else(|error| panic!("cannot build the core: {error}"))
}

/// Building the core passes its tables (some 16 MB, committed from the start) through the init
/// thread's stack, perhaps more than once; that stack is gone by now, but the kernel's record of
/// the peak resident memory (VmHWM in /proc/PID/status) still counts it. The record is reset, so
/// that the peak an operator or a benchmark reads is that of serving. Best effort (Linux).
fn forget_startup_peak() {
    // "5" resets the peak resident set size; see proc(5), /proc/pid/clear_refs.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Raises the soft limit on open files to the hard limit, so the server can hold as many of
/// its `CLIENTS` connections as the system allows; describes the limit for the log.
fn raise_descriptor_limit() -> String {
    use rustix::process::{Resource, getrlimit, setrlimit};
    // `None` is "unlimited". An unlimited hard limit still has a ceiling in the kernel, so ask
    // for what the server can use rather than for infinity.
    let wanted = (hub::CLIENTS + 1024) as u64;
    let mut limit = getrlimit(Resource::Nofile);
    let target = limit.maximum.unwrap_or(wanted);
    if limit.current.is_some_and(|soft| soft < target) {
        limit.current = Some(target);
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    match limit.current {
        Some(open) => format!("{open} open files allowed"),
        None => "open files unlimited".to_owned(),
    }
}

/// TCP keepalive: a connection idle this long is probed by the kernel...
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// ...every this long...
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// ...and reported broken (a read error, so a departure) after this many unanswered probes.
const KEEPALIVE_PROBES: u32 = 4;

/// Turns TCP keepalive on for `stream`, so that a peer that vanished without closing (a
/// machine switched off, a cable pulled) is noticed within about two minutes of quiet, even
/// in the plain dialect, which has no ping. Best effort: a failure only loses the probing.
fn keep_alive(stream: &std::net::TcpStream) {
    use rustix::net::sockopt;
    let _ = sockopt::set_socket_keepalive(stream, true)
        .and_then(|()| sockopt::set_tcp_keepidle(stream, KEEPALIVE_IDLE))
        .and_then(|()| sockopt::set_tcp_keepintvl(stream, KEEPALIVE_INTERVAL))
        .and_then(|()| sockopt::set_tcp_keepcnt(stream, KEEPALIVE_PROBES));
}

/// Accepts connections and hands them to the hub. An accept error (out of file descriptors,
/// say) is retried after a pause instead of ending the server, and logged at most once a
/// second with how many there were.
async fn accept_loop(listener: Async<TcpListener>, hub: Sender<Event>) {
    let mut failures = 0_u64;
    let mut last_logged: Option<StdInstant> = None;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // Chat lines are small and wanted now, not after Nagle's delay.
                let _ = stream.get_ref().set_nodelay(true);
                keep_alive(stream.get_ref());
                if hub.send(Event::Accepted(stream, peer)).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                failures += 1;
                if last_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    log!("accept failed ({failures} so far): {error}; retrying every 100 ms");
                    last_logged = Some(StdInstant::now());
                }
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Turns the first Ctrl-C or SIGTERM into a shutdown event.
async fn signal_loop(mut signals: Signals, hub: Sender<Event>) {
    if let Some(Ok(signal)) = signals.next().await {
        let name = match signal {
            Signal::Int => "SIGINT",
            _ => "SIGTERM",
        };
        let _ = hub.send(Event::Shutdown(name)).await;
    }
}
