//! Bad input everywhere a user types or sends something gets a clear error
//! naming what is wrong and where; nothing panics; nothing is left half
//! written. The API on a real coordinator process (unknown run, malformed
//! ids and JSON, unknown model, an archive of another study, a missing
//! archive, oversized or malformed object-proxy requests), and the `nodal`
//! command line (store and broker URLs, missing flags, tokens files and
//! NODAL_TOKENS, CA files, `analyze` inputs, model folders).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::cluster::{Cluster, shared_synth};
use nodal_submit::{Progress, SubmitOptions, submit_site};
use nodal_types::study::Study;
use reqwest::{Method, StatusCode};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished `nodal` command left: its exit code and its output.
struct Outcome {
    code: Option<i32>,
    output: String,
}

impl Outcome {
    /// Assert a failure whose output names every one of `parts`, without a
    /// panic.
    fn refused(&self, what: &str, parts: &[&str]) {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "{what}: expected a failure, got {:?}:\n{}",
            self.code,
            self.output
        );
        assert!(
            !self.output.contains("panicked at"),
            "{what}: panicked:\n{}",
            self.output
        );
        for part in parts {
            assert!(
                self.output.contains(part),
                "{what}: the output does not name {part:?}:\n{}",
                self.output
            );
        }
    }
}

/// Run `nodal args…` with `env` in `dir`; killed (and failed) after 60 s.
fn nodal(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let out = dir.join("out.txt");
    let file = std::fs::File::create(&out).unwrap();
    let mut child = Command::new(nodal_testkit::nodal_binary().unwrap())
        .args(args)
        .env_remove("NODAL_STORE")
        .env_remove("NODAL_BROKER")
        .env_remove("NODAL_TOKENS")
        .env_remove("NODAL_TOKENS_FILE")
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "nodal {args:?} did not exit within 60 s:\n{}",
                std::fs::read_to_string(&out).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        code: status.code(),
        output: std::fs::read_to_string(&out).unwrap(),
    }
}

#[test]
fn store_and_broker_urls_and_missing_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let site = d.join("site");
    std::fs::create_dir_all(&site).unwrap();
    let site = site.to_str().unwrap();
    nodal(
        d,
        &[
            "submit", "--study", "cytology", "--site", "cy-a", "--store", "ftp://x", site,
        ],
        &[],
    )
    .refused("an unknown store scheme", &["bad store URL", "ftp://x"]);
    nodal(
        d,
        &[
            "submit", "--study", "cytology", "--site", "cy-a", "--store", "s3://", site,
        ],
        &[],
    )
    .refused("a store URL without a bucket", &["bucket is missing"]);
    nodal(
        d,
        &[
            "submit", "--study", "cytology", "--site", "cy-a", "--store", "http://", site,
        ],
        &[],
    )
    .refused("a coordinator store without a host", &["host is missing"]);
    nodal(d, &["submit", "--site", "cy-a", site], &[])
        .refused("a missing --study", &["--study", "required"]);
    nodal(
        d,
        &["submit", "--study", "histology", "--site", "cy-a", site],
        &[],
    )
    .refused("an unknown study", &["histology"]);
    nodal(
        d,
        &["submit", "--study", "cytology", "--site", "Bad Site", site],
        &[],
    )
    .refused("a bad site name", &["Bad Site"]);
    let file_store = format!("file://{}", d.join("store").display());
    let outcome = nodal(
        d,
        &[
            "coordinator",
            "--insecure-no-auth",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &file_store,
            "--broker",
            "redis://user:hunter2@host:6379",
        ],
        &[],
    );
    outcome.refused("an unknown broker scheme", &["bad broker URL", "\"redis\""]);
    assert!(!outcome.output.contains("hunter2"), "{}", outcome.output);
    nodal(
        d,
        &[
            "coordinator",
            "--insecure-no-auth",
            "--store",
            &file_store,
            "--broker",
            "memory://",
            "--amqp-ca-file",
            "/nonexistent/ca.pem",
        ],
        &[],
    )
    .refused(
        "a CA file for a memory broker",
        &["--amqp-ca-file", "amqps://"],
    );
    nodal(
        d,
        &[
            "submit",
            "--study",
            "cytology",
            "--site",
            "cy-a",
            "--store",
            "s3://bucket/prefix",
            "--s3-ca-file",
            "/nonexistent/ca.pem",
            site,
        ],
        &[],
    )
    .refused(
        "a missing CA file",
        &["CA file /nonexistent/ca.pem", "cannot be read"],
    );
    nodal(d, &["token", "--name", "x", "--role", "site"], &[])
        .refused("a site token without --site", &["--site"]);
    nodal(d, &["token", "--name", "x", "--role", "wizard"], &[])
        .refused("an unknown role", &["wizard"]);
}

#[test]
fn tokens_files_and_nodal_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = format!("file://{}", d.join("store").display());
    let base = [
        "coordinator",
        "--listen",
        "127.0.0.1:0",
        "--store",
        store.as_str(),
        "--broker",
        "memory://",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |args: Vec<String>, env: &[(&str, &str)]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        nodal(d, &args, env)
    };
    run(with(&[]), &[]).refused("no tokens at all", &["--tokens-file", "NODAL_TOKENS"]);
    run(with(&["--tokens-file", "/nonexistent/tokens.json"]), &[]).refused(
        "an unreadable tokens file",
        &["tokens file /nonexistent/tokens.json", "No such file"],
    );
    let malformed = d.join("tokens.json");
    std::fs::write(
        &malformed,
        "[\n  {\"name\": \"ops\",\n   \"token_sha256\": ,\n   \"role\": \"operator\"}\n]\n",
    )
    .unwrap();
    let path = malformed.display().to_string();
    run(with(&["--tokens-file", &path]), &[])
        .refused("a malformed tokens file", &[&path, "line 3 column"]);
    run(
        with(&[]),
        &[("NODAL_TOKENS", "[{\"name\": \"x\", \"role\": \"boss\"}]")],
    )
    .refused("malformed NODAL_TOKENS", &["env NODAL_TOKENS", "line 1"]);
    let hash = "0".repeat(64);
    let good = format!("[{{\"name\":\"ops\",\"token_sha256\":\"{hash}\",\"role\":\"operator\"}}]");
    run(with(&["--tokens-file", &path]), &[("NODAL_TOKENS", &good)])
        .refused("tokens from two sources", &["not both"]);
    let short = "[{\"name\":\"ops\",\"token_sha256\":\"abc\",\"role\":\"operator\"}]";
    run(with(&[]), &[("NODAL_TOKENS", short)])
        .refused("a short token hash", &["entry 0", "\"ops\"", "64 hex"]);
    run(with(&["--insecure-no-auth"]), &[("NODAL_TOKENS", &good)])
        .refused("tokens and no auth at once", &["not both"]);
}

#[test]
fn analyze_names_the_problem_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("results");
    let out_s = out.to_str().unwrap();
    let missing = d.join("missing.csv");
    nodal(
        d,
        &[
            "analyze",
            "--predictions",
            missing.to_str().unwrap(),
            "--task",
            "binary",
            "--out",
            out_s,
        ],
        &[],
    )
    .refused(
        "a missing predictions file",
        &["missing.csv", "cannot read"],
    );
    let garbage = d.join("garbage.csv");
    std::fs::write(&garbage, b"\x00\xff\xfe binary \x01\x02\n\xc3\x28,,\n").unwrap();
    nodal(
        d,
        &[
            "analyze",
            "--predictions",
            garbage.to_str().unwrap(),
            "--task",
            "binary",
            "--out",
            out_s,
        ],
        &[],
    )
    .refused("a garbage predictions file", &["garbage.csv"]);
    let bad_row = d.join("bad_row.csv");
    std::fs::write(
        &bad_row,
        "case_id,site,label,score\nc1,A,1,0.9\nc2,A,0,0.1\nc3,A,1,high\n",
    )
    .unwrap();
    nodal(
        d,
        &[
            "analyze",
            "--predictions",
            bad_row.to_str().unwrap(),
            "--task",
            "binary",
            "--out",
            out_s,
        ],
        &[],
    )
    .refused(
        "a bad score",
        &["bad_row.csv", "line 4", "\"score\"", "\"high\""],
    );
    nodal(
        d,
        &[
            "analyze",
            "--predictions",
            bad_row.to_str().unwrap(),
            "--task",
            "ternary",
            "--out",
            out_s,
        ],
        &[],
    )
    .refused("an unknown task", &["ternary"]);
    assert!(
        !out.join("metrics.json").exists() && !out.join("report.html").exists(),
        "a failed analyze leaves no result file"
    );
}

#[test]
fn analyze_takes_a_threshold_fixed_on_another_cohort_and_names_a_file_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let analyze = |csv: &str, out: &str, extra: &[&str]| {
        let mut args = vec!["analyze", "--predictions", csv, "--task", "binary"];
        args.extend(["--out", out, "--no-report"]);
        args.extend(extra);
        nodal(d, &args, &[])
    };
    let development = d.join("development.csv");
    std::fs::write(
        &development,
        "case_id,site,label,score\nd1,A,0,0.10\nd2,A,0,0.30\nd3,A,1,0.35\nd4,A,1,0.80\n",
    )
    .unwrap();
    let validation = d.join("validation.csv");
    std::fs::write(
        &validation,
        "case_id,site,label,score\nv1,B,0,0.20\nv2,B,1,0.33\nv3,B,0,0.34\nv4,B,1,0.90\n",
    )
    .unwrap();
    let dev_out = d.join("dev");
    let outcome = analyze(
        development.to_str().unwrap(),
        dev_out.to_str().unwrap(),
        &[],
    );
    assert_eq!(outcome.code, Some(0), "{}", outcome.output);
    let val_out = d.join("val");
    let dev_metrics = dev_out.join("metrics.json");
    let outcome = analyze(
        validation.to_str().unwrap(),
        val_out.to_str().unwrap(),
        &["--threshold-from", dev_metrics.to_str().unwrap()],
    );
    assert_eq!(outcome.code, Some(0), "{}", outcome.output);
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(val_out.join("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(
        metrics["threshold"], 0.35,
        "the development cohort's Youden threshold"
    );
    assert_eq!(metrics["threshold_method"], "fixed");
    assert_eq!(metrics["threshold_source"], "metrics_file");
    assert_eq!(metrics["own_youden_threshold"], 0.9, "reported beside it");
    // At 0.35: v2 (0.33) is missed and v3 (0.34) not called, so sensitivity 1/2.
    assert_eq!(metrics["sensitivity"]["estimate"], 0.5);

    let no_threshold = d.join("multiclass-metrics.json");
    std::fs::write(
        &no_threshold,
        r#"{"task": "multiclass", "threshold": null}"#,
    )
    .unwrap();
    analyze(
        validation.to_str().unwrap(),
        d.join("x").to_str().unwrap(),
        &["--threshold-from", no_threshold.to_str().unwrap()],
    )
    .refused(
        "a metrics.json without a threshold",
        &["multiclass-metrics.json", "\"threshold\""],
    );
    analyze(
        validation.to_str().unwrap(),
        d.join("x").to_str().unwrap(),
        &[
            "--threshold-from",
            dev_metrics.to_str().unwrap(),
            "--threshold",
            "0.5",
        ],
    )
    .refused("both threshold options", &["--threshold"]);
}

/// A model folder `name` under `root` with `card` (JSON text) and `onnx`.
fn model_dir(root: &Path, name: &str, card: &str, onnx: &[u8]) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("card.json"), card).unwrap();
    std::fs::write(dir.join("model.onnx"), onnx).unwrap();
}

#[test]
fn bad_model_folders_stop_the_coordinator_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shipped = nodal_testkit::repo_root().join("models/ptc-ln");
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shipped.join("card.json")).unwrap()).unwrap();
    let onnx = std::fs::read(shipped.join("model.onnx")).unwrap();
    let card_with = |name: &str, sha: &str| {
        let mut card = card.clone();
        card["name"] = name.into();
        card["onnx_sha256"] = sha.into();
        serde_json::to_string_pretty(&card).unwrap()
    };
    let not_onnx = b"PK\x03\x04 this is a zip file, not a model".to_vec();
    let cases: [(&str, String, Vec<u8>, &[&str]); 3] = [
        (
            "wrong-hash",
            card_with("probe-a", &"ab".repeat(32)),
            onnx.clone(),
            &[
                "wrong-hash/model.onnx",
                "does not match the card's onnx_sha256",
            ],
        ),
        (
            "not-onnx",
            card_with("probe-b", &nodal_types::sha256_hex(&not_onnx)),
            not_onnx.clone(),
            &["not-onnx/model.onnx", "not an ONNX model"],
        ),
        (
            "bad-card",
            "{\n  \"name\": \"probe-c\",\n  \"version\": 1.0.0\n}\n".into(),
            onnx.clone(),
            &["bad-card/card.json", "not a valid model card", "line 3"],
        ),
    ];
    for (name, card, onnx, says) in cases {
        let root = d.join(format!("models-{name}"));
        model_dir(&root, name, &card, &onnx);
        let store_dir = d.join(format!("store-{name}"));
        let store = format!("file://{}", store_dir.display());
        nodal(
            d,
            &[
                "coordinator",
                "--insecure-no-auth",
                "--listen",
                "127.0.0.1:0",
                "--store",
                &store,
                "--broker",
                "memory://",
                "--models-dir",
                root.to_str().unwrap(),
            ],
            &[],
        )
        .refused(name, says);
        let published = store_dir.join("models");
        let probe = std::fs::read_dir(&published)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .any(|e| e.file_name().to_string_lossy().starts_with("probe-"))
            })
            .unwrap_or(false);
        assert!(!probe, "{name}: nothing of the bad model was published");
    }
}

/// Send a request as `role` (a cluster token name) and return the status
/// and the JSON error body.
async fn call(
    c: &Cluster,
    method: Method,
    path: &str,
    role: &str,
    body: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut request = c.request(method, path, role);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, json)
}

/// A `PUT path` with a one-byte body, sent byte for byte over TCP: HTTP
/// clients normalise `..` and `%2E%2E` away, a hostile one need not.
async fn raw_put(c: &Cluster, path: &str, role: &str) -> (StatusCode, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = c.api.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
         Content-Length: 1\r\nConnection: close\r\n\r\nx",
        c.tokens[role]
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status: u16 = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json = serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.into()));
    (StatusCode::from_u16(status).unwrap(), json)
}

/// Assert an API error: its status, its kind, and that its message names
/// every one of `parts`.
fn api_refused(got: (StatusCode, serde_json::Value), status: u16, kind: &str, parts: &[&str]) {
    let (got_status, body) = got;
    assert_eq!(got_status.as_u16(), status, "{body}");
    assert_eq!(body["kind"], kind, "{body}");
    let message = body["error"].as_str().unwrap_or_default();
    for part in parts {
        assert!(message.contains(part), "{message:?} does not name {part:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_bad_requests_clearly_and_creates_nothing() {
    let mut c = Cluster::start("bad-input").await.unwrap();
    let synth = shared_synth(&[Study::Cytology], 0.004, 5).await.unwrap();
    let archive = submit_site(
        &SubmitOptions::new(Study::Cytology, "cy-a", synth.path().join("cytology/cy-a")),
        c.store.clone(),
        &Progress::hidden(),
    )
    .await
    .unwrap()
    .manifest
    .archive_id;
    c.start_coordinator(&["--store-proxy-max-body-mib", "1"])
        .unwrap();
    let a = archive.as_str();
    let unknown = uuid::Uuid::new_v4().to_string();

    api_refused(
        call(
            &c,
            Method::GET,
            &format!("/runs/{unknown}"),
            "analyst",
            None,
        )
        .await,
        404,
        "unknown_run",
        &[&unknown],
    );
    api_refused(
        call(
            &c,
            Method::GET,
            &format!("/runs/{unknown}/files/predictions.csv"),
            "analyst",
            None,
        )
        .await,
        404,
        "unknown_run",
        &[&unknown],
    );
    api_refused(
        call(&c, Method::GET, "/runs/not-a-uuid", "analyst", None).await,
        400,
        "bad_request",
        &["not-a-uuid", "UUID"],
    );
    let post = |body: String| {
        let c = &c;
        async move { call(c, Method::POST, "/runs", "operator", Some(&body)).await }
    };
    api_refused(
        post(format!("{{\"archives\": [\"{a}\"], \"model\": ")).await,
        400,
        "bad_json",
        &["line 1"],
    );
    api_refused(
        post(format!(
            "{{\"archives\": [\"{a}\"], \"model\": \"cytology-origin\", \"colour\": \"red\"}}"
        ))
        .await,
        400,
        "bad_json",
        &["colour"],
    );
    api_refused(
        post(format!(
            "{{\"archives\": \"{a}\", \"model\": \"cytology-origin\"}}"
        ))
        .await,
        400,
        "bad_json",
        &["archives"],
    );
    api_refused(
        post(format!("{{\"archives\": [\"{a}\"]}}")).await,
        400,
        "bad_json",
        &["model"],
    );
    api_refused(
        post(format!(
            "{{\"archives\": [\"{a}\"], \"model\": \"no-such-model\"}}"
        ))
        .await,
        404,
        "unknown_model",
        &["no-such-model"],
    );
    api_refused(
        post(format!(
            "{{\"archives\": [\"{a}\"], \"model\": \"ptc-ln\"}}"
        ))
        .await,
        422,
        "cannot_plan",
        &[a, "cytology", "ptc-ln", "ultrasound"],
    );
    api_refused(
        post("{\"archives\": [\"cy-a.ffffffffffffffff\"], \"model\": \"cytology-origin\"}".into())
            .await,
        404,
        "unknown_archive",
        &["cy-a.ffffffffffffffff"],
    );
    // Not an archive id at all (here with a control character): refused
    // before any store key is made of it.
    api_refused(
        post("{\"archives\": [\"cy-a.\\u0003x\"], \"model\": \"cytology-origin\"}".into()).await,
        400,
        "bad_request",
        &["is not an archive id"],
    );
    // An archive of the old layout (one object per tile), and one whose
    // tile index points past its shards: refused, naming what to do.
    let stored: serde_json::Value = serde_json::from_slice(
        &c.store
            .get(&nodal_types::layout::manifest_key(a))
            .await
            .unwrap(),
    )
    .unwrap();
    let mut old = stored.clone();
    old["schema_version"] = 2.into();
    old["archive_id"] = "cy-a.00000000000000e2".into();
    let mut broken = stored.clone();
    broken["archive_id"] = "cy-a.00000000000000e3".into();
    broken["shards"][0]["bytes"] = 10.into();
    for m in [&old, &broken] {
        let id = m["archive_id"].as_str().unwrap();
        c.store
            .put(
                &nodal_types::layout::manifest_key(id),
                serde_json::to_vec(m).unwrap().into(),
            )
            .await
            .unwrap();
    }
    api_refused(
        post("{\"archives\": [\"cy-a.00000000000000e2\"], \"model\": \"cytology-origin\"}".into())
            .await,
        422,
        "bad_input",
        &[
            "cy-a.00000000000000e2/manifest.json",
            "schema version 2",
            "re-submit the site",
        ],
    );
    api_refused(
        post("{\"archives\": [\"cy-a.00000000000000e3\"], \"model\": \"cytology-origin\"}".into())
            .await,
        422,
        "bad_input",
        &[
            "cy-a.00000000000000e3/manifest.json",
            "lie outside the archive's",
        ],
    );
    api_refused(
        post(format!(
            "{{\"archives\": [\"{a}\"], \"model\": \"cytology-origin\", \"job_tiles\": 0}}"
        ))
        .await,
        400,
        "bad_request",
        &["job_tiles"],
    );
    api_refused(
        post(format!(
            "{{\"archives\": [\"{a}\"], \"model\": \"cytology-origin\", \"job_tiles\": -3}}"
        ))
        .await,
        400,
        "bad_json",
        &["job_tiles"],
    );
    let empty = post("{\"archives\": [], \"model\": \"cytology-origin\"}".into()).await;
    assert!(empty.0.is_client_error(), "{empty:?}");
    api_refused(
        post(format!(
            "{{\"archives\": [\"{a}\", \"{a}\"], \"model\": \"cytology-origin\"}}"
        ))
        .await,
        422,
        "cannot_plan",
        &[a, "twice"],
    );
    api_refused(
        call(
            &c,
            Method::GET,
            "/archives/cy-a.ffffffffffffffff",
            "operator",
            None,
        )
        .await,
        404,
        "unknown_archive",
        &["cy-a.ffffffffffffffff"],
    );

    // The object proxy: an oversized body, malformed keys and queries.
    let big_key = "archives/cy-a.00000000000000bb/big.bin";
    let response = c
        .request(Method::PUT, &format!("/store/{big_key}"), "site-cy-a")
        // The server answers 413 without reading the body and closes the
        // connection: keep it out of the client's pool, or a later request
        // may be sent on it as it closes (hyper's IncompleteMessage).
        .header("connection", "close")
        .body(vec![7u8; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["kind"], "too_large");
    assert!(
        c.store.head(big_key).await.unwrap().is_none(),
        "nothing half written"
    );
    for (path, says) in [
        ("/store/archives/cy-a.00000000000000bb/../x", "'..'"),
        ("/store/archives/cy-a.00000000000000bb/%2E%2E/x", "'..'"),
        ("/store/archives/cy-a.00000000000000bb//x", "empty segments"),
        ("/store/archives/cy-a.00000000000000bb/a%5Cb", "'\\'"),
    ] {
        api_refused(raw_put(&c, path, "operator").await, 400, "bad_key", &[says]);
    }
    api_refused(
        call(&c, Method::GET, "/store?prefix=/archives", "operator", None).await,
        400,
        "bad_key",
        &["/archives"],
    );
    api_refused(
        call(
            &c,
            Method::GET,
            "/store?prefix=archives/&colour=red",
            "operator",
            None,
        )
        .await,
        400,
        "bad_request",
        &["colour"],
    );
    api_refused(
        call(
            &c,
            Method::GET,
            "/store/archives/cy-a.00000000000000bb/none",
            "operator",
            None,
        )
        .await,
        404,
        "not_found",
        &["cy-a.00000000000000bb/none"],
    );

    // None of it created a run or wrote a result.
    let (status, runs) = call(&c, Method::GET, "/runs", "analyst", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(runs, serde_json::json!([]), "no run was created");
    assert!(c.store.list("runs/").await.unwrap().is_empty());
    let log = c.coordinator.as_ref().unwrap().output();
    assert!(!log.contains("panicked at"), "{log}");
}
