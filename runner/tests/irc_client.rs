//! A real IRC client against `chat-runner`: the `irc` package from PyPI (jaraco/irc, a client
//! library nobody here wrote), driven by `runner/tests/python/irc_client_e2e.py`, talks over loopback
//! with a plain-text user driven from here, in both directions: registration, rooms, lines,
//! private messages, actions, nick changes, parts, quits and a 401.
//!
//! Each scenario is checked where its effect lands: what reaches the IRC client is checked by
//! the Python script (which reports each scenario as a JSON line and exits nonzero on the first
//! one that fails), what reaches the plain-text user is checked here. The script says when it is
//! ready for the plain-text user's next move (`{"ready": STEP}` on its stdout); the test waits
//! for that before acting, and the script in turn waits for the IRC events the move causes.
//!
//! The interpreter is `$CHAT_PYTHON`, else `python3`, as for the parser vectors
//! (`irc_vectors.rs`). Without the package the test is skipped, loudly, unless
//! `CHAT_REQUIRE_PYTHON=1` (which `.ci/run` sets once it has installed it), so CI can never
//! pass by skipping it.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chat_tests::{Client, Server};
use serde_json::{Value, json};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// Exits with status 3 when `irc` cannot be imported: the one failure that means "not
/// installed" rather than "broken".
const PROBE: &str = r#"
import sys
try:
    import irc.client
except ImportError as error:
    print(error, file=sys.stderr)
    sys.exit(3)
"#;

const NOT_INSTALLED: i32 = 3;

/// The longest the script may run before it is killed and the test fails. It gives up by
/// itself after 20 s, so this only catches a hung interpreter.
const SCRIPT_LIMIT: Duration = Duration::from_secs(30);

// Who is who, and what is said. The script gets these as its plan, so both sides agree.
const IRC: &str = "pyirc";
const IRC_RENAMED: &str = "pyirc2";
const PLAIN: &str = "plainpat";
const PLAIN_RENAMED: &str = "plainpat2";
const QUITTER: &str = "plainquitter";
const ROOM: &str = "#e2e";
const MISSING: &str = "nobodyhere";
const FROM_PLAIN: &str = "hello from the plain side, café";
const TO_PLAIN: &str = "hello from IRC, naïve";
const PRIVATE_FROM_PLAIN: &str = "psst, IRC";
const PRIVATE_TO_PLAIN: &str = "psst back, plain";
const ACTION_FROM_PLAIN: &str = "waves";
const ACTION_TO_PLAIN: &str = "dances a jig";
/// One word: the library's `part()` sends its message as a middle parameter, without the `:`
/// that `quit()` puts before its own, so of `PART #lobby two words` a server rightly takes only
/// `two` as the reason.
const PART_REASON: &str = "brb";
const PLAIN_QUIT_REASON: &str = "off to lunch";
const QUIT_REASON: &str = "gone for good";

/// The scenarios the script must report as passed, every one of them.
const CHECKS: [&str; 16] = [
    "register",
    "autojoin_lobby",
    "join_room",
    "channel_from_plain",
    "private_from_plain",
    "action_from_plain",
    "chathistory",
    "nick_change",
    "nick_from_plain",
    "no_such_nick",
    "part",
    "part_from_plain",
    "join_from_plain",
    "quit_from_plain",
    "no_unexpected_errors",
    "quit",
];

#[test]
fn a_real_irc_client_and_plain_text_users_talk_both_ways() {
    let Some(python) = python_with_irc() else {
        return;
    };
    // With a greeting delay, an IRC client registers before any plain-text welcome is due,
    // and so never gets one (with 0 its first lines would be the plain welcome).
    let server = Server::start(RUNNER, &["--no-color", "--greeting-delay", "400"]);
    let mut plain = server.join(PLAIN);
    let mut script = Script::start(&python, &server);

    // Registration put the IRC client in #lobby, where the plain-text user sees it arrive.
    script.ready("channel_from_plain");
    expect(&mut plain, &format!("*** {IRC} joined #lobby (2 here)"));
    plain.send_line(FROM_PLAIN);

    // The IRC client's PRIVMSG to #lobby reads like anyone's line.
    script.ready("private_from_plain");
    expect(&mut plain, &format!("{IRC}: {TO_PLAIN}"));
    plain.send_line(&format!("/msg {IRC} {PRIVATE_FROM_PLAIN}"));
    expect(
        &mut plain,
        &format!("[private] to {IRC}: {PRIVATE_FROM_PLAIN}"),
    );

    // Its PRIVMSG to the plain-text user's nickname is a private message.
    script.ready("action_from_plain");
    expect(&mut plain, &format!("[private] {IRC}: {PRIVATE_TO_PLAIN}"));
    plain.send_line(&format!("/me {ACTION_FROM_PLAIN}"));

    // Its CTCP ACTION is an action line; its NICK a rename.
    script.ready("nick_from_plain");
    expect(&mut plain, &format!("* {IRC} {ACTION_TO_PLAIN}"));
    expect(
        &mut plain,
        &format!("*** {IRC} is now known as {IRC_RENAMED}"),
    );
    plain.send_line(&format!("/nick {PLAIN_RENAMED}"));
    expect(
        &mut plain,
        &format!("*** You are now known as {PLAIN_RENAMED}."),
    );

    // Its PART of #lobby, with a reason, and its JOIN back.
    script.ready("part_from_plain");
    expect(
        &mut plain,
        &format!("*** {IRC_RENAMED} left #lobby ({PART_REASON})"),
    );
    expect(
        &mut plain,
        &format!("*** {IRC_RENAMED} joined #lobby (2 here)"),
    );
    plain.send_line("/part");
    expect(&mut plain, "*** You left #lobby.");

    script.ready("join_from_plain");
    plain.send_line("/join #lobby");
    expect(&mut plain, "*** You are now talking in #lobby.");

    // A second plain-text user comes in only to /quit, so that the first is still there to
    // see the IRC client quit.
    script.ready("quit_from_plain");
    let mut quitter = server.join(QUITTER);
    let renamed = format!(" is now known as {QUITTER}");
    expect_where(&mut plain, &format!("*** anonymous-N{renamed}"), |line| {
        line.starts_with("*** anonymous-") && line.ends_with(&renamed)
    });
    quitter.send_line(&format!("/quit {PLAIN_QUIT_REASON}"));
    expect(&mut quitter, "*** Goodbye!");
    quitter.expect_closed();
    expect(
        &mut plain,
        &format!("*** {QUITTER} left (quit: {PLAIN_QUIT_REASON})"),
    );

    // The IRC client's QUIT, with its message.
    expect(
        &mut plain,
        &format!("*** {IRC_RENAMED} left (quit: {QUIT_REASON})"),
    );

    script.finish();

    // Nothing the plain-text user did was refused: the ping makes sure every reply is in.
    plain.send_line("/ping done");
    expect(&mut plain, "*** pong done");
    let received = String::from_utf8_lossy(plain.received()).into_owned();
    let errors: Vec<&str> = received
        .lines()
        .filter(|line| line.starts_with("*** error"))
        .collect();
    assert!(
        errors.is_empty(),
        "the plain-text user got errors: {errors:#?}"
    );
}

/// Skips lines until exactly `line` arrives.
#[track_caller]
fn expect(client: &mut Client, line: &str) {
    expect_where(client, line, |got| got == line);
}

/// Skips lines until one satisfies `matches`; `what` names it in the failure message.
#[track_caller]
fn expect_where(client: &mut Client, what: &str, matches: impl Fn(&str) -> bool) {
    client.expect_line_where(matches, &format!("the line {what:?}"));
}

/// The plan handed to the script: everyone's names and everything said.
fn plan() -> Value {
    json!({
        "nick": IRC,
        "new_nick": IRC_RENAMED,
        "plain": PLAIN,
        "plain_new": PLAIN_RENAMED,
        "quitter": QUITTER,
        "room": ROOM,
        "missing": MISSING,
        "from_plain": FROM_PLAIN,
        "to_plain": TO_PLAIN,
        "private_from_plain": PRIVATE_FROM_PLAIN,
        "private_to_plain": PRIVATE_TO_PLAIN,
        "action_from_plain": ACTION_FROM_PLAIN,
        "action_to_plain": ACTION_TO_PLAIN,
        "part_reason": PART_REASON,
        "plain_quit_reason": PLAIN_QUIT_REASON,
        "quit_reason": QUIT_REASON,
    })
}

/// The running script: its stdout as JSON lines arriving on a channel, its stderr collected.
/// Killed when dropped; if the test is failing by then, everything it printed is shown.
#[derive(Debug)]
struct Script {
    child: Child,
    started: Instant,
    lines: Receiver<String>,
    /// Every stdout line taken from `lines` so far.
    transcript: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Script {
    fn start(python: &OsString, server: &Server) -> Self {
        let path = script_path();
        let addr = server.addr();
        let mut child = Command::new(python)
            .arg(&path)
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .arg(plan().to_string())
            // UTF-8 for the plan in argv and the JSON on stdout, whatever the locale.
            .env("PYTHONUTF8", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("running {} {}: {error}", python.display(), path.display())
            });

        let (sender, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut pipe = child.stderr.take().expect("piped stderr");
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            sink.lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .push_str(&text);
        });
        Self {
            child,
            started: Instant::now(),
            lines,
            transcript: Vec::new(),
            stderr,
        }
    }

    /// The next stdout line, parsed, or `None` once stdout has ended; fails past
    /// [`SCRIPT_LIMIT`].
    fn next(&mut self, waiting_for: &str) -> Option<Value> {
        let left = SCRIPT_LIMIT.saturating_sub(self.started.elapsed());
        let line = match self.lines.recv_timeout(left) {
            Ok(line) => line,
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "the script was still running after {SCRIPT_LIMIT:?}, waiting for {waiting_for}"
                )
            }
        };
        self.transcript.push(line.clone());
        let value = serde_json::from_str(&line).unwrap_or_else(|error| {
            panic!("the script printed a line that is not JSON ({error}): {line:?}")
        });
        Some(value)
    }

    /// Waits until the script says it is ready for the plain-text user's `step`.
    #[track_caller]
    fn ready(&mut self, step: &str) {
        let waiting_for = format!("{{\"ready\": {step:?}}}");
        while let Some(value) = self.next(&waiting_for) {
            if value["ready"] == step {
                return;
            }
            if value["check"].is_string() && value["ok"] != true {
                panic!("the script failed a check before {step}: {value}");
            }
        }
        let status = self.wait();
        panic!("the script ended ({status}) before it was ready for {step}");
    }

    /// Waits for the script to end: the rest of its output, then its exit. Checks that it
    /// exited with 0 and reported every scenario as passed.
    fn finish(&mut self) {
        while self.next("the script's end").is_some() {}
        let status = self.wait();
        assert!(status.success(), "the script failed ({status})");
        let values: Vec<Value> = self
            .transcript
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        let failed: Vec<&Value> = values
            .iter()
            .filter(|value| value["check"].is_string() && value["ok"] != true)
            .collect();
        assert!(
            failed.is_empty(),
            "the script reported failures: {failed:#?}"
        );
        for check in CHECKS {
            assert!(
                values
                    .iter()
                    .any(|value| value["check"] == check && value["ok"] == true),
                "the script did not report {check:?} as passed"
            );
        }
        assert!(
            values.iter().any(|value| value["done"] == true),
            "the script did not say it was done"
        );
    }

    /// Waits for the process to exit, killing it past [`SCRIPT_LIMIT`].
    fn wait(&mut self) -> ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the script") {
                return status;
            }
            if self.started.elapsed() > SCRIPT_LIMIT {
                let _ = self.child.kill();
                panic!("the script was still running after {SCRIPT_LIMIT:?}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the script printed, for failure messages.
    fn report(&self) -> String {
        // Give the stderr thread a moment to take the last of it.
        thread::sleep(Duration::from_millis(50));
        let stderr = self
            .stderr
            .lock()
            .map(|text| text.clone())
            .unwrap_or_else(|poison| poison.into_inner().clone());
        format!(
            "the script's stdout:\n{}\nits stderr:\n{stderr}",
            self.transcript.join("\n")
        )
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            // Whatever is still in the pipe belongs in the report too.
            while let Ok(line) = self.lines.try_recv() {
                self.transcript.push(line);
            }
            eprintln!("{}", self.report());
        }
    }
}

fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/irc_client_e2e.py")
}

/// The Python to run the script with, or `None` when it has no `irc` package and need not
/// (the test is then skipped with a message that cannot be missed).
fn python_with_irc() -> Option<OsString> {
    let python = std::env::var_os("CHAT_PYTHON").unwrap_or_else(|| OsString::from("python3"));
    let shown = python.to_string_lossy().into_owned();
    let unavailable = match Command::new(&python).args(["-c", PROBE]).output() {
        Err(error) => format!("{shown} could not be run: {error}"),
        Ok(output) if output.status.success() => return Some(python),
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stderr = stderr.trim();
            // Anything but a failed import means the package is there but broken: that must
            // fail even where the package is optional.
            assert_eq!(
                output.status.code(),
                Some(NOT_INSTALLED),
                "importing irc with {shown} failed ({}):\n{stderr}",
                output.status
            );
            format!("{shown} cannot import irc: {stderr}")
        }
    };
    chat_tests::skip_unless_required(
        "CHAT_REQUIRE_PYTHON",
        "the end-to-end test with a real IRC client",
        &unavailable,
        &format!(
            "install the package with `{shown} -m pip install irc`, or set CHAT_PYTHON to a \
             Python that has it (.ci/run makes one in target/ci-venv)"
        ),
    );
    None
}
