//! The worker end to end over its real surroundings (LocalStore,
//! MemoryBroker, ONNX Runtime running the models): results equal to
//! `Model::run`, tiles that fail becoming recorded failures, batching across
//! jobs, reports for the multimodal model, inference errors.
//! Needs `scripts/setup.sh ort` (or ORT_DYLIB_PATH).

mod pipeline_support;

use nodal_types::wire::FailureStage;
use pipeline_support::models::{self, TestModel};
use pipeline_support::{CaseSpec, Fixture, assert_means_close, config, job, means, model_outputs};

/// The shipped cytology model (image only, eight classes).
fn cytology() -> TestModel {
    TestModel::shipped("cytology-origin")
}

/// The shipped multimodal model (image + report; score, pT and pN heads).
fn ptc() -> TestModel {
    TestModel::shipped("ptc-ln")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_tiles_give_case_means_equal_to_model_run() {
    let fx = Fixture::new().await;
    let model = cytology();
    let size = model.tile_size();
    let reference = fx.put_model(&model).await;
    let specs = vec![
        CaseSpec::good("CY-1", 3, size, 1),
        CaseSpec::good("CY-2", 5, size, 2),
        CaseSpec::good("CY-3", 0, size, 3),
        CaseSpec::good("CY-4", 2, size, 4),
    ];
    let cases = fx.put_archive("cy-a.0001", &specs).await;
    let the_job = job(&reference, "cy-a.0001", cases, 0);
    fx.publish(&the_job).await;
    let worker = fx.start(config(20));
    let results = fx.results(1).await;
    let summary = worker.stop().await;

    let result = &results[0];
    assert_eq!(
        (result.run_id, result.job_id),
        (the_job.run_id, the_job.job_id)
    );
    assert_eq!(result.worker, "test-worker");
    assert!(
        result.tile_failures.is_empty(),
        "{:?}",
        result.tile_failures
    );
    let ids: Vec<&str> = result.cases.iter().map(|c| c.case_id.as_str()).collect();
    assert_eq!(
        ids,
        ["CY-1", "CY-2", "CY-3", "CY-4"],
        "one partial per job case, in job order"
    );
    for (partial, spec) in result.cases.iter().zip(&specs) {
        assert_eq!(partial.archive_id, "cy-a.0001");
        assert_eq!(
            partial.tiles_ok,
            spec.tiles.len() as u64,
            "{}",
            spec.case_id
        );
        assert_eq!(partial.heads.len(), 1);
        assert_eq!(partial.heads[0].sum.len(), 8);
        if spec.tiles.is_empty() {
            assert!(partial.heads[0].sum.iter().all(|s| *s == 0));
            continue;
        }
        let want = means(&model_outputs(&model, &fx.runtime, &spec.stored(), None));
        let got: Vec<Vec<f64>> = partial
            .heads
            .iter()
            .map(|h| h.mean(partial.tiles_ok))
            .collect();
        assert_means_close(&got, &want, 1e-6, &spec.case_id);
    }
    assert!(
        result.timings.fetch_s > 0.0
            && result.timings.decode_s > 0.0
            && result.timings.infer_s > 0.0
    );
    assert_eq!(
        (
            summary.jobs_answered,
            summary.tiles_ok,
            summary.tiles_failed
        ),
        (1, 10, 0)
    );
    assert_eq!(fx.counter("nodal_worker_jobs_total", "answered"), 1);
    assert_eq!(fx.counter("nodal_worker_tiles_total", "ok"), 10);
    assert_eq!(fx.depth("nodal.jobs").await, 0, "the job was acked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_corrupt_tiles_are_recorded_and_the_rest_still_counts() {
    let fx = Fixture::new().await;
    let model = cytology();
    let size = model.tile_size();
    let reference = fx.put_model(&model).await;
    let good = CaseSpec::good("CY-1", 4, size, 7).stored();
    let mut truncated = pipeline_support::tile_jpeg(size, 99);
    truncated.truncate(truncated.len() / 2);
    let wrong_size = pipeline_support::tile_jpeg(size / 2, 98);
    let spec = CaseSpec {
        case_id: "CY-1".into(),
        tiles: vec![
            Some(good[0].clone()),
            None,
            Some(good[1].clone()),
            Some(b"not an image at all".to_vec()),
            Some(truncated),
            Some(wrong_size),
            Some(good[2].clone()),
            Some(good[3].clone()),
        ],
        report: None,
    };
    let cases = fx
        .put_archive("cy-a.0002", std::slice::from_ref(&spec))
        .await;
    let keys = cases[0].tiles.clone();
    fx.publish(&job(&reference, "cy-a.0002", cases, 0)).await;
    let worker = fx.start(config(20));
    let result = fx.results(1).await.remove(0);
    worker.stop().await;

    let partial = &result.cases[0];
    assert_eq!(partial.tiles_ok, 4);
    let failed: Vec<(&str, FailureStage)> = result
        .tile_failures
        .iter()
        .map(|f| (f.tile.as_str(), f.stage))
        .collect();
    assert_eq!(
        failed,
        [
            (keys[1].name.as_str(), FailureStage::Fetch),
            (keys[3].name.as_str(), FailureStage::Decode),
            (keys[4].name.as_str(), FailureStage::Decode),
            (keys[5].name.as_str(), FailureStage::Decode),
        ],
        "every tile is counted or listed, failures in tile order"
    );
    for f in &result.tile_failures {
        assert_eq!(f.case_id, "CY-1");
        assert!(
            f.reason.starts_with(&f.tile),
            "the reason names the tile: {}",
            f.reason
        );
    }
    assert!(
        result.tile_failures[0].reason.contains(": shard not found"),
        "{}",
        result.tile_failures[0].reason
    );
    assert!(
        result.tile_failures[1].reason.contains("not a JPEG or PNG"),
        "{}",
        result.tile_failures[1].reason
    );
    assert!(
        result.tile_failures[2]
            .reason
            .contains("corrupt or truncated"),
        "{}",
        result.tile_failures[2].reason
    );
    assert!(
        result.tile_failures[3].reason.contains("112x112"),
        "{}",
        result.tile_failures[3].reason
    );
    let want = means(&model_outputs(&model, &fx.runtime, &good, None));
    assert_means_close(&[partial.heads[0].mean(4)], &want, 1e-6, "good tiles only");
    assert_eq!(fx.counter("nodal_worker_tiles_total", "fetch_failed"), 1);
    assert_eq!(fx.counter("nodal_worker_tiles_total", "decode_failed"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_of_two_jobs_share_a_batch() {
    let fx = Fixture::new().await;
    let model = cytology();
    let size = model.tile_size();
    let reference = fx.put_model(&model).await;
    let a = fx
        .put_archive("cy-a.0003", &[CaseSpec::good("CY-1", 2, size, 1)])
        .await;
    let b = fx
        .put_archive("cy-b.0003", &[CaseSpec::good("CY-9", 2, size, 2)])
        .await;
    fx.publish(&job(&reference, "cy-a.0003", a, 0)).await;
    fx.publish(&job(&reference, "cy-b.0003", b, 1)).await;
    let mut settings = config(2_000);
    settings.batch_size = Some(4);
    let worker = fx.start(settings);
    let results = fx.results(2).await;
    worker.stop().await;
    assert!(
        results
            .iter()
            .all(|r| r.cases[0].tiles_ok == 2 && r.tile_failures.is_empty())
    );
    assert_eq!(
        fx.histogram("nodal_worker_batch_size"),
        (1, 4.0),
        "one batch of four tiles from two jobs"
    );
    let (fills, fill_sum) = fx.histogram("nodal_worker_batch_fill_ratio");
    assert_eq!((fills, fill_sum), (1, 1.0));
    let (waits, _) = fx.histogram("nodal_worker_queue_wait_seconds");
    assert_eq!(waits, 4, "every tile's wait is measured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_multimodal_model_gets_each_cases_report() {
    let fx = Fixture::new().await;
    let model = ptc();
    let size = model.tile_size();
    let width = model.card.report_width();
    let reference = fx.put_model(&model).await;
    let report_a: Vec<f32> = (0..width).map(|i| i as f32 * 0.5 - 1.0).collect();
    let report_b: Vec<f32> = (0..width).map(|i| 2.0 - i as f32).collect();
    let same_tile = CaseSpec::good("US-1", 1, size, 5).stored();
    let specs = vec![
        CaseSpec {
            case_id: "US-1".into(),
            tiles: vec![Some(same_tile[0].clone())],
            report: Some(report_a.clone()),
        },
        CaseSpec {
            case_id: "US-2".into(),
            tiles: vec![Some(same_tile[0].clone())],
            report: Some(report_b.clone()),
        },
        CaseSpec::good("US-3", 1, size, 6),
        CaseSpec::good("US-4", 1, size, 7).with_report(vec![1.0; width - 1]),
    ];
    let cases = fx.put_archive("us-a.0001", &specs).await;
    fx.publish(&job(&reference, "us-a.0001", cases, 0)).await;
    let worker = fx.start(config(20));
    let result = fx.results(1).await.remove(0);
    worker.stop().await;

    for (partial, report) in result.cases[..2].iter().zip([&report_a, &report_b]) {
        assert_eq!(partial.tiles_ok, 1);
        assert_eq!(partial.heads.len(), 3, "score, pT and pN heads");
        let want = means(&model_outputs(
            &model,
            &fx.runtime,
            &same_tile,
            Some(report),
        ));
        let got: Vec<Vec<f64>> = partial.heads.iter().map(|h| h.mean(1)).collect();
        assert_means_close(&got, &want, 1e-6, &partial.case_id);
        for head in &got[1..] {
            let sum: f64 = head.iter().sum();
            assert!(
                (sum - 1.0).abs() < 1e-5,
                "pT and pN logits are soft-maxed: {sum}"
            );
        }
    }
    assert_ne!(
        result.cases[0].heads, result.cases[1].heads,
        "the same tile with another report scores differently"
    );
    assert_eq!((result.cases[2].tiles_ok, result.cases[3].tiles_ok), (0, 0));
    let reasons: Vec<(&str, FailureStage, &str)> = result
        .tile_failures
        .iter()
        .map(|f| (f.case_id.as_str(), f.stage, f.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!((reasons[0].0, reasons[0].1), ("US-3", FailureStage::Infer));
    assert!(
        reasons[0].2.contains("needs the case's encoded report"),
        "{}",
        reasons[0].2
    );
    assert_eq!((reasons[1].0, reasons[1].1), ("US-4", FailureStage::Infer));
    assert!(
        reasons[1].2.contains(&format!("has {} values", width - 1)),
        "{}",
        reasons[1].2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inference_error_fails_its_batch_not_the_worker() {
    let fx = Fixture::new().await;
    let model = models::odd_batches_fail(32);
    let reference = fx.put_model(&model).await;
    let odd = fx
        .put_archive("cy-a.0004", &[CaseSpec::good("CY-1", 3, 32, 1)])
        .await;
    let even = fx
        .put_archive("cy-a.0005", &[CaseSpec::good("CY-2", 2, 32, 2)])
        .await;
    let mut settings = config(1_000);
    settings.batch_size = Some(4);
    let worker = fx.start(settings);
    fx.publish(&job(&reference, "cy-a.0004", odd, 0)).await;
    let failed = fx.results(1).await.remove(0);
    fx.publish(&job(&reference, "cy-a.0005", even, 1)).await;
    let answered = fx.results(1).await.remove(0);
    let summary = worker.stop().await;

    assert_eq!(failed.cases[0].tiles_ok, 0);
    assert_eq!(failed.tile_failures.len(), 3);
    for f in &failed.tile_failures {
        assert_eq!(f.stage, FailureStage::Infer);
        assert!(
            f.reason
                .contains("inference failed for the batch of 3 tiles"),
            "{}",
            f.reason
        );
    }
    assert_eq!(
        answered.cases[0].tiles_ok, 2,
        "the worker carries on after a failed batch"
    );
    assert!(answered.tile_failures.is_empty());
    assert_eq!(summary.jobs_answered, 2);
    assert_eq!(fx.counter("nodal_worker_tiles_total", "infer_failed"), 3);
}

/// `GET path` over plain HTTP/1.1: the status and the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("reads");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_readiness_are_served() {
    let fx = Fixture::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    let drain = nodal_worker::http::Drain::default();
    let app = nodal_worker::http::router(fx.registry.clone(), fx.health.clone(), drain.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    assert_eq!(
        http_get(addr, "/readyz").await.0,
        503,
        "not ready before consuming"
    );

    let worker = fx.start(config(20));
    let started = std::time::Instant::now();
    while http_get(addr, "/readyz").await.0 != 200 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never became ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("nodal_worker_in_flight_jobs 0"), "{body}");
    assert!(
        body.contains("# TYPE nodal_worker_infer_seconds histogram"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE nodal_worker_batch_fill_ratio histogram"),
        "{body}"
    );
    let draining = tokio::spawn(async move { http_get(addr, "/drain").await });
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        drain.shutdown.cancelled(),
    )
    .await
    .expect("GET /drain cancels the shutdown token");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !draining.is_finished(),
        "GET /drain answers only once the jobs in hand are settled"
    );
    worker.stop().await;
    drain.drained.cancel();
    assert_eq!(
        draining.await.expect("joins"),
        (200, "drained\n".to_owned())
    );
    assert_eq!(
        http_get(addr, "/readyz").await.0,
        503,
        "not ready once stopped"
    );
}
