//! The shared IRC parser test vectors (PyPI's `irc-parser-tests`, from ircdocs/parser-tests)
//! run against `chat_core::irc`: `msg-split` through [`Message::parse`], `msg-join` through
//! [`Message`]'s `Display`, `userhost-split` through [`Source::parse`].
//!
//! The vectors ship as YAML inside a Python package, so a Python interpreter loads them and
//! hands them over as JSON: that keeps a copy of the vectors (and a YAML parser) out of this
//! repository, and an upgrade of the package brings new vectors in. The interpreter is
//! `$CHAT_PYTHON`, else `python3`. Without the package the test is skipped, loudly, unless
//! `CHAT_REQUIRE_PYTHON=1` (which `.ci/run` sets once it has installed the package), so CI can
//! never pass by skipping it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::process::Command;

use chat_core::irc::{EscapedTagValue, Message, Source};
use serde_json::Value;

/// The vector files as one JSON object, with the package's own count of each so that the test
/// can tell it walked every vector. Exits with status 3 when the package cannot be imported: the
/// one failure that means "not installed" rather than "broken".
const LOAD_VECTORS: &str = r#"
import json, sys
try:
    from parser_tests import data
except ImportError as error:
    print(error, file=sys.stderr)
    sys.exit(3)
files = {"msg-split": data.msg_split, "msg-join": data.msg_join, "userhost-split": data.userhost_split}
json.dump({
    "files": files,
    "counts": {name: len(file["tests"]) for name, file in files.items()},
}, sys.stdout)
"#;

const NOT_INSTALLED: u8 = 3;

/// Checks one vector; the error says what differed.
type Check = fn(&Value) -> Result<(), String>;

#[test]
fn the_shared_irc_parser_test_vectors_pass() {
    let Some(vectors) = load_vectors() else {
        return;
    };
    // Every failure is collected first, so that one run lists them all.
    let mut failures = Vec::new();
    let checks: [(&str, Check); 3] = [
        ("msg-split", check_split),
        ("msg-join", check_join),
        ("userhost-split", check_userhost),
    ];
    let mut counts = Vec::new();
    for (file, check) in checks {
        let tests = vectors["files"][file]["tests"]
            .as_array()
            .unwrap_or_else(|| panic!("{file} has no list of tests"));
        for (index, vector) in tests.iter().enumerate() {
            if let Err(why) = check(vector) {
                failures.push(format!("{file} #{index} {}: {why}", describe(vector)));
            }
        }
        counts.push((file, tests.len()));
    }

    let summary = counts
        .iter()
        .map(|(file, count)| format!("{count} {file}"))
        .collect::<Vec<_>>()
        .join(", ");
    // Straight to stderr rather than through eprintln!, which the test harness captures: the
    // counts belong in CI's log even when the test passes.
    let _ = writeln!(
        std::io::stderr(),
        "irc-parser-tests: checked {summary} vectors"
    );

    assert!(
        failures.is_empty(),
        "{} IRC parser test vector(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for (file, count) in counts {
        assert!(count > 0, "irc-parser-tests has no {file} vectors");
        assert_eq!(
            Some(count as u64),
            vectors["counts"][file].as_u64(),
            "{file}: the count checked differs from the package's"
        );
    }
}

/// The vectors, or `None` when the package is not there and need not be (the test is then
/// skipped with a message that cannot be missed).
fn load_vectors() -> Option<Value> {
    let python = std::env::var_os("CHAT_PYTHON").unwrap_or_else(|| OsString::from("python3"));
    let shown = python.to_string_lossy().into_owned();
    let unavailable = match Command::new(&python).args(["-c", LOAD_VECTORS]).output() {
        Err(error) => format!("{shown} could not be run: {error}"),
        Ok(output) if output.status.success() => {
            return Some(
                serde_json::from_slice(&output.stdout)
                    .expect("the vectors loaded by Python are valid JSON"),
            );
        }
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stderr = stderr.trim();
            // Anything but a failed import means the package is there but broken (or the
            // loader is): that must fail even where the package is optional.
            assert_eq!(
                output.status.code(),
                Some(NOT_INSTALLED.into()),
                "loading the IRC parser test vectors with {shown} failed ({}):\n{stderr}",
                output.status
            );
            format!("{shown} cannot import parser_tests: {stderr}")
        }
    };
    chat_tests::skip_unless_required(
        "CHAT_REQUIRE_PYTHON",
        "the shared IRC parser test vectors",
        &unavailable,
        &format!(
            "install them with `{shown} -m pip install irc-parser-tests`, or set CHAT_PYTHON \
             to a Python that has them (.ci/run makes one in target/ci-venv)"
        ),
    );
    None
}

/// How a failing vector is named: its description, else its input.
fn describe(vector: &Value) -> String {
    ["desc", "input", "source"]
        .into_iter()
        .find_map(|key| vector[key].as_str())
        .map_or_else(|| vector.to_string(), |text| format!("{text:?}"))
}

/// `input` parses into exactly the `atoms`.
fn check_split(vector: &Value) -> Result<(), String> {
    let input = text(&vector["input"], "input")?;
    let atoms = &vector["atoms"];
    let message = Message::parse(input).map_err(|error| format!("does not parse: {error}"))?;

    // A map, so that a key given twice keeps its last value, as the vectors require.
    let tags = message.tags.map(|_| {
        message
            .tags()
            .map(|(key, value)| (key.to_owned(), value.to_string()))
            .collect::<BTreeMap<_, _>>()
    });
    let expected_tags = tag_map(&atoms["tags"])?.map(|tags| {
        tags.into_iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    });

    let mut wrong = Vec::new();
    compare(&mut wrong, "tags", expected_tags, tags);
    compare(
        &mut wrong,
        "source",
        optional_text(&atoms["source"], "source")?,
        message.source,
    );
    compare(
        &mut wrong,
        "verb",
        text(&atoms["verb"], "verb")?,
        message.verb,
    );
    compare(
        &mut wrong,
        "params",
        texts(&atoms["params"], "params")?,
        message.params.to_vec(),
    );
    verdict(wrong)
}

/// The `atoms` are written as one of the `matches`.
fn check_join(vector: &Value) -> Result<(), String> {
    let atoms = &vector["atoms"];
    // serde_json's map keeps keys sorted, so tags come out in one fixed order; the vectors
    // list every order of their tags among the matches. A tag with an empty value is written
    // as its key alone, as the vectors expect (`@asd :coolguy ...`).
    let tags = tag_map(&atoms["tags"])?
        .map(|tags| {
            tags.into_iter()
                .map(|(key, value)| match value {
                    "" => key.to_owned(),
                    value => format!("{key}={}", EscapedTagValue(value)),
                })
                .collect::<Vec<_>>()
                .join(";")
        })
        .filter(|tags| !tags.is_empty());
    let mut message = Message {
        tags: tags.as_deref(),
        source: optional_text(&atoms["source"], "source")?,
        verb: text(&atoms["verb"], "verb")?,
        params: Default::default(),
    };
    for param in texts(&atoms["params"], "params")? {
        message
            .params
            .push(param)
            .map_err(|_| "more parameters than a Message holds".to_owned())?;
    }

    let written = message.to_string();
    let matches = texts(&vector["matches"], "matches")?;
    if matches.is_empty() {
        return Err("the vector lists no matches".to_owned());
    }
    if matches.contains(&written.as_str()) {
        Ok(())
    } else {
        Err(format!(
            "written as {written:?}, expected one of {matches:?}"
        ))
    }
}

/// `source` splits into the `atoms` (a part that is missing is empty).
fn check_userhost(vector: &Value) -> Result<(), String> {
    let source = Source::parse(text(&vector["source"], "source")?);
    let atoms = &vector["atoms"];
    let part = |key| optional_text(&atoms[key], key).map(Option::unwrap_or_default);
    let mut wrong = Vec::new();
    compare(&mut wrong, "nick", part("nick")?, source.nick);
    compare(&mut wrong, "user", part("user")?, source.user);
    compare(&mut wrong, "host", part("host")?, source.host);
    verdict(wrong)
}

fn compare<T: PartialEq + std::fmt::Debug>(
    wrong: &mut Vec<String>,
    what: &str,
    expected: T,
    actual: T,
) {
    if expected != actual {
        wrong.push(format!("{what}: expected {expected:?}, got {actual:?}"));
    }
}

fn verdict(wrong: Vec<String>) -> Result<(), String> {
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

// The vectors' conventions for missing keys: an absent (or null) string is "not specified",
// an absent list is empty. Anything of the wrong type is reported as a failure, never skipped.

fn text<'a>(value: &'a Value, what: &str) -> Result<&'a str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("the vector's {what} is not a string: {value}"))
}

fn optional_text<'a>(value: &'a Value, what: &str) -> Result<Option<&'a str>, String> {
    match value {
        Value::Null => Ok(None),
        value => text(value, what).map(Some),
    }
}

fn texts<'a>(value: &'a Value, what: &str) -> Result<Vec<&'a str>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(|item| text(item, what)).collect(),
        value => Err(format!("the vector's {what} is not a list: {value}")),
    }
}

fn tag_map(value: &Value) -> Result<Option<BTreeMap<&str, &str>>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Object(tags) => tags
            .iter()
            .map(|(key, value)| Ok((key.as_str(), text(value, "tag value")?)))
            .collect::<Result<_, String>>()
            .map(Some),
        value => Err(format!("the vector's tags are not a map: {value}")),
    }
}
