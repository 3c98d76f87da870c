//! The store alone: lines committed per second, by how many lines each commit carries (the hub
//! commits once per flush, so a busy server's commits carry many). On disk in a temporary
//! directory (WAL, with `--sync normal` as the server runs it by default, and `--sync full`,
//! which syncs every commit to the disk) and in memory (`--no-data`).
//!
//! `cargo bench -p chat-runner --bench store`; `-- --test` runs it once, small, as a check.

use std::time::Duration;

use chat_runner::SyncMode;

fn main() {
    let quick = std::env::args().any(|arg| arg == "--test");
    let lines: u64 = if quick { 2_000 } else { 100_000 };
    // `--sync full` waits for a disk flush per commit (milliseconds here): fewer commits, the
    // same rate.
    let full_commits: u64 = if quick { 50 } else { 1_000 };
    println!("store: up to {lines} lines of 60 bytes over 10 rooms, per batch size");
    println!(
        "{:>8} {:>12} {:>8} {:>14} {:>14}",
        "batch", "where", "lines", "lines/s", "µs/line"
    );
    for batch in [1, 10, 100, 1_000] {
        for (place, on_disk, sync) in [
            ("disk/normal", true, SyncMode::Normal),
            ("disk/full", true, SyncMode::Full),
            ("memory", false, SyncMode::Normal),
        ] {
            let dir = std::env::temp_dir().join(format!(
                "chat-store-bench-{}-{batch}-{on_disk}-{sync}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let lines = match (on_disk, sync) {
                (true, SyncMode::Full) => lines.min(full_commits * batch),
                // One commit per line is slow on disk: fewer lines, the same rate.
                (true, _) if batch == 1 => lines / 10,
                _ => lines,
            };
            let took: Duration = chat_runner::measure_commits(
                on_disk.then_some(dir.as_path()),
                sync,
                lines,
                batch,
                10,
            );
            let _ = std::fs::remove_dir_all(&dir);
            let per_second = lines as f64 / took.as_secs_f64();
            assert!(per_second > 0.0);
            println!(
                "{batch:>8} {place:>12} {lines:>8} {per_second:>14.0} {:>14.2}",
                1e6 / per_second
            );
        }
    }
}
