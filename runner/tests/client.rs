//! The client (`chat-runner --connect`) against the real server: in a pseudo-terminal, read
//! through a terminal emulator so the prompt, the redraw and the cursor are what a person
//! would see; and in pipe mode, as a script would use it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chat_tests::{Server, WAIT, wait_until};
use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

const ROWS: u16 = 24;
const COLS: u16 = 100;

/// The client running in a pseudo-terminal, its output fed to a vt100 emulator.
struct Terminal {
    child: Box<dyn Child + Send + Sync>,
    keyboard: Box<dyn Write + Send>,
    screen: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
    _master: Box<dyn MasterPty + Send>,
}

impl Terminal {
    /// Starts `chat-runner --connect addr` with `args` in a 24x100 terminal.
    fn connect(addr: SocketAddr, args: &[&str], env: &[(&str, &str)]) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("opening a pty");
        let mut command = CommandBuilder::new(RUNNER);
        command.args(["--connect", &addr.to_string()]);
        command.args(args);
        command.env("TERM", "xterm-256color");
        command.env_remove("NO_COLOR");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = pair
            .slave
            .spawn_command(command)
            .expect("spawning the client");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let keyboard = pair.master.take_writer().expect("pty writer");
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            ROWS.try_into().unwrap(),
            COLS.try_into().unwrap(),
            0,
        )));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (screen_in, raw_in) = (Arc::clone(&screen), Arc::clone(&raw));
        thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(read) = reader.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                screen_in.lock().unwrap().process(&buffer[..read]);
                raw_in.lock().unwrap().extend_from_slice(&buffer[..read]);
            }
        });
        Self {
            child,
            keyboard,
            screen,
            raw,
            _master: pair.master,
        }
    }

    fn press(&mut self, keys: &str) {
        self.press_bytes(keys.as_bytes());
    }

    /// Types `keys` as they are, UTF-8 or not.
    fn press_bytes(&mut self, keys: &[u8]) {
        self.keyboard.write_all(keys).expect("typing");
        self.keyboard.flush().expect("typing");
    }

    /// The visible rows, trailing blanks trimmed.
    fn rows(&self) -> Vec<String> {
        let screen = self.screen.lock().unwrap();
        screen
            .screen()
            .rows(0, COLS)
            .map(|row| row.trim_end().to_owned())
            .collect()
    }

    fn cursor(&self) -> (u16, u16) {
        self.screen.lock().unwrap().screen().cursor_position()
    }

    /// The text of the row the cursor is on: the prompt and the half-typed line.
    fn prompt_line(&self) -> String {
        self.rows()[usize::from(self.cursor().0)].clone()
    }

    fn raw(&self) -> Vec<u8> {
        self.raw.lock().unwrap().clone()
    }

    /// Waits until the screen satisfies `ready`.
    fn wait_for(&self, what: &str, ready: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let rows = self.rows();
            if ready(&rows) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what}; the screen:\n{}",
                rows.join("\n")
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until some row contains `text`.
    fn expect(&self, text: &str) {
        self.wait_for(&format!("{text:?}"), |rows| {
            rows.iter().any(|row| row.contains(text))
        });
    }

    /// Waits until the line editor shows a fresh, empty prompt: it is reading keys again.
    ///
    /// Between two lines the editor gives the terminal back its ordinary (cooked) mode, and
    /// only draws the next prompt once it has taken raw mode again. Keys typed meanwhile go
    /// through the kernel's line discipline: echoed, and edited by its own rules (its erase
    /// takes one byte of a wide character, and the editor then reads invalid UTF-8). A person
    /// types at the prompt; so does a test, after each line it sends.
    fn expect_ready(&self) {
        self.expect_prompt(">>");
    }

    /// Waits until the prompt line is exactly `line`.
    fn expect_prompt(&self, line: &str) {
        let deadline = Instant::now() + WAIT;
        while self.prompt_line() != line {
            assert!(
                Instant::now() < deadline,
                "the prompt line is {:?}, not {line:?}; the screen:\n{}",
                self.prompt_line(),
                self.rows().join("\n")
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn expect_exit(&mut self) -> u32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the client") {
                return status.exit_code();
            }
            assert!(
                Instant::now() < deadline,
                "the client did not exit; the screen:\n{}",
                self.rows().join("\n")
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client in a terminal that has joined as `alice` on a plain-text server, seen by `bob`
/// (whose notices about alice are taken, so his next line is whatever alice says next).
fn alice_in_a_terminal(server: &Server, bob: &mut chat_tests::Client) -> Terminal {
    let mut alice = Terminal::connect(server.addr(), &[], &[]);
    alice.expect("#lobby (");
    alice.expect_prompt(">>");
    alice.press("/nick alice\r");
    alice.expect("You are now known as alice.");
    bob.expect_line("is now known as alice");
    alice.expect_ready();
    alice
}

#[test]
fn banner_prompt_and_colours_on_a_terminal() {
    let server = Server::start(RUNNER, &[]);
    let mut term = Terminal::connect(server.addr(), &[], &[]);
    term.expect("Welcome to the chat!");
    term.expect("#lobby (1): anonymous-1 (you)");
    term.expect_prompt(">>");
    // The server's yellow "***" arrives as colour, not as escape text.
    let screen = term.screen.lock().unwrap();
    let cell = screen.screen().cell(0, 0).expect("a cell");
    assert_eq!(cell.contents(), "*");
    assert_eq!(cell.fgcolor(), vt100::Color::Idx(3));
    drop(screen);
    term.press("/nick alice\r");
    term.expect("You are now known as alice.");
}

#[test]
fn no_color_flag_and_the_no_color_variable_turn_colours_off() {
    let server = Server::start(RUNNER, &[]);
    for (args, env) in [
        (&["--no-color"][..], &[][..]),
        (&[][..], &[("NO_COLOR", "1")][..]),
    ] {
        let term = Terminal::connect(server.addr(), args, env);
        term.expect("#lobby (");
        let screen = term.screen.lock().unwrap();
        let cell = screen.screen().cell(0, 0).expect("a cell");
        assert_eq!(cell.contents(), "*");
        assert_eq!(cell.fgcolor(), vt100::Color::Default, "{args:?} {env:?}");
        drop(screen);
        assert!(
            !term.raw().windows(4).any(|w| w == b"\x1b[33"),
            "{args:?} {env:?}"
        );
    }
}

#[test]
fn lines_arrive_above_a_half_typed_line_which_stays_intact() {
    let server = Server::plain(RUNNER, &[]);
    let mut bob = server.join("bob");
    let mut alice = alice_in_a_terminal(&server, &mut bob);
    alice.press("half typed 中文");
    alice.expect_prompt(">> half typed 中文");
    for n in 1..=3 {
        bob.send_line(&format!("message {n} from bob"));
    }
    alice.expect("bob: message 3 from bob");
    // Each message is a whole row above the prompt, in order; the prompt and the half-typed
    // line are redrawn below them with the cursor at its end (CJK characters are two wide).
    let rows = alice.rows();
    let at = rows
        .iter()
        .position(|row| row == "bob: message 1 from bob")
        .expect("message 1");
    assert_eq!(rows[at + 1], "bob: message 2 from bob");
    assert_eq!(rows[at + 2], "bob: message 3 from bob");
    assert_eq!(rows[at + 3], ">> half typed 中文");
    assert_eq!(alice.cursor(), (u16::try_from(at + 3).unwrap(), 3 + 11 + 4));
    // The line is still being edited: go to its start, insert, send.
    alice.press("\x01X\r");
    assert_eq!(bob.next_line(), "alice: Xhalf typed 中文");
}

/// Keys that are not UTF-8 (here a lone 0xFF byte; in life, half of a wide character that the
/// terminal's own erase left while the editor was between two prompts) cost the line being
/// typed, with a note, not the session: the client used to quit on them.
#[test]
fn keys_that_are_not_utf8_drop_the_line_not_the_client() {
    let server = Server::plain(RUNNER, &[]);
    let mut bob = server.join("bob");
    let mut alice = alice_in_a_terminal(&server, &mut bob);
    alice.press_bytes(b"half a \xff");
    alice.expect("That line was not valid UTF-8; it was not sent.");
    alice.expect_ready();
    alice.press("still here\r");
    assert_eq!(bob.next_line(), "alice: still here");
}

#[test]
fn editing_keys_and_history() {
    let server = Server::plain(RUNNER, &[]);
    let mut bob = server.join("bob");
    let mut alice = alice_in_a_terminal(&server, &mut bob);
    // Ctrl-W deletes the word before the cursor.
    alice.press("hello world\x17there\r");
    assert_eq!(bob.next_line(), "alice: hello there");
    // Up recalls the last line (once the editor reads keys again: see `expect_ready`).
    alice.expect_ready();
    alice.press("\x1b[A");
    alice.expect_prompt(">> hello there");
    alice.press("\r");
    assert_eq!(bob.next_line(), "alice: hello there");
    // Left arrows, then Ctrl-E to the end.
    alice.expect_ready();
    alice.press("abc\x1b[D\x1b[DX\x05Y\r");
    assert_eq!(bob.next_line(), "alice: aXbcY");
    // Wide characters: delete one with backspace.
    alice.expect_ready();
    alice.press("你好吗\x7f\r");
    assert_eq!(bob.next_line(), "alice: 你好");
}

#[test]
fn ctrl_c_clears_a_half_typed_line_and_leaves_on_an_empty_one() {
    let server = Server::plain(RUNNER, &[]);
    let mut bob = server.join("bob");
    let mut alice = alice_in_a_terminal(&server, &mut bob);
    alice.press("a draft");
    alice.expect_prompt(">> a draft");
    alice.press("\x03");
    alice.expect_prompt(">>");
    assert!(bob.sync().is_empty(), "the draft was not sent");
    alice.press("\x03");
    assert_eq!(alice.expect_exit(), 0);
    bob.expect_line("*** alice left (quit)");
}

#[test]
fn ctrl_d_and_quit_leave_cleanly() {
    let server = Server::plain(RUNNER, &[]);
    let mut bob = server.join("bob");
    let mut alice = alice_in_a_terminal(&server, &mut bob);
    alice.press("\x04");
    assert_eq!(alice.expect_exit(), 0);
    bob.expect_line("*** alice left (quit)");

    let mut alice = alice_in_a_terminal(&server, &mut bob);
    alice.press("/quit see you\r");
    alice.expect("Goodbye!");
    assert_eq!(alice.expect_exit(), 0);
    bob.expect_line("*** alice left (quit: see you)");
}

#[test]
fn when_the_server_goes_away_the_client_says_so_and_fails() {
    let server = Server::plain(RUNNER, &[]);
    let mut bob = server.join("bob");
    let mut alice = alice_in_a_terminal(&server, &mut bob);
    drop(server);
    alice.expect("the server closed the connection");
    assert_ne!(alice.expect_exit(), 0);
}

#[test]
fn reconnect_backs_off_and_takes_the_nickname_back() {
    let server = Server::plain(RUNNER, &[]);
    let addr = server.addr();
    let mut alice = Terminal::connect(addr, &["--reconnect"], &[]);
    alice.expect("#lobby (");
    alice.press("/nick alice\r");
    alice.expect("You are now known as alice.");
    drop(server);
    alice.expect("reconnecting in");
    let server = Server::start_at(RUNNER, &addr.to_string(), &["--no-color"]);
    alice.wait_for("the nickname taken back", |rows| {
        rows.iter()
            .filter(|row| row.contains("You are now known as alice."))
            .count()
            == 2
    });
    let mut bob = server.connect();
    bob.send_line("/list");
    bob.expect_line("*** #lobby (2): alice, anonymous-2 (you)");
    alice.press("back again\r");
    bob.expect_line("alice: back again");
}

#[test]
fn control_sequences_from_the_network_never_reach_the_terminal() {
    // A hostile server, so the client's own filter is what is tested.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hostile = thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        socket
            .write_all(b"\x1b[2J\x1b]0;pwned\x07\x1b[31mred\x1b[0m \xc2\x9b ok \xe2\x80\xae!\r\n")
            .unwrap();
        thread::sleep(Duration::from_secs(2));
    });
    let term = Terminal::connect(addr, &[], &[]);
    term.expect("^[[2J^[]0;pwned^Gred");
    let raw = term.raw();
    let shown = "red\x1b[0m \u{fffd} ok \u{fffd}!".as_bytes();
    assert!(
        raw.windows(shown.len()).any(|w| w == shown),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    for bad in [
        &b"\x1b[2J"[..],
        b"\x1b]0",
        b"\x07",
        b"\xc2\x9b",
        b"\xe2\x80\xae",
    ] {
        assert!(
            !raw.windows(bad.len()).any(|w| w == bad),
            "{bad:?} reached the terminal"
        );
    }
    // The colour it understands does get through.
    assert!(raw.windows(5).any(|w| w == b"\x1b[31m"));
    hostile.join().unwrap();
}

// ----- Pipe mode -----

/// Runs the client with `input` on stdin and waits for it to exit; returns (status, stdout,
/// stderr).
fn run_piped(addr: SocketAddr, input: &str) -> (i32, String, String) {
    chat_tests::run_with_input(RUNNER, &["--connect", &addr.to_string()], input, WAIT)
}

#[test]
fn pipe_mode_sends_lines_in_order_and_exits_once_answered() {
    let server = Server::start(RUNNER, &[]); // colour on: the client must still print plain text
    let mut bob = server.join("bob");
    let (status, stdout, stderr) = run_piped(
        server.addr(),
        "/nick scripted\none\ntwo\n/msg bob psst\n/list\n",
    );
    assert_eq!(status, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let tail = &lines[lines.len() - 2..];
    assert_eq!(
        tail,
        [
            "[private] to bob: psst",
            "*** #lobby (2): bob, scripted (you)"
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("*** You are now known as scripted."),
        "{stdout}"
    );
    assert!(
        !stdout.contains("pong"),
        "the client's own ping is not shown: {stdout}"
    );
    assert!(
        !stdout.contains('\x1b'),
        "no colour into a pipe: {stdout:?}"
    );
    bob.expect_line("scripted\x1b[0m: one");
    bob.expect_line("scripted\x1b[0m: two");
    bob.expect_line("psst");
    bob.expect_line("scripted\x1b[0m left");
}

#[test]
fn the_client_connects_over_ipv6_and_by_host_name() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    }
    let server = Server::start_at(RUNNER, "[::1]:0", &["--no-color"]);
    let (status, stdout, stderr) = run_piped(server.addr(), "/nick six\n");
    assert_eq!(status, 0, "{stderr}");
    assert!(stdout.contains("*** You are now known as six."), "{stdout}");

    let server = Server::plain(RUNNER, &[]);
    let by_name = format!("localhost:{}", server.addr().port());
    let output = Command::new(RUNNER)
        .args(["--connect", &by_name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(b"/nick named\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("You are now known as named."));
}

#[test]
fn pipe_mode_quit() {
    let server = Server::plain(RUNNER, &[]);
    let (status, stdout, _) = run_piped(server.addr(), "/quit done\n");
    assert_eq!(status, 0);
    assert!(stdout.ends_with("*** Goodbye!\n"), "{stdout}");
}

#[test]
fn cannot_connect_fails_with_a_message() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (status, _, stderr) = run_piped(addr, "hello\n");
    assert_eq!(status, 1);
    assert!(
        stderr.contains(&format!("cannot connect to {addr}")),
        "{stderr}"
    );
}

#[test]
fn pipe_mode_fails_when_the_server_never_answers() {
    // Accepts and says nothing: the script's lines are never confirmed.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mute = thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        thread::sleep(Duration::from_secs(5));
        drop(socket);
    });
    let (status, _, stderr) = run_piped(addr, "hello\n");
    assert_eq!(status, 1);
    assert!(
        stderr.contains("the server did not answer within 3 s"),
        "{stderr}"
    );
    mute.join().unwrap();
}

#[test]
fn reconnecting_client_leaves_at_the_end_of_input_while_disconnected() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mut child = Command::new(RUNNER)
        .args(["--connect", &addr.to_string(), "--reconnect"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the client to give up", || {
        child.try_wait().unwrap().is_some()
    });
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("reconnecting in 0.5 s"), "{stderr}");
}

#[test]
fn pipe_mode_when_the_server_goes_away() {
    let server = Server::plain(RUNNER, &[]);
    let mut child = Command::new(RUNNER)
        .args(["--connect", &server.addr().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"/nick waiting\n").unwrap();
    server.expect_log("is now waiting");
    drop(server);
    wait_until("the client to exit", || child.try_wait().unwrap().is_some());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the server closed the connection"),
        "{stderr}"
    );
    drop(stdin);
}
