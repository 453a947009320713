//! Writes pre-signed Groq deliveries for `bench/replay.lua` (wrk): each record is the
//! request's length in bytes on a line of its own, then the raw HTTP/1.1 request. Also
//! checks a receiver before a run, and primes it.
//!
//! ```sh
//! GROQ_WEBHOOK_SECRET=… presign unique 500000 > requests
//! GROQ_WEBHOOK_SECRET=… presign duplicates > requests
//! GROQ_WEBHOOK_SECRET=… presign check 127.0.0.1:3000        # 200, duplicate 200, tampered 401
//! presign prime requests 127.0.0.1:3000                      # sends the first request: 200
//! GROQ_WEBHOOK_SECRET=… presign soak 127.0.0.1:3000 4000 1200 # 4,000 a second for 20 minutes
//! ```
//!
//! `soak` signs as it goes (each delivery unique, timestamped when sent) and sends at a
//! fixed rate over 32 keep-alive connections, whatever the answers' pace: a delivery's
//! latency counts from when it was due to be sent, so a receiver that falls behind
//! shows it. Each minute it prints a line: `minute sent ok refused failed p50_ms p99_ms
//! max_ms` (refused: a 503 or 429, the receiver's back-pressure; failed: any other
//! answer, or none).
//!
//! Bodies are 1 KiB (1,024 bytes exactly); every request carries the current time, so
//! generate them just before a run. `unique`: event `i` has id `evt_<run>_<i>` and
//! cycles through `resource.created`, `.updated` and `.deleted` over resource `i / 3`.
//! `duplicates`: one event, to be replayed.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

const BODY_LEN: usize = 1024;
const TYPES: [&str; 3] = ["resource.created", "resource.updated", "resource.deleted"];

fn body(id: &str, event_type: &str, created: u64, resource: u64) -> Vec<u8> {
    let head =
        format!(r#"{{"id":"{id}","type":"{event_type}","created":{created},"data":{{"id":"res_{resource}","name":""#);
    let tail = r#""}}"#;
    let padding = BODY_LEN.saturating_sub(head.len() + tail.len());
    let mut body = Vec::with_capacity(BODY_LEN);
    body.extend_from_slice(head.as_bytes());
    body.resize(head.len() + padding, b'x');
    body.extend_from_slice(tail.as_bytes());
    body
}

fn request(secret: &[u8], timestamp: u64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let signature = hex::encode(mac.finalize().into_bytes());
    let mut request = format!(
        "POST /webhooks/groq HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         x-groq-timestamp: {timestamp}\r\nx-groq-signature: {signature}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// A prefix no earlier run used, so ids stay unique across runs against one Redis.
fn run_prefix() -> String {
    format!("{:x}", SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos()))
}

/// `keys`: event `i` is about resource `i % keys` (for an ordered receiver keyed by
/// the resource); by default resource `i / 3`.
fn write_requests(secret: &[u8], count: u64, keys: Option<u64>) -> std::io::Result<()> {
    let now = now();
    let run = run_prefix();
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    for i in 0..count {
        let id = format!("evt_{run}_{i}");
        let event_type = TYPES[usize::try_from(i % 3).expect("below 3")];
        let resource = keys.map_or(i / 3, |keys| i % keys.max(1));
        let request = request(secret, now, &body(&id, event_type, now, resource));
        writeln!(out, "{}", request.len())?;
        out.write_all(&request)?;
    }
    out.flush()
}

/// Sends one request on a connection of its own; answers the status code.
fn send(address: &str, request: &[u8]) -> Result<u16, String> {
    let mut stream = TcpStream::connect(address).map_err(|error| format!("cannot connect to {address}: {error}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|error| error.to_string())?;
    stream.write_all(request).map_err(|error| format!("cannot send to {address}: {error}"))?;
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).map_err(|error| format!("no answer from {address}: {error}"))?;
    status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer from {address}: {status_line:?}"))
}

fn expect(address: &str, what: &str, request: &[u8], wanted: u16) -> Result<(), String> {
    let status = send(address, request)?;
    if status == wanted {
        Ok(())
    } else {
        Err(format!("{address}: {what} answered {status}, expected {wanted}"))
    }
}

/// A receiver that answers a valid delivery 200, its retry 200, and a tampered one 401
/// is doing the work the benchmark measures.
fn check(secret: &[u8], address: &str) -> Result<(), String> {
    let now = now();
    let body = body(&format!("evt_check_{}", run_prefix()), "resource.created", now, 0);
    let valid = request(secret, now, &body);
    let mut tampered = valid.clone();
    let last = tampered.len() - 3;
    tampered[last] ^= 1;
    expect(address, "a valid delivery", &valid, 200)?;
    expect(address, "its retry", &valid, 200)?;
    expect(address, "a tampered delivery", &tampered, 401)
}

/// Sends the first request of a file, so that replaying it measures duplicates only.
fn prime(path: &str, address: &str) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|error| format!("cannot read {path}: {error}"))?;
    let mut reader = BufReader::new(file);
    let mut length = String::new();
    reader.read_line(&mut length).map_err(|error| format!("cannot read {path}: {error}"))?;
    let length: usize = length.trim().parse().map_err(|_| format!("{path} is not a requests file"))?;
    let mut request = vec![0; length];
    reader.read_exact(&mut request).map_err(|error| format!("cannot read {path}: {error}"))?;
    expect(address, "the first delivery", &request, 200)
}

/// Sends every request of a file, 8 at a time; each must be answered 2xx.
fn fill(path: &str, address: &str) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|error| format!("cannot read {path}: {error}"))?;
    let mut reader = BufReader::new(file);
    let mut requests = Vec::new();
    let mut length = String::new();
    while reader.read_line(&mut length).map_err(|error| format!("cannot read {path}: {error}"))? > 0 {
        let size: usize = length.trim().parse().map_err(|_| format!("{path} is not a requests file"))?;
        let mut request = vec![0; size];
        reader.read_exact(&mut request).map_err(|error| format!("cannot read {path}: {error}"))?;
        requests.push(request);
        length.clear();
    }
    let chunk = requests.len().div_ceil(8).max(1);
    std::thread::scope(|scope| {
        let senders: Vec<_> = requests
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter().try_for_each(|request| match send(address, request)? {
                        200..=299 => Ok(()),
                        status => Err(format!("{address} answered {status}")),
                    })
                })
            })
            .collect();
        senders.into_iter().try_for_each(|sender| sender.join().unwrap_or_else(|_| Err("a sender panicked".into())))
    })
}

/// What one minute of a soak saw.
#[derive(Default)]
struct Minute {
    ok: u64,
    refused: u64,
    failed: u64,
    /// Microseconds from when each answered delivery was due to its answer.
    latencies: Vec<u64>,
}

impl Minute {
    fn line(&mut self, minute: u64) -> String {
        self.latencies.sort_unstable();
        // The latency at `per_mille` of the sorted ones, in milliseconds.
        let at = |per_mille: usize| {
            let micros = self.latencies.get(self.latencies.len().saturating_sub(1) * per_mille / 1000).copied();
            micros.map_or_else(|| "0".to_owned(), |micros| format!("{}.{:03}", micros / 1000, micros % 1000))
        };
        format!(
            "{minute} {} {} {} {} {} {} {}",
            self.ok + self.refused + self.failed,
            self.ok,
            self.refused,
            self.failed,
            at(500),
            at(990),
            at(1000)
        )
    }
}

/// Reads one HTTP/1.1 answer off a keep-alive connection: its status.
fn answer(reader: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status =
        line.split(' ').nth(1).and_then(|code| code.parse().ok()).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not an HTTP answer: {line:?}"))
        })?;
    let mut length = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(status)
}

/// Sends `rate` unique deliveries a second for `seconds`, over `CONNECTIONS`
/// connections each on a schedule of its own, and prints a line a minute.
fn soak(secret: &[u8], address: &str, rate: u64, seconds: u64) -> Result<(), String> {
    const CONNECTIONS: u64 = 32;
    if rate == 0 || seconds == 0 || rate > 1_000_000_000 {
        return Err("the rate must be 1 to 1,000,000,000 a second, and the seconds above 0".into());
    }
    let run = run_prefix();
    let next_id = AtomicU64::new(0);
    let began = Instant::now();
    let minutes = seconds.div_ceil(60);
    let windows: Vec<Mutex<Minute>> = (0..minutes).map(|_| Mutex::default()).collect();
    let gap = Duration::from_nanos(1_000_000_000 * CONNECTIONS / rate);
    let end = Duration::from_secs(seconds);
    std::thread::scope(|scope| {
        for connection in 0..CONNECTIONS {
            let (run, next_id, windows) = (&run, &next_id, &windows);
            scope.spawn(move || {
                let mut due = gap * u32::try_from(connection).unwrap_or(0) / u32::try_from(CONNECTIONS).unwrap_or(1);
                let mut reader: Option<BufReader<TcpStream>> = None;
                while due < end {
                    if let Some(wait) = due.checked_sub(began.elapsed()) {
                        std::thread::sleep(wait);
                    }
                    let i = next_id.fetch_add(1, Ordering::Relaxed);
                    let now = now();
                    let event_type = TYPES[usize::try_from(i % 3).unwrap_or(0)];
                    let request = request(secret, now, &body(&format!("evt_{run}_{i}"), event_type, now, i / 3));
                    let status = (|| {
                        if reader.is_none() {
                            let stream = TcpStream::connect(address)?;
                            // A receiver that never answers fails the delivery, not the run.
                            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
                            reader = Some(BufReader::new(stream));
                        }
                        let reader = reader.as_mut().ok_or(std::io::ErrorKind::NotConnected)?;
                        reader.get_mut().write_all(&request)?;
                        answer(reader)
                    })();
                    let took = began.elapsed().saturating_sub(due);
                    let minute = usize::try_from(due.as_secs() / 60).unwrap_or(0).min(windows.len() - 1);
                    let mut window = windows[minute].lock().unwrap_or_else(PoisonError::into_inner);
                    match status {
                        Ok(200..=299) => window.ok += 1,
                        Ok(429 | 503) => window.refused += 1,
                        _ => {
                            window.failed += 1;
                            reader = None;
                        }
                    }
                    window.latencies.push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
                    drop(window);
                    due += gap;
                }
            });
        }
        // A line as each minute ends (its last deliveries answered a moment later).
        scope.spawn(|| {
            println!("minute sent ok refused failed p50_ms p99_ms max_ms");
            for minute in 0..minutes {
                let ends = Duration::from_secs(((minute + 1) * 60).min(seconds)) + Duration::from_secs(2);
                if let Some(wait) = ends.checked_sub(began.elapsed()) {
                    std::thread::sleep(wait);
                }
                let line = windows[usize::try_from(minute).unwrap_or(0)]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .line(minute + 1);
                println!("{line}");
            }
        });
    });
    Ok(())
}

const USAGE: &str = "usage: presign unique <count> [keys] | presign duplicates | presign check <host:port> \
                     | presign prime <file> <host:port> | presign fill <file> <host:port> \
                     | presign soak <host:port> <per second> <seconds>   \
                     (secret in GROQ_WEBHOOK_SECRET)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let secret = std::env::var("GROQ_WEBHOOK_SECRET").unwrap_or_default();
    if secret.is_empty() && !matches!(args.first(), Some(&("prime" | "fill"))) {
        eprintln!("error: set GROQ_WEBHOOK_SECRET");
        return ExitCode::from(2);
    }
    let outcome = match args[..] {
        ["unique", count] | ["unique", count, _] => match (count.parse(), args.get(2).map(|keys| keys.parse())) {
            (Ok(count), None) => write_requests(secret.as_bytes(), count, None),
            (Ok(count), Some(Ok(keys))) => write_requests(secret.as_bytes(), count, Some(keys)),
            _ => Err(std::io::Error::other(format!("count and keys must be numbers, not {:?}", &args[1..]))),
        }
        .map_err(|error| format!("cannot write: {error}")),
        ["duplicates"] => write_requests(secret.as_bytes(), 1, None).map_err(|error| format!("cannot write: {error}")),
        ["fill", path, address] => fill(path, address),
        ["check", address] => check(secret.as_bytes(), address),
        ["prime", path, address] => prime(path, address),
        ["soak", address, rate, seconds] => match (rate.parse(), seconds.parse()) {
            (Ok(rate), Ok(seconds)) => soak(secret.as_bytes(), address, rate, seconds),
            _ => Err(format!("the rate and the seconds must be numbers, not {rate:?} and {seconds:?}")),
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
