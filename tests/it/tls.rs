//! TLS to S3 (https), RabbitMQ (amqps) and the coordinator's object proxy
//! (https) against real TLS endpoints: stunnel (Debian's `stunnel4`,
//! installed by `scripts/setup.sh tls`) terminates TLS in front of s3s-fs,
//! RabbitMQ's 5672 and a `nodal coordinator`, with a CA and a server
//! certificate made for the test by the `openssl` command. With the CA
//! configured (`--s3-ca-file`, `--amqp-ca-file`) the clients work; without
//! it the connection is refused with a clear certificate error, at once
//! (a refused certificate is not retried).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::{Context, bail};
use bytes::Bytes;
use nodal_common::broker::{BrokerConfig, connect_broker};
use nodal_common::store::{HttpConfig, HttpStore, ObjectStore, S3Config, S3Store, StoreErrorKind};
use nodal_testkit::{NodalProcess, S3Server, UniqueQueues};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A CA and a server certificate for 127.0.0.1 and localhost.
struct Certificates {
    dir: TempDir,
}

impl Certificates {
    fn make() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        std::fs::write(
            d.join("server.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )?;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            d,
            &["req", "-x509"],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=nodal test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )?;
        openssl(
            d,
            &["req"],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        )?;
        openssl(
            d,
            &["x509", "-req"],
            &[],
            &[
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        )?;
        Ok(Self { dir })
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

fn openssl(dir: &Path, a: &[&str], b: &[&str], c: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .args(a)
        .args(b)
        .args(c)
        .current_dir(dir)
        .output()
        .context("running openssl (install it: scripts/setup.sh tls)")?;
    if !out.status.success() {
        bail!(
            "openssl {a:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// stunnel accepting TLS on a free port per target and forwarding in clear.
struct Stunnel {
    child: Child,
    ports: Vec<u16>,
    dir: TempDir,
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Stunnel {
    /// One TLS port in front of each `127.0.0.1:<target>`.
    fn start(certs: &Certificates, targets: &[u16]) -> anyhow::Result<Self> {
        let binary = ["/usr/bin/stunnel4", "/usr/bin/stunnel"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .context("stunnel is not installed: run `scripts/setup.sh tls`")?;
        let dir = tempfile::tempdir()?;
        let mut conf = format!(
            "foreground = yes\npid =\noutput = {}\ncert = {}\nkey = {}\n",
            dir.path().join("stunnel.log").display(),
            certs.dir.path().join("server.pem").display(),
            certs.dir.path().join("server.key").display(),
        );
        let mut ports = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            let port = free_port()?;
            conf += &format!("[t{i}]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{target}\n");
            ports.push(port);
        }
        let conf_path = dir.path().join("stunnel.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(binary)
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        let mut tunnel = Self { child, ports, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        for &port in &tunnel.ports {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = tunnel.child.try_wait()? {
                    bail!("stunnel exited ({status}): {}", tunnel.log());
                }
                if Instant::now() > deadline {
                    bail!("stunnel did not listen on {port}: {}", tunnel.log());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(tunnel)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stunnel.log")).unwrap_or_default()
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The port of a `host:port` URL's authority, e.g. RabbitMQ's from its URL.
fn amqp_port() -> u16 {
    let url = nodal_testkit::amqp_url();
    url.rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next()?.parse().ok())
        .unwrap_or(5672)
}

fn s3_over_tls(server: &S3Server, port: u16, ca: Option<&Path>) -> S3Config {
    let mut config = server.config("tls");
    config.endpoint = Some(format!("https://127.0.0.1:{port}"));
    config.ca_file = ca.map(Path::to_path_buf);
    config.max_attempts = 1;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_and_rabbitmq_over_tls_with_and_without_the_ca() {
    let certs = Certificates::make().unwrap();
    let server = S3Server::start().await.unwrap();
    let s3_port: u16 = server
        .endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let tunnel = Stunnel::start(&certs, &[s3_port, amqp_port()]).unwrap();
    let (s3_tls, amqp_tls) = (tunnel.ports[0], tunnel.ports[1]);

    // S3 with the CA: the store basics work over https.
    let store = S3Store::connect(&s3_over_tls(&server, s3_tls, Some(&certs.ca())))
        .await
        .unwrap();
    for i in 0..3 {
        store
            .put(
                &format!("dir/object-{i}"),
                Bytes::from(vec![i as u8; 1000 + i]),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.get("dir/object-2").await.unwrap().len(), 1002);
    assert_eq!(
        store.head("dir/object-1").await.unwrap().unwrap().size,
        1001
    );
    let keys: Vec<String> = store
        .list("dir/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, ["dir/object-0", "dir/object-1", "dir/object-2"]);
    store.delete("dir/object-0").await.unwrap();
    assert!(store.get("dir/object-0").await.unwrap_err().is_not_found());
    // Only the CA (no system roots) works as well.
    let mut only = s3_over_tls(&server, s3_tls, Some(&certs.ca()));
    only.ca_only = true;
    let store = S3Store::connect(&only).await.unwrap();
    assert!(store.head("dir/object-1").await.unwrap().is_some());

    // Without the CA: a certificate error, not retried.
    let store = S3Store::connect(&s3_over_tls(&server, s3_tls, None))
        .await
        .unwrap();
    let started = Instant::now();
    let err = store.get("dir/object-1").await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Permanent, "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(err.to_string().contains("--s3-ca-file"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once"
    );

    // RabbitMQ over amqps with the CA: declare, publish, consume, ack.
    let queues = UniqueQueues::for_test("tls");
    let mut rabbit = queues.rabbit_config(3);
    rabbit.url = rabbit
        .url
        .replacen("amqp://", "amqps://", 1)
        .replace(&format!(":{}/", amqp_port()), &format!(":{amqp_tls}/"));
    assert!(rabbit.url.starts_with("amqps://") && rabbit.url.contains(&amqp_tls.to_string()));
    rabbit.ca_file = Some(certs.ca());
    let broker = connect_broker(&BrokerConfig::Rabbit(rabbit.clone()))
        .await
        .unwrap();
    assert!(broker.describe().starts_with("amqps://"));
    broker
        .publish(&queues.names.jobs, Bytes::from_static(b"over tls"))
        .await
        .unwrap();
    let mut subscription = broker.subscribe(&queues.names.jobs, 1).await.unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&delivery.body[..], b"over tls");
    delivery.acker.ack().await.unwrap();
    drop(subscription);
    drop(broker);

    // Without the CA: refused at once with a certificate error.
    rabbit.ca_file = None;
    let started = Instant::now();
    let err = connect_broker(&BrokerConfig::Rabbit(rabbit))
        .await
        .unwrap_err();
    assert!(!err.transient, "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(err.to_string().contains("--amqp-ca-file"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once"
    );
    queues.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_object_proxy_over_https() {
    let certs = Certificates::make().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "coordinator",
        "--insecure-no-auth",
        "--listen",
        "127.0.0.1:0",
        "--broker",
        "memory://",
        "--store",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("file://{}", dir.path().join("store").display())])
    .collect();
    let mut coordinator = NodalProcess::spawn("coordinator", dir.path(), &args, &[]).unwrap();
    let line = coordinator
        .wait_for_line("coordinator listening on ", Duration::from_secs(60))
        .unwrap();
    let port: u16 = line.rsplit(':').next().unwrap().trim().parse().unwrap();
    let tunnel = Stunnel::start(&certs, &[port]).unwrap();
    let url = format!("https://127.0.0.1:{}", tunnel.ports[0]);

    let mut config = HttpConfig::new(url.clone());
    config.ca_file = Some(certs.ca());
    let store = HttpStore::connect(&config).unwrap();
    store
        .put(
            "archives/cy-a.0000000000000000/x.bin",
            Bytes::from_static(b"tls"),
        )
        .await
        .unwrap();
    assert_eq!(
        &store
            .get("archives/cy-a.0000000000000000/x.bin")
            .await
            .unwrap()[..],
        b"tls"
    );
    assert_eq!(store.list("archives/").await.unwrap().len(), 1);

    let mut config = HttpConfig::new(url);
    config.max_attempts = 3;
    let started = Instant::now();
    let err = HttpStore::connect(&config)
        .unwrap()
        .get("archives/cy-a.0000000000000000/x.bin")
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Permanent, "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refused at once"
    );
    drop(tunnel);
}
