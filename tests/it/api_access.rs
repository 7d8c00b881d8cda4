//! Access control of the coordinator API on a real cluster (s3s-fs,
//! RabbitMQ, `nodal coordinator` and `nodal worker` processes; cytology at
//! scale 0.01): every role × endpoint answers what docs/security.md says
//! (401 without a valid token, 403 outside the role); a site submits its own
//! archive through the coordinator's object proxy with nothing but its
//! token, and is refused (naming the site, writing nothing) for another
//! site; the `HttpStore` client sorts the proxy's answers into the store's
//! error kinds; no token and no clinical field value reaches any log or
//! metrics label. Byte ranges through the proxy follow the same rules
//! (206 with `Content-Range`, 403 for another site's archive, 416 for a bad
//! range).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::cluster::{Cluster, shared_synth};
use bytes::Bytes;
use nodal_common::store::{HttpConfig, HttpStore, ObjectStore, StoreErrorKind};
use nodal_submit::{Progress, SubmitOptions, submit_site};
use nodal_testkit::NodalProcess;
use nodal_types::manifest::Manifest;
use nodal_types::study::Study;
use reqwest::{Method, StatusCode};
use std::path::Path;
use std::time::Duration;

const SCALE: f64 = 0.01;
const SEED: u64 = 11;

/// The callers of the matrix: no header, a token nobody issued, and the
/// cluster's tokens.
const CALLERS: [&str; 5] = ["none", "wrong", "site-cy-a", "analyst", "operator"];

/// One endpoint and the status each caller of [`CALLERS`] must get.
struct Case {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    expect: [u16; 5],
}

fn case(method: Method, path: impl Into<String>, expect: [u16; 5]) -> Case {
    Case {
        method,
        path: path.into(),
        body: None,
        expect,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_gets_what_it_may_and_nothing_more() {
    let mut c = Cluster::start("api-access").await.unwrap();
    let synth = shared_synth(&[Study::Cytology], SCALE, SEED).await.unwrap();
    let sites = synth.path().join("cytology");
    // Another site's archive, uploaded with the cluster's own S3 keys.
    let cy_c = submit_site(
        &SubmitOptions::new(Study::Cytology, "cy-c", sites.join("cy-c")),
        c.store.clone(),
        &Progress::hidden(),
    )
    .await
    .unwrap()
    .manifest;
    c.start_coordinator(&[]).unwrap();

    // A site submits through the coordinator with its token, no S3 keys.
    let cy_a = submit_via_proxy(&c, "cy-a", &sites.join("cy-a"), "site-cy-a", "submit-cy-a")
        .await
        .unwrap();
    let stored = Manifest::parse(
        &c.store
            .get(&format!("archives/{}/manifest.json", cy_a.archive_id))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored.site, "cy-a");
    let shards = c
        .store
        .list(&format!("archives/{}/shards/", cy_a.archive_id))
        .await
        .unwrap();
    let tiles: usize = stored.cases.iter().map(|k| k.tile_count()).sum();
    let sizes: Vec<u64> = shards.iter().map(|o| o.size).collect();
    let listed: Vec<u64> = stored.shards.iter().map(|s| s.bytes).collect();
    assert!(
        tiles > 0 && sizes == listed,
        "every shard went through the proxy: {sizes:?} vs {listed:?}"
    );

    // …and is refused for another site, naming it, with nothing written.
    let refused = submit_via_proxy(&c, "cy-b", &sites.join("cy-b"), "site-cy-a", "submit-cy-b")
        .await
        .unwrap_err();
    assert!(
        refused.contains("\"cy-b\"") && refused.contains("403"),
        "the refusal names the site: {refused}"
    );
    assert!(!refused.contains("panicked at"), "{refused}");
    assert!(
        c.store.list("archives/cy-b.").await.unwrap().is_empty(),
        "nothing of cy-b was written"
    );

    // A finished run, so that result files can be read.
    c.archives
        .insert(Study::Cytology, vec![cy_a.clone(), cy_c.clone()]);
    c.start_worker("worker-1", &[]).unwrap();
    let run = c
        .finished_run(Study::Cytology, 512, Duration::from_secs(240))
        .await
        .unwrap();

    let (a, other) = (&cy_a.archive_id, &cy_c.archive_id);
    let own_probe = "archives/cy-a.0000000000000000/probe.txt";
    let other_probe = "archives/cy-c.0000000000000000/probe.txt";
    let mut cases = vec![
        case(Method::GET, "/runs", [401, 401, 403, 200, 200]),
        case(
            Method::GET,
            format!("/runs/{run}"),
            [401, 401, 403, 200, 200],
        ),
        case(
            Method::GET,
            format!("/runs/{run}/files/predictions.csv"),
            [401, 401, 403, 200, 200],
        ),
        case(
            Method::GET,
            format!("/runs/{run}/files/run.json"),
            [401, 401, 403, 200, 200],
        ),
        case(Method::GET, "/models", [401, 401, 200, 200, 200]),
        case(Method::GET, "/openapi.json", [200, 200, 200, 200, 200]),
        case(Method::GET, "/archives", [401, 401, 200, 403, 200]),
        case(
            Method::GET,
            format!("/archives/{a}"),
            [401, 401, 200, 403, 200],
        ),
        case(
            Method::GET,
            format!("/archives/{other}"),
            [401, 401, 403, 403, 200],
        ),
        case(
            Method::GET,
            "/store?prefix=archives/cy-a.",
            [401, 401, 200, 403, 200],
        ),
        case(
            Method::GET,
            "/store?prefix=archives/cy-c.",
            [401, 401, 403, 403, 200],
        ),
        case(
            Method::GET,
            "/store?prefix=archives/",
            [401, 401, 403, 403, 200],
        ),
        case(Method::GET, "/store?prefix=", [401, 401, 403, 403, 200]),
        case(
            Method::GET,
            format!("/store/archives/{a}/manifest.json"),
            [401, 401, 200, 403, 200],
        ),
        case(
            Method::HEAD,
            format!("/store/archives/{a}/manifest.json"),
            [401, 401, 200, 403, 200],
        ),
        case(
            Method::GET,
            format!("/store/archives/{other}/manifest.json"),
            [401, 401, 403, 403, 200],
        ),
        case(
            Method::GET,
            format!("/store/runs/{run}/run.json"),
            [401, 401, 403, 403, 200],
        ),
        case(
            Method::GET,
            "/store/models/cytology-origin/1.1.0/card.json",
            [401, 401, 403, 403, 200],
        ),
        Case {
            body: Some(b"probe".to_vec()),
            ..case(
                Method::PUT,
                format!("/store/{own_probe}"),
                [401, 401, 204, 403, 204],
            )
        },
        Case {
            body: Some(b"probe".to_vec()),
            ..case(
                Method::PUT,
                format!("/store/{other_probe}"),
                [401, 401, 403, 403, 204],
            )
        },
        case(
            Method::DELETE,
            format!("/store/{own_probe}"),
            [401, 401, 403, 403, 204],
        ),
        case(
            Method::DELETE,
            format!("/store/{other_probe}"),
            [401, 401, 403, 403, 204],
        ),
    ];
    // Creating runs comes last: the operator's creates one.
    let request =
        serde_json::json!({"archives": [a], "model": "cytology-origin", "job_tiles": 4096});
    cases.push(Case {
        body: Some(serde_json::to_vec(&request).unwrap()),
        ..case(Method::POST, "/runs", [401, 401, 403, 403, 201])
    });

    let http = reqwest::Client::new();
    let mut wrong = Vec::new();
    for case in &cases {
        for (caller, &want) in CALLERS.iter().zip(&case.expect) {
            let mut request = http.request(case.method.clone(), format!("{}{}", c.api, case.path));
            request = match *caller {
                "none" => request,
                "wrong" => request.bearer_auth("ndl_not-a-token-anyone-was-given"),
                role => request.bearer_auth(&c.tokens[role]),
            };
            if let Some(body) = &case.body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.clone());
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let challenge = response.headers().get("www-authenticate").cloned();
            let text = response.text().await.unwrap_or_default();
            if status != want {
                wrong.push(format!(
                    "{} {} as {caller}: {status}, expected {want}: {text}",
                    case.method, case.path
                ));
            }
            if status == 401 {
                assert_eq!(
                    challenge.as_ref().and_then(|v| v.to_str().ok()),
                    Some("Bearer"),
                    "{} {}: a 401 carries WWW-Authenticate: Bearer",
                    case.method,
                    case.path
                );
            }
            if (status == 401 || status == 403) && case.method != Method::HEAD {
                let body: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert!(
                    body["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{text}"
                );
            }
        }
    }
    assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
    // A malformed Authorization header is a 401 too.
    let basic = http
        .get(format!("{}/runs", c.api))
        .header("authorization", "Basic b3BlcmF0b3I6cHc=")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);

    http_store_sorts_the_proxys_answers(&c, a).await;
    nothing_secret_or_clinical_is_logged(&c, &[cy_a, cy_c]).await;
}

/// Byte ranges through the object proxy: `HttpStore::get_range` reads
/// exactly the bytes asked for (`206`, with `Content-Range`), a site token
/// may not range-read another site's archive (`403`, whatever the range),
/// and a malformed, unsatisfiable or multiple range is `416 bad_range`
/// naming the range and the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_serves_byte_ranges_by_the_same_rules() {
    let mut c = Cluster::start("api-range").await.unwrap();
    let own = "archives/cy-a.00000000000000dd/tiles/c1/0.jpg";
    let other = "archives/cy-c.00000000000000dd/tiles/c1/0.jpg";
    let body: Bytes = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect::<Vec<u8>>()
        .into();
    c.store.put(own, body.clone()).await.unwrap();
    c.store.put(other, body.clone()).await.unwrap();
    c.start_coordinator(&[]).unwrap();

    let store_as = |role: &str| {
        let mut config = HttpConfig::new(c.api.clone());
        config.token = Some(c.tokens[role].clone());
        config.max_attempts = 2;
        config.retry_initial_backoff = Duration::from_millis(10);
        HttpStore::connect(&config).unwrap()
    };
    let site = store_as("site-cy-a");
    for (offset, len) in [(0, 16), (4321, 1000), (9990, 10), (0, 10_000)] {
        let got = site.get_range(own, offset, len).await.unwrap();
        assert!(
            got == body.slice(offset as usize..(offset + len) as usize),
            "bytes {offset}+{len} through the proxy"
        );
    }
    assert!(site.get_range(own, 10_000, 0).await.unwrap().is_empty());
    let short = site.get_range(own, 9995, 10).await.unwrap_err();
    assert_eq!(short.kind, StoreErrorKind::Permanent, "{short}");
    assert!(short.message.contains("ends before byte 10005"), "{short}");
    let past = site.get_range(own, 10_000, 1).await.unwrap_err();
    assert_eq!(past.kind, StoreErrorKind::Permanent, "{past}");
    assert!(
        past.message.contains("bad_range, HTTP 416") && past.message.contains("10000"),
        "{past}"
    );
    let missing = site
        .get_range("archives/cy-a.00000000000000dd/none", 0, 1)
        .await
        .unwrap_err();
    assert_eq!(missing.kind, StoreErrorKind::NotFound, "{missing}");
    let denied = site.get_range(other, 0, 16).await.unwrap_err();
    assert_eq!(denied.kind, StoreErrorKind::Denied, "{denied}");
    assert!(
        denied.to_string().contains("cy-a") && denied.to_string().contains("403"),
        "{denied}"
    );
    let operator = store_as("operator");
    assert!(operator.get_range(other, 5, 5).await.unwrap() == body.slice(5..10));

    // The answers themselves.
    let ranged = |key: &str, role: &str, range: &str| {
        c.request(Method::GET, &format!("/store/{key}"), role)
            .header("range", range)
            .send()
    };
    for (range, first, last) in [
        ("bytes=100-199", 100, 199),
        ("bytes=9990-", 9990, 9999),
        ("bytes=9990-20000", 9990, 9999),
        ("bytes=-5", 9995, 9999),
    ] {
        let response = ranged(own, "site-cy-a", range).await.unwrap();
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        let headers = response.headers().clone();
        assert_eq!(
            headers["content-range"],
            format!("bytes {first}-{last}/10000").as_str(),
            "{range}"
        );
        assert_eq!(headers["accept-ranges"], "bytes", "{range}");
        let got = response.bytes().await.unwrap();
        assert!(got == body.slice(first..last + 1), "{range}");
    }
    for range in ["bytes=0-15", "bytes=99999-", "bytes=junk"] {
        let response = ranged(other, "site-cy-a", range).await.unwrap();
        let status = response.status();
        let error: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{range}: {error}");
        assert_eq!(error["kind"], "forbidden", "{range}: {error}");
    }
    for (range, says) in [
        ("bytes=10000-", "past the end"),
        ("bytes=-0", "past the end"),
        ("bytes=20-10", "ends before it starts"),
        ("bytes=0-1,5-6", "one range"),
        ("pages=0-1", "byte ranges"),
        ("bytes=x-", "bytes=first-last"),
    ] {
        let response = ranged(own, "site-cy-a", range).await.unwrap();
        let status = response.status();
        let content_range = response.headers().get("content-range").cloned();
        let error: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(
            status,
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{range}: {error}"
        );
        assert_eq!(error["kind"], "bad_range", "{range}: {error}");
        let message = error["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(range) && message.contains(own) && message.contains(says),
            "{range}: {message}"
        );
        if says == "past the end" {
            assert_eq!(content_range.unwrap(), "bytes */10000", "{range}");
        }
    }
    // Without a Range header: the whole object, as before.
    let whole = c
        .request(Method::GET, &format!("/store/{own}"), "site-cy-a")
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert!(whole.headers().get("content-range").is_none());
    assert!(whole.bytes().await.unwrap() == body);
    let log = c.coordinator.as_ref().unwrap().output();
    assert!(!log.contains("panicked at"), "{log}");
}

/// `nodal submit` of `dir` as `site` through the coordinator with the token
/// of `role`: the stored manifest, or the process's output when it fails.
async fn submit_via_proxy(
    c: &Cluster,
    site: &str,
    dir: &Path,
    role: &str,
    name: &str,
) -> Result<Manifest, String> {
    let args: Vec<String> = vec![
        "submit".into(),
        "--study".into(),
        "cytology".into(),
        "--site".into(),
        site.into(),
        "--quiet".into(),
        dir.display().to_string(),
    ];
    let env = vec![
        ("NODAL_STORE".to_string(), c.api.clone()),
        ("NODAL_TOKEN".to_string(), c.tokens[role].clone()),
        ("NO_COLOR".to_string(), "1".to_string()),
    ];
    let mut process = NodalProcess::spawn(name, c.dir.path(), &args, &env).unwrap();
    let status = process.wait_exit(Duration::from_secs(180)).unwrap();
    let output = process.output();
    if !status.success() {
        return Err(output);
    }
    let ids: Vec<String> = c
        .store
        .list(&format!("archives/{site}."))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| m.key.strip_suffix("/manifest.json").map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 1, "one manifest of {site}: {ids:?}\n{output}");
    let bytes = c
        .store
        .get(&format!("{}/manifest.json", ids[0]))
        .await
        .unwrap();
    Ok(serde_json::from_slice(&bytes).unwrap())
}

/// The store client over the proxy: odd keys round-trip, and refusals,
/// missing objects and bad tokens come back as the store's error kinds.
async fn http_store_sorts_the_proxys_answers(c: &Cluster, archive: &str) {
    let store_as = |role: Option<&str>| {
        let mut config = HttpConfig::new(c.api.clone());
        config.token = role.map(|r| c.tokens.get(r).cloned().unwrap_or_else(|| r.to_owned()));
        config.max_attempts = 2;
        config.retry_initial_backoff = Duration::from_millis(10);
        HttpStore::connect(&config).unwrap()
    };
    let operator = store_as(Some("operator"));
    let odd = "archives/cy-a.00000000000000aa/tiles/case 1/ü+%=@;,~!.bin";
    operator
        .put(odd, Bytes::from_static(b"\x00\x01odd"))
        .await
        .unwrap();
    assert_eq!(&operator.get(odd).await.unwrap()[..], b"\x00\x01odd");
    assert_eq!(operator.head(odd).await.unwrap().map(|m| m.size), Some(5));
    let listed = operator
        .list("archives/cy-a.00000000000000aa/")
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, odd);
    operator.delete(odd).await.unwrap();
    operator.delete(odd).await.unwrap();
    assert_eq!(operator.head(odd).await.unwrap(), None);
    let missing = operator.get(odd).await.unwrap_err();
    assert_eq!(missing.kind, StoreErrorKind::NotFound, "{missing}");

    let site = store_as(Some("site-cy-a"));
    assert!(
        site.get(&format!("archives/{archive}/manifest.json"))
            .await
            .is_ok()
    );
    let denied = site.get("runs/x/run.json").await.unwrap_err();
    assert_eq!(denied.kind, StoreErrorKind::Denied, "{denied}");
    assert!(denied.to_string().contains("cy-a"), "{denied}");
    let anonymous = store_as(None).list("archives/cy-a.").await.unwrap_err();
    assert_eq!(anonymous.kind, StoreErrorKind::Denied, "{anonymous}");
    let stranger = store_as(Some("ndl_unknown")).head(odd).await.unwrap_err();
    assert_eq!(stranger.kind, StoreErrorKind::Denied, "{stranger}");
    assert!(stranger.to_string().contains("401"), "{stranger}");
}

/// No process printed a token; no log line or metrics label holds a
/// clinical field value of the submitted cases.
async fn nothing_secret_or_clinical_is_logged(c: &Cluster, manifests: &[Manifest]) {
    let mut texts: Vec<(String, String)> = Vec::new();
    for entry in std::fs::read_dir(c.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            texts.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    assert!(
        texts.iter().any(|(n, _)| n.starts_with("coordinator"))
            && texts.iter().any(|(n, _)| n.starts_with("submit")),
        "the logs were found: {:?}",
        texts.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    texts.push((
        "coordinator /metrics".into(),
        c.coordinator_metrics().await.unwrap(),
    ));
    for (name, text) in &texts {
        for (role, token) in &c.tokens {
            assert!(
                !text.contains(token.as_str()),
                "{name} shows the {role} token"
            );
        }
        assert!(
            !text.contains("ndl_not-a-token"),
            "{name} shows a presented token"
        );
    }
    let clinical: Vec<&str> = manifests
        .iter()
        .flat_map(|m| &m.cases)
        .flat_map(|k| {
            [
                "pathological_diagnosis",
                "clinical_diagnosis",
                "lesion_site",
                "puncture_date",
            ]
            .into_iter()
            .filter_map(|field| k.clinical.get(field))
        })
        .map(String::as_str)
        .filter(|v| v.len() >= 8)
        .collect();
    assert!(
        clinical.len() > 20,
        "clinical values to look for: {clinical:?}"
    );
    for (name, text) in &texts {
        for value in &clinical {
            assert!(
                !text.contains(value),
                "{name} shows the clinical value {value:?}"
            );
        }
    }
}
