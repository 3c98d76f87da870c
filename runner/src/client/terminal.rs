//! The keyboard side: a rustyline editor on its own thread (it blocks), or stdin read line by
//! line when a script pipes it in; and the screen side, where server lines are printed.

use std::io::{self, BufRead, Write};
use std::thread;

use rustix::termios::{self, OptionalActions, Termios};
use rustyline::error::{ReadlineError, Signal};
use rustyline::{
    Cmd, ConditionalEventHandler, Event, EventContext, EventHandler, ExternalPrinter, KeyEvent,
    Movement, RepeatCount,
};
use smol::channel::Sender;

use super::Typed;

/// The prompt, as in the original client.
const PROMPT: &str = ">> ";

/// How many typed lines the up and down keys can recall.
const HISTORY_LINES: usize = 1000;

/// Where server lines go.
pub(crate) enum Output {
    /// Above the prompt, through the line editor, which redraws the half-typed line after.
    Printer(Box<dyn ExternalPrinter + Send>),
    /// Straight to stdout, when there is no prompt.
    Stdout(io::Stdout),
}

impl Output {
    pub(crate) fn print(&mut self, line: &str) {
        match self {
            // The editor clears the prompt, prints, and redraws the half-typed line below.
            Self::Printer(printer) => {
                let _ = printer.print(format!("{line}\n"));
            }
            Self::Stdout(stdout) => {
                let _ = writeln!(stdout, "{line}");
                let _ = stdout.flush();
            }
        }
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Printer(_) => "Output::Printer",
            Self::Stdout(_) => "Output::Stdout",
        })
    }
}

/// The running line editor. Keeps the terminal's original mode so it can be put back however
/// the client ends, even while the editor thread is blocked in raw mode.
#[derive(Debug)]
pub(crate) struct Editor {
    saved: Option<Termios>,
    thread: thread::JoinHandle<()>,
}

/// How long an exiting client lets a still-running editor thread print the lines it was handed:
/// the external printer only queues them for that thread.
const LAST_PRINT_GRACE: std::time::Duration = std::time::Duration::from_millis(150);

impl Editor {
    /// Starts the editor thread, which sends each typed line to `typed`.
    pub(crate) fn start(typed: Sender<Typed>) -> rustyline::Result<(Output, Self)> {
        let saved = termios::tcgetattr(io::stdin()).ok();
        let config = rustyline::Config::builder()
            .max_history_size(HISTORY_LINES)?
            .auto_add_history(true)
            .build();
        let mut editor = rustyline::DefaultEditor::with_config(config)?;
        editor.bind_sequence(
            KeyEvent::ctrl('C'),
            EventHandler::Conditional(Box::new(CtrlC)),
        );
        let printer = editor.create_external_printer()?;
        let thread = thread::Builder::new()
            .name("line-editor".into())
            .spawn(move || {
                loop {
                    let (typed_now, last) = match editor.readline(PROMPT) {
                        // After /quit the editor stops, so the goodbye prints straight out.
                        Ok(line) => (Typed::Line(line.clone()), super::is_quit(&line)),
                        // The window resized: the editor draws the prompt again.
                        Err(ReadlineError::Signal(Signal::Resize)) => continue,
                        // Ctrl-C, Ctrl-D, or an interrupt from outside (as Ctrl-C on an empty
                        // line): the end.
                        Err(
                            ReadlineError::Interrupted
                            | ReadlineError::Eof
                            | ReadlineError::Signal(_),
                        ) => (Typed::End, true),
                        // Keys that are not UTF-8: in life, half of a wide character, erased
                        // by the terminal's own line editing while the editor was between two
                        // lines (it gives the terminal back its ordinary mode there). They cost
                        // the line being typed, not the session. (The editor is not reading, so
                        // this prints straight out.)
                        Err(ReadlineError::Io(error))
                            if error.kind() == io::ErrorKind::InvalidData =>
                        {
                            eprintln!("*** That line was not valid UTF-8; it was not sent.");
                            continue;
                        }
                        Err(error) => {
                            eprintln!("*** The line editor failed ({error}); leaving.");
                            (Typed::End, true)
                        }
                    };
                    if typed.send_blocking(typed_now).is_err() || last {
                        return;
                    }
                }
            })?;
        Ok((Output::Printer(Box::new(printer)), Self { saved, thread }))
    }

    /// Puts the terminal back the way it was and ends the prompt's line.
    pub(crate) fn restore(self) {
        if !self.thread.is_finished() {
            thread::sleep(LAST_PRINT_GRACE);
        }
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(io::stdin(), OptionalActions::Now, saved);
        }
        let _ = io::stdout().write_all(b"\r\n");
        let _ = io::stdout().flush();
    }
}

/// Ctrl-C leaves on an empty line and clears a half-typed one.
struct CtrlC;

impl ConditionalEventHandler for CtrlC {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext<'_>) -> Option<Cmd> {
        Some(if ctx.line().is_empty() {
            Cmd::Interrupt
        } else {
            Cmd::Kill(Movement::WholeLine)
        })
    }
}

/// Reads stdin line by line on its own thread, in order, then sends [`Typed::End`].
pub(crate) fn read_stdin(typed: Sender<Typed>) {
    let spawned = thread::Builder::new().name("stdin".into()).spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if typed.send_blocking(Typed::Line(line)).is_err() {
                return;
            }
        }
        let _ = typed.send_blocking(Typed::End);
    });
    if let Err(error) = spawned {
        eprintln!("chat-runner: cannot read stdin: {error}");
    }
}
