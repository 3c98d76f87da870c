//! `chat-runner`: the chat server on real sockets, or with `--connect` its terminal client.
//! This file only reads the command line: the server is the library's [`chat_runner::serve`],
//! the client is `client/`. See docs/ARCHITECTURE.md.

mod args;
mod client;

use std::process::ExitCode;

use crate::args::Args;

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    if args.version {
        println!("chat-runner {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if args.hash_password {
        return hash_password();
    }
    let file = match &args.config {
        Some(path) => match args::read_config(path) {
            Ok(file) => file,
            Err(message) => {
                eprintln!("chat-runner: {message}");
                return ExitCode::from(2);
            }
        },
        None => Args::default(),
    };
    let options = args.options(file.clone());
    match options
        .log_format()
        .and_then(|format| Ok((format, options.log_level()?)))
    {
        Ok((format, level)) => {
            chat_runner::set_log_format(format);
            chat_runner::set_log_level(level);
        }
        Err(message) => {
            eprintln!("chat-runner: {message}");
            return ExitCode::from(2);
        }
    }
    // Checked even for a client, so that a bad flag is never silently ignored.
    let settings = match options.settings() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("chat-runner: {message}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        return match options.to_toml() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("chat-runner: cannot print the configuration: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(recording) = &args.replay {
        return match chat_runner::replay(recording) {
            Ok(replayed) => match chat_runner::print_replay(&replayed, &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("chat-runner: cannot print the replay: {error}");
                    ExitCode::FAILURE
                }
            },
            Err(error) => {
                eprintln!("chat-runner: {}: {error}", recording.display());
                ExitCode::FAILURE
            }
        };
    }
    if let Some(addr) = &args.connect {
        return client::run(&client::Options {
            addr: addr.clone(),
            colour: !options.no_color,
            reconnect: args.reconnect,
            tls: args.tls,
            tls_ca: args.tls_ca.clone(),
        });
    }
    if let Some(message) = args.misplaced() {
        eprintln!("chat-runner: {message}");
        return ExitCode::from(2);
    }
    let (addr, tls) = match options
        .listen_addr()
        .and_then(|addr| Ok((addr, options.tls_listen()?)))
    {
        Ok(both) => both,
        Err(message) => {
            eprintln!("chat-runner: {message}");
            return ExitCode::from(2);
        }
    };
    // Read before anything is bound, so that a bad file is a bad command line.
    let certificate = match &tls {
        Some(tls) => match chat_runner::Certificate::load(&tls.cert, &tls.key) {
            Ok(certificate) => Some(certificate),
            Err(error) => {
                eprintln!("chat-runner: TLS certificate: {error}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    if let Some(path) = &settings.motd
        && let Err(error) = chat_runner::read_motd(path)
    {
        eprintln!("chat-runner: --motd {}: {error}", path.display());
        return ExitCode::from(2);
    }
    let mut listeners = chat_runner::Listeners::default();
    if let Some(addr) = addr {
        match chat_runner::listen(addr) {
            Ok(listener) => listeners.plain = Some(listener),
            Err(error) => {
                eprintln!("chat-runner: cannot listen on {addr}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let (Some(tls), Some(certificate)) = (tls, certificate) {
        match chat_runner::listen(tls.addr) {
            Ok(listener) => {
                listeners.tls = Some(chat_runner::TlsListener {
                    listener,
                    certificate,
                    handshake_timeout: tls.handshake_timeout,
                });
            }
            Err(error) => {
                eprintln!(
                    "chat-runner: cannot listen for TLS on {}: {error}",
                    tls.addr
                );
                return ExitCode::FAILURE;
            }
        }
    }
    // With a config file, SIGHUP reads it again (the flags given now still win over it).
    let reload = args.config.clone().map(|path| {
        let mut reloading = args::Reloading::new(args, path, file, options);
        Box::new(move || reloading.reload()) as chat_runner::Reloader
    });
    match chat_runner::serve_reloading(listeners, settings, reload) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-runner: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `--hash-password`: reads one line from stdin, prints its Argon2id hash for `--oper-file`.
fn hash_password() -> ExitCode {
    let mut line = String::new();
    if let Err(error) = std::io::stdin().read_line(&mut line) {
        eprintln!("chat-runner: --hash-password: cannot read stdin: {error}");
        return ExitCode::FAILURE;
    }
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    match chat_runner::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("chat-runner: --hash-password: {error}");
            ExitCode::from(2)
        }
    }
}
