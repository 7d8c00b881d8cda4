//! The live API against its description (issue 18): schemathesis (PyPI,
//! `.cache/api-venv`) loads the coordinator's `/openapi.json` and sends
//! generated requests, valid and invalid, to every operation, once with
//! each role's token and once with none, and checks every answer: no 5xx,
//! a declared status, the declared content type and headers, a body that
//! matches the schema, 401 without a token, 405 with `Allow` for a method
//! not served. The store holds a submitted archive and a finished run
//! (real RabbitMQ, s3s-fs, `nodal coordinator` and `nodal worker`
//! processes), so listings and statuses answer real data.

use crate::cluster::Cluster;
use nodal_types::study::Study;
use std::path::Path;
use std::time::Duration;

const SCALE: f64 = 0.01;
const SEED: u64 = 11;

/// What schemathesis checks of every answer.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,negative_data_rejection,\
missing_required_header,unsupported_method,allow_header_conformance,ignored_auth";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_api_answers_as_its_openapi_description_says() {
    let schemathesis =
        nodal_common::locate::find_in_ancestors(Path::new(".cache/api-venv/bin/schemathesis"))
            .expect(".cache/api-venv (scripts/setup.sh api)");
    let mut c = Cluster::start("api-conformance").await.unwrap();
    c.submit_shared_synthetic(&[Study::Cytology], SCALE, SEED)
        .await
        .unwrap();
    c.start_coordinator(&[]).unwrap();
    c.start_worker("worker-1", &[]).unwrap();
    let run = c
        .finished_run(Study::Cytology, 512, Duration::from_secs(240))
        .await
        .unwrap();

    // What the coordinator serves is what docs/openapi.json says.
    let served: serde_json::Value = reqwest::get(format!("{}/openapi.json", c.api))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let committed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(nodal_testkit::repo_root().join("docs/openapi.json")).unwrap(),
    )
    .unwrap();
    assert!(served == committed, "/openapi.json is docs/openapi.json");
    let operations: Vec<String> = committed["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    assert!(operations.len() >= 16, "{operations:?}");

    for role in ["operator", "analyst", "site-cy-a", "none"] {
        let junit = c.dir.path().join(format!("schemathesis-{role}.xml"));
        let mut command = std::process::Command::new(&schemathesis);
        command
            .arg("run")
            .arg(format!("{}/openapi.json", c.api))
            .args(["--checks", CHECKS, "--max-examples", "25", "--seed", "18"])
            .args(["--workers", "1", "--report", "junit", "--report-junit-path"])
            .arg(&junit)
            .current_dir(c.dir.path())
            .env("NO_COLOR", "1");
        if let Some(token) = c.tokens.get(role) {
            command.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        let out = command.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "schemathesis as {role}:\n{text}");
        let report = std::fs::read_to_string(&junit).unwrap();
        for operation in &operations {
            assert!(
                report.contains(&format!("<testcase name=\"{operation}\"")),
                "{operation} was exercised as {role}:\n{report}"
            );
        }
        assert!(!report.contains("<failure"), "{role}:\n{report}");
    }

    // The generated requests changed nothing a run depends on.
    let status = c.run_status(run).await.unwrap();
    assert_eq!(status.state.name(), "finished");
    assert!(!c.logs().contains("panicked"), "{}", c.logs());
}
