//! `--metrics ADDR`: the server's counts, served over HTTP at `/metrics` in the Prometheus
//! text format, or OpenMetrics when the scraper asks for it. See docs/METRICS.md for every
//! metric.
//!
//! Counting costs the hub next to nothing: [`Stats`](crate::stats::Stats) is plain integers in the hub, added to
//! where it already carries out the core's outputs (one add per send, not per recipient), and
//! the histograms are observed once per turn, flush or commit. Bytes written are counted by the
//! writers in a thread-local cell (every task runs on the hub's thread). Nothing is shared
//! while serving: a scrape asks the hub for a [`Snapshot`] with an `Event::Scrape`, the hub
//! copies its counts and reads the gauges from the core, and the HTTP task encodes that copy
//! with `prometheus-client`, on its own task, within the bounds below.

use std::cell::Cell;
use std::convert::Infallible;
use std::net::TcpListener;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use smol::channel::Sender;
use smol::{Async, LocalExecutor, Timer};

use crate::event::Event;
use crate::log::error;
use crate::stats::{Gone, Histogram, Snapshot, bytes_written};

/// The most scrape connections served at once; more are closed at once.
const MAX_SCRAPERS: usize = 4;

/// How long a scraper has to send its request's head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest one scrape connection lives, whatever it does.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The most bytes hyper buffers of a request (its smallest allowed): a longer head is refused.
const MAX_REQUEST_BYTES: usize = 8192;

/// How long a scrape waits for the hub's snapshot before it answers 503.
const HUB_TIMEOUT: Duration = Duration::from_secs(3);

impl Histogram {
    pub(crate) fn encode(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        unit: Option<&Unit>,
    ) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .zip(self.counts.iter().copied())
            .collect();
        encoder
            .encode_descriptor(name, help, unit, MetricType::Histogram)?
            .encode_histogram::<NoLabelSet>(self.sum, self.count, &buckets, None)
    }
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn counters(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for &(value, count) in values {
        let labels = [(label, value)];
        metric
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: impl EncodeGaugeValue,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

fn gauges(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for &(value, count) in values {
        let labels = [(label, value)];
        metric.encode_family(&labels)?.encode_gauge(&count)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        let s = &self.stats;
        let c = self.connections;
        gauges(
            e,
            "chat_connections",
            "Live connections, by the dialect they speak (undecided: no byte yet)",
            "dialect",
            &[
                ("plain", c.plain),
                ("irc", c.irc),
                ("json", c.json),
                ("undecided", c.undecided),
            ],
        )?;
        gauges(
            e,
            "chat_people_online",
            "People online: here (this server's connections) and elsewhere (on other cluster nodes)",
            "where",
            &[
                ("here", self.people_here),
                ("elsewhere", self.people_elsewhere),
            ],
        )?;
        gauge(
            e,
            "chat_rooms",
            "Rooms, the lobby and rooms kept for their topic included",
            self.rooms,
        )?;
        counter(
            e,
            "chat_connections_accepted",
            "Connections accepted",
            s.accepted,
        )?;
        counters(
            e,
            "chat_connections_refused",
            "Connections refused, by reason",
            "reason",
            &[
                ("full", s.refused[0]),
                ("per_address", s.refused[1]),
                ("banned", s.refused[2]),
            ],
        )?;
        counter(
            e,
            "chat_lines_received",
            "Lines (or JSON objects) received from clients",
            s.lines_received,
        )?;
        counter(
            e,
            "chat_lines_sent",
            "Messages rendered for sending, each to one or more recipients",
            s.lines_sent,
        )?;
        counter(
            e,
            "chat_deliveries",
            "Messages queued for a recipient (a message to n recipients counts n)",
            s.deliveries,
        )?;
        counter(
            e,
            "chat_bytes_written",
            "Bytes written to clients' sockets",
            bytes_written(),
        )?;
        counter(
            e,
            "chat_slow_skipped",
            "Room messages skipped for clients that were not reading (lagging)",
            s.skipped,
        )?;
        counter(
            e,
            "chat_slow_private_refused",
            "Private messages refused because the recipient's queue was full",
            s.private_refused,
        )?;
        counter(
            e,
            "chat_slow_dropped",
            "Clients disconnected as too slow to keep up",
            s.dropped_too_slow,
        )?;
        counter(
            e,
            "chat_flood_holds",
            "Times flood control held a client's input back",
            s.flood_holds,
        )?;
        let disconnects: Vec<(&str, u64)> = Gone::ALL
            .iter()
            .map(|&gone| (gone.label(), s.disconnects[gone as usize]))
            .collect();
        counters(
            e,
            "chat_disconnects",
            "Connections ended, by reason",
            "reason",
            &disconnects,
        )?;
        s.turn.encode(
            e,
            "chat_hub_turn",
            "Time the hub spent on one turn (a batch of events, a timer, or a flush)",
            Some(&Unit::Seconds),
        )?;
        s.flush_events.encode(
            e,
            "chat_hub_queue_depth_at_flush",
            "Events waiting in the hub's queue when it flushed",
            None,
        )?;
        s.flush_writers.encode(
            e,
            "chat_hub_writers_per_flush",
            "Writers woken by one flush (clients with something new to write)",
            None,
        )?;
        gauge(
            e,
            "chat_hub_flush_spacing_seconds",
            "Time the last flush set before the next may go out: 50 us per writer it woke, scaled \
             by the load against 1.5 million deliveries a second, at most --flush-interval",
            self.flush_spacing,
        )?;
        gauge(
            e,
            "chat_hub_load_deliveries_per_second",
            "Deliveries a second as the hub measures them (over about 100 ms) to scale the flush \
             spacing",
            self.load,
        )?;
        gauge(
            e,
            "chat_send_queue_slots",
            "Message slots the connections' send queues hold, used or not (16 bytes each): grown \
             by a burst, given back within a few seconds of a queue's emptying",
            self.queue_slots as f64,
        )?;
        counter(e, "chat_store_commits", "Store commits done", s.commits)?;
        gauge(
            e,
            "chat_store_commits_pending",
            "Store commits asked and not yet done (the store's queue depth, in commits)",
            self.commits_pending,
        )?;
        s.commit_time.encode(
            e,
            "chat_store_commit",
            "Time from asking the store for a commit to its being done",
            Some(&Unit::Seconds),
        )?;
        if self.cluster {
            counter(
                e,
                "chat_cluster_published",
                "Lines and private messages handed to the cluster to publish",
                s.cluster_published,
            )?;
            counter(
                e,
                "chat_cluster_received",
                "Room lines read from the cluster's streams (this node's own included)",
                s.cluster_received,
            )?;
            s.cluster_lag.encode(
                e,
                "chat_cluster_lag",
                "Time from a room line being said (on any node) to its being shown here",
                Some(&Unit::Seconds),
            )?;
        }
        Ok(())
    }
}

/// Binds the metrics listener.
pub(crate) fn bind(addr: std::net::SocketAddr) -> std::io::Result<Async<TcpListener>> {
    Async::new(TcpListener::bind(addr)?)
}

/// Serves `GET /metrics` on `listener` until the server ends: each connection on a task of its
/// own, at most [`MAX_SCRAPERS`] at once, each for at most [`CONNECTION_TIMEOUT`].
pub(crate) async fn serve(
    listener: Async<TcpListener>,
    hub: Sender<Event>,
    executor: Rc<LocalExecutor<'static>>,
) {
    let open = Rc::new(Cell::new(0_usize));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                error!("metrics: accept failed: {error}; retrying in 100 ms");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.get() >= MAX_SCRAPERS {
            // Closed at once: a scraper retries at its next interval.
            continue;
        }
        open.set(open.get() + 1);
        let (open, hub) = (open.clone(), hub.clone());
        executor
            .spawn(async move {
                future::or(serve_connection(stream, hub), async {
                    Timer::after(CONNECTION_TIMEOUT).await;
                })
                .await;
                open.set(open.get() - 1);
            })
            .detach();
    }
}

/// One scrape connection: one request (no keep-alive), read within [`READ_TIMEOUT`].
async fn serve_connection(stream: Async<std::net::TcpStream>, hub: Sender<Event>) {
    let service = hyper::service::service_fn(move |request| respond(request, hub.clone()));
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(smol_hyper::rt::SmolTimer::new())
        .header_read_timeout(READ_TIMEOUT)
        .max_buf_size(MAX_REQUEST_BYTES)
        .keep_alive(false)
        .serve_connection(smol_hyper::rt::FuturesIo::new(stream), service)
        .await;
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

fn plain(status: StatusCode, text: &str) -> Response<String> {
    let mut response = Response::new(format!("{text}\n"));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

async fn respond(
    request: Request<Incoming>,
    hub: Sender<Event>,
) -> Result<Response<String>, Infallible> {
    if request.uri().path() != "/metrics" {
        return Ok(plain(StatusCode::NOT_FOUND, "not found: try /metrics"));
    }
    if request.method() != Method::GET {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET");
        response
            .headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET"));
        return Ok(response);
    }
    let openmetrics = request
        .headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/openmetrics-text"));
    let Some(snapshot) = snapshot(&hub).await else {
        return Ok(plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is busy or shutting down",
        ));
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut body = String::new();
    let encoded = if openmetrics {
        prometheus_client::encoding::text::encode(&mut body, &registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut body, &registry)
    };
    if encoded.is_err() {
        return Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed"));
    }
    let mut response = Response::new(body);
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(if openmetrics {
            OPENMETRICS
        } else {
            PROMETHEUS_TEXT
        }),
    );
    Ok(response)
}

/// Asks the hub for its counts, waiting at most [`HUB_TIMEOUT`].
async fn snapshot(hub: &Sender<Event>) -> Option<Snapshot> {
    let (answer, answered) = smol::channel::bounded(1);
    future::or(
        async {
            hub.send(Event::Scrape(answer)).await.ok()?;
            answered.recv().await.ok()
        },
        async {
            Timer::after(HUB_TIMEOUT).await;
            None
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{DEPTHS, Refused, Stats};

    #[test]
    fn an_observation_goes_in_the_first_bucket_that_holds_it() {
        let mut histogram = Histogram::new(DEPTHS);
        for value in [0.0, 1.0, 1.5, 3.0, 1e9] {
            histogram.observe(value);
        }
        assert_eq!(&histogram.counts[..4], &[1, 1, 1, 1]);
        assert_eq!(histogram.counts.last(), Some(&1));
        assert_eq!(histogram.count, 5);
        assert!((histogram.sum - (5.5 + 1e9)).abs() < 1e-3);
    }

    #[test]
    fn a_snapshot_encodes_in_both_formats() {
        let mut stats = Stats {
            accepted: 3,
            ..Stats::default()
        };
        stats.refused(Refused::PerAddress);
        stats.gone(Gone::Quit);
        stats.turn.observe(0.000_2);
        let mut snapshot = Snapshot::new(&stats);
        snapshot.connections.irc = 2;
        let mut registry = Registry::default();
        registry.register_collector(Box::new(snapshot));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        for sample in [
            "chat_connections_accepted_total 3\n",
            "chat_connections_refused_total{reason=\"per_address\"} 1\n",
            "chat_disconnects_total{reason=\"quit\"} 1\n",
            "chat_connections{dialect=\"irc\"} 2\n",
            "chat_hub_turn_seconds_bucket{le=\"0.00025\"} 1\n",
            "chat_hub_turn_seconds_count 1\n",
        ] {
            assert!(text.contains(sample), "no {sample:?} in:\n{text}");
        }
        assert!(
            !text.contains("chat_cluster"),
            "cluster metrics only in cluster mode"
        );
        let mut open = String::new();
        prometheus_client::encoding::text::encode(&mut open, &registry).unwrap();
        assert!(open.ends_with("# EOF\n"));
    }
}
