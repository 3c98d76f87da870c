//! `chat-runner`: the chat server on real sockets, or with `--connect` its terminal client.
//! This file only reads the command line: the server is the library's [`chat_runner::serve`],
//! the client is `client/`. See docs/ARCHITECTURE.md.

mod args;
mod client;

use std::process::ExitCode;

use crate::args::Args;

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    // Checked even for a client, so that a bad flag is never silently ignored.
    let settings = match args.settings() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("chat-runner: {message}");
            return ExitCode::from(2);
        }
    };
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
    let served = chat_runner::listen(addr)
        .map_err(chat_runner::Error::Listener)
        .and_then(|listener| chat_runner::serve(listener, settings));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(chat_runner::Error::Listener(error)) => {
            eprintln!("chat-runner: cannot listen on {addr}: {error}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("chat-runner: {error}");
            ExitCode::FAILURE
        }
    }
}
