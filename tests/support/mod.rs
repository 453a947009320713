//! Where the test servers are: `scripts/test` starts Redis and PostgreSQL on loopback
//! and exports their URLs (see `scripts/services`).
#![allow(dead_code, unreachable_pub)]

pub mod events;
pub mod gateway;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn server_url(var: &str, what: &str) -> String {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => url,
        // Under CI=true and everywhere else alike: a missing server is a failure, never a skip.
        _ => panic!("{var} is not set: these tests need a {what} server. Run `scripts/test`, which starts one on loopback, or export {var}."),
    }
}

pub fn redis_url() -> String {
    server_url("HOOKROUTE_TEST_REDIS_URL", "Redis")
}

pub fn postgres_url() -> String {
    server_url("HOOKROUTE_TEST_POSTGRES_URL", "PostgreSQL")
}

/// A port nothing listens on (bound, then let go).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A redis-server of the test's own, which it may kill and restart. It writes every
/// change to its append-only file before answering (`appendfsync always`), so what it
/// acknowledged survives a SIGKILL, as a production Redis holding idempotency keys
/// should be set up to.
#[derive(Debug)]
pub struct OwnRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start() -> Self {
        let mut redis = Self { port: closed_port(), dir: tempfile::tempdir().unwrap(), child: None };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts the server (again) on the same port and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let Ok(binary) = std::env::var("HOOKROUTE_TEST_REDIS_SERVER") else {
            panic!("HOOKROUTE_TEST_REDIS_SERVER is not set: run `scripts/test`, which installs redis-server")
        };
        let child = Command::new(binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            // `DEBUG SET-ACTIVE-EXPIRE 0`: a test may stop Redis's own expiry cycle.
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let address: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(address).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {address}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server answering (SIGSTOP, or SIGCONT when `paused` is false): its
    /// connections stay open and silent.
    pub fn pause(&self, paused: bool) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").arg(if paused { "-STOP" } else { "-CONT" }).arg(pid).status().unwrap();
        assert!(status.success(), "kill failed");
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A TCP proxy on 127.0.0.1 in front of a real server, to cut the network between a
/// store and its server (every connection dropped, new ones refused) and restore it.
#[derive(Debug)]
pub struct Proxy {
    pub port: u16,
    target: SocketAddr,
    accepting: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    pub fn start(target: SocketAddr) -> Self {
        let mut proxy = Self { port: 0, target, accepting: None };
        proxy.resume();
        proxy
    }

    /// A proxy in front of the test PostgreSQL, and the URL that reaches it through it.
    /// Tests that cut it off time their clients tightly: they hold [`exclusive`] so the
    /// load tests never run beside them.
    pub fn postgres() -> (Self, String) {
        let config: tokio_postgres::Config = postgres_url().parse().unwrap();
        let proxy = Self::start(([127, 0, 0, 1], config.get_ports()[0]).into());
        let url = format!(
            "postgres://{}@127.0.0.1:{}/{}",
            config.get_user().unwrap(),
            proxy.port,
            config.get_dbname().unwrap()
        );
        (proxy, url)
    }

    /// Drops every proxied connection and refuses new ones.
    pub fn cut(&mut self) {
        // The accept task owns the listener and every connection task.
        self.accepting.take().expect("not cut already").abort();
    }

    /// Accepts connections again, on the same port.
    pub fn resume(&mut self) {
        assert!(self.accepting.is_none(), "already accepting");
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(([127, 0, 0, 1], self.port).into()).unwrap();
        let listener = socket.listen(128).unwrap();
        self.port = listener.local_addr().unwrap().port();
        let target = self.target;
        self.accepting = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                connections.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        }));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(accepting) = self.accepting.take() {
            accepting.abort();
        }
    }
}

/// A way to take a store's server away and bring it back.
pub trait Outage: Send + 'static {
    fn down(&mut self);
    fn up(&mut self);
}

impl Outage for OwnRedis {
    fn down(&mut self) {
        self.kill();
    }

    fn up(&mut self) {
        self.restart();
    }
}

impl Outage for Proxy {
    fn down(&mut self) {
        self.cut();
    }

    fn up(&mut self) {
        self.resume();
    }
}

/// How often a handler ran for each event id: the side effect that must happen once.
#[derive(Debug, Default)]
pub struct Runs(std::sync::Mutex<std::collections::HashMap<String, usize>>);

impl Runs {
    pub fn record(&self, id: &str) {
        *self.0.lock().unwrap().entry(id.to_owned()).or_default() += 1;
    }

    pub fn count(&self, id: &str) -> usize {
        self.0.lock().unwrap().get(id).copied().unwrap_or(0)
    }

    /// How many distinct events ran.
    pub fn events(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The events that did not run exactly once, with their counts.
    pub fn not_exactly_once(&self) -> Vec<(String, usize)> {
        self.0.lock().unwrap().iter().filter(|(_, &count)| count != 1).map(|(id, &count)| (id.clone(), count)).collect()
    }
}

/// The path of an example as `cargo test` builds it (examples are built beside the tests).
pub fn example_path(name: &str) -> std::path::PathBuf {
    let path = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples").join(name);
    assert!(path.exists(), "{} is built by `cargo test` (or `cargo build --examples`)", path.display());
    path
}

/// An example receiver running as a child process, killed when dropped.
#[derive(Debug)]
pub struct Example {
    child: Child,
    /// Every line it writes to stdout, in order.
    log: std::sync::mpsc::Receiver<String>,
    /// The lines read from `log` so far.
    seen: Vec<String>,
}

impl Example {
    /// Runs `command` with `PORT=0` and `RUST_LOG=info`, and waits for the address it
    /// logs (`listening on http://ADDRESS/...`) on stdout.
    pub fn start(mut command: Command) -> (Self, String) {
        use std::io::BufRead as _;
        let mut child = command
            .env("PORT", "0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (lines, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut example = Self { child, log, seen: Vec::new() };
        let line = example.wait_for("listening on http://", Duration::from_secs(60));
        let rest = &line[line.find("listening on http://").unwrap() + "listening on http://".len()..];
        let address = rest.split('/').next().unwrap_or_default().to_owned();
        (example, address)
    }

    /// The next line of its log that holds `needle`, waiting up to `within`.
    pub fn wait_for(&mut self, needle: &str, within: Duration) -> String {
        self.wait_for_all(&[needle], within).remove(0)
    }

    /// For each of `needles`, the first line of its log from now on that holds it,
    /// whatever order they come in, waiting up to `within` for all of them.
    pub fn wait_for_all(&mut self, needles: &[&str], within: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + within;
        let mut found: Vec<Option<String>> = vec![None; needles.len()];
        while found.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    let hit =
                        needles.iter().zip(&found).position(|(needle, seen)| seen.is_none() && line.contains(needle));
                    if let Some(at) = hit {
                        found[at] = Some(line);
                    }
                }
                Err(error) => {
                    let missing: Vec<_> = needles.iter().zip(&found).filter(|(_, seen)| seen.is_none()).collect();
                    panic!("the example never logged {missing:?} within {within:?}: {error}");
                }
            }
        }
        found.into_iter().flatten().collect()
    }

    /// Every line it logged that a wait has read so far.
    #[allow(dead_code)] // not every test binary looks
    pub fn logged(&self) -> &[String] {
        &self.seen
    }

    /// Sends SIGTERM and waits for it to exit; answers how it exited.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.child.wait().unwrap()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the Prometheus sample `name{labels}` in the exposition `text`, when
/// there is one: the first series of that name carrying every label given.
pub fn prometheus_sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        let wanted = labels.iter().all(|(key, val)| rest.contains(&format!("{key}=\"{val}\"")));
        (rest.starts_with('{') && wanted).then(|| value.parse().ok()).flatten()
    })
}

/// A store whose server is down: every call fails as unreachable. Named `down` in
/// metrics.
#[derive(Debug)]
pub struct DownStore;

#[async_trait::async_trait]
impl hookroute::IdempotencyStore for DownStore {
    async fn claim(&self, _: &str, _: Duration) -> Result<hookroute::store::Claim, hookroute::store::StoreError> {
        Err(hookroute::store::StoreError::Unavailable("connection refused".into()))
    }

    async fn complete(
        &self,
        _: &str,
        _: &hookroute::store::ClaimToken,
        _: Duration,
    ) -> Result<(), hookroute::store::StoreError> {
        Err(hookroute::store::StoreError::Unavailable("connection refused".into()))
    }

    async fn release(&self, _: &str, _: &hookroute::store::ClaimToken) -> Result<(), hookroute::store::StoreError> {
        Err(hookroute::store::StoreError::Unavailable("connection refused".into()))
    }

    fn backend(&self) -> &'static str {
        "down"
    }
}

/// The full name of test `name` in the module `module` (its `module_path!()`), as the
/// test binary lists it (`replicas::replica_process`), to run it alone in a child process.
pub fn test_name(module: &str, name: &str) -> String {
    let module = module.split_once("::").map_or("", |(_, module)| module);
    format!("{module}::{name}")
}

/// Held by the load tests (thousands of deliveries through child processes) and by the
/// fault tests that time their clients tightly, so that neither runs beside the other
/// on a two-core machine.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// The calls a Redis server answered, by command (`INFO commandstats`; commands a
/// script runs count under their own names too), and under `reads` the reads of
/// requests it made from its clients' sockets (`total_reads_processed`).
pub async fn redis_calls(url: &str) -> std::collections::HashMap<String, u64> {
    let client = redis::Client::open(url).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO").arg("commandstats").arg("stats").query_async(&mut raw).await.unwrap();
    info.lines()
        .filter_map(|line| {
            if let Some(reads) = line.strip_prefix("total_reads_processed:") {
                return Some(("reads".to_owned(), reads.trim().parse().ok()?));
            }
            if let Some(expired) = line.strip_prefix("expired_keys:") {
                return Some(("expired_keys".to_owned(), expired.trim().parse().ok()?));
            }
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|field| field.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}
