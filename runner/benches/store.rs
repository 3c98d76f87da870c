//! The store alone: lines committed per second, by how many lines each commit carries (the hub
//! commits once per flush, so a busy server's commits carry many). On disk in a temporary
//! directory (WAL, `synchronous=NORMAL`, as the server runs it) and in memory (`--no-data`).
//!
//! `cargo bench -p chat-runner --bench store`; `-- --test` runs it once, small, as a check.

use std::time::Duration;

fn main() {
    let quick = std::env::args().any(|arg| arg == "--test");
    let lines: u64 = if quick { 2_000 } else { 100_000 };
    println!("store: {lines} lines of 60 bytes over 10 rooms, per batch size");
    println!(
        "{:>8} {:>10} {:>14} {:>14}",
        "batch", "where", "lines/s", "µs/line"
    );
    for batch in [1, 10, 100, 1_000] {
        for on_disk in [true, false] {
            let dir = std::env::temp_dir().join(format!(
                "chat-store-bench-{}-{batch}-{on_disk}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            // One commit per line is slow on disk: fewer lines, the same rate.
            let lines = if batch == 1 && on_disk {
                lines / 10
            } else {
                lines
            };
            let took: Duration =
                chat_runner::measure_commits(on_disk.then_some(dir.as_path()), lines, batch, 10);
            let _ = std::fs::remove_dir_all(&dir);
            let per_second = lines as f64 / took.as_secs_f64();
            assert!(per_second > 0.0);
            println!(
                "{batch:>8} {:>10} {per_second:>14.0} {:>14.2}",
                if on_disk { "disk" } else { "memory" },
                1e6 / per_second
            );
        }
    }
}
