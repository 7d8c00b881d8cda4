//! Messages that can never be handled go to the dead-letter queue, counted
//! by reason, and the worker keeps going; a model is loaded once for all
//! its jobs, from a model folder when one holds the job's hash.
//! Needs `scripts/setup.sh ort` (or ORT_DYLIB_PATH).

mod pipeline_support;

use bytes::Bytes;
use nodal_common::store::ObjectStore;
use nodal_types::layout::card_key;
use nodal_types::wire::{self, JobResult, Message, StageTimings};
use pipeline_support::models::{self, TestModel};
use pipeline_support::{CaseSpec, Fixture, config, job};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_and_the_worker_keeps_going() {
    let fx = Fixture::new().await;
    let model = TestModel::shipped("cytology-origin");
    let reference = fx.put_model(&model).await;
    let cases = fx
        .put_archive("cy-a.0001", &[CaseSpec::good("CY-1", 2, 224, 1)])
        .await;
    let good = job(&reference, "cy-a.0001", cases.clone(), 0);

    // Not a nodal message; a message from a future envelope version; a result on the jobs queue.
    fx.publish_raw(b"\x00\x01 garbage, not a job".to_vec())
        .await;
    let mut future = wire::encode(&Message::Job(good.clone())).expect("encodes");
    future[4] = 9;
    fx.publish_raw(future).await;
    let result = JobResult {
        run_id: good.run_id,
        job_id: good.job_id,
        worker: "w".into(),
        cases: vec![],
        tile_failures: vec![],
        timings: StageTimings::default(),
    };
    fx.publish_raw(wire::encode(&Message::Result(result)).expect("encodes"))
        .await;
    // A job for an archive that was never submitted.
    fx.publish(&job(&reference, "cy-z.0404", cases.clone(), 1))
        .await;
    // A job whose hash is not the card's; one whose card is missing; one
    // whose ONNX bytes were changed after the card was written. (Their hashes
    // differ from the good job's: a model already loaded under a job's hash
    // is reused without reading the store again.)
    let mut wrong_hash = reference.clone();
    wrong_hash.onnx_sha256 = "0".repeat(64);
    fx.publish(&job(&wrong_hash, "cy-a.0001", cases.clone(), 2))
        .await;
    let mut no_card = reference.clone();
    no_card.card_key = card_key("cytology-origin", "9.9.9");
    no_card.onnx_sha256 = "1".repeat(64);
    fx.publish(&job(&no_card, "cy-a.0001", cases.clone(), 3))
        .await;
    let tampered = TestModel::shipped("ptc-ln");
    let tampered_ref = fx.put_model(&tampered).await;
    let mut bytes = tampered.onnx.clone();
    bytes.push(0);
    fx.store
        .put(&tampered.card.onnx_key(), Bytes::from(bytes))
        .await
        .expect("put");
    fx.publish(&job(&tampered_ref, "cy-a.0001", cases.clone(), 4))
        .await;
    fx.publish(&good).await;

    let worker = fx.start(config(20));
    let answered = fx.results(1).await;
    let summary = worker.stop().await;

    assert_eq!(
        answered[0].job_id, good.job_id,
        "the good job is answered after the poison"
    );
    assert_eq!(answered[0].cases[0].tiles_ok, 2);
    assert_eq!(
        fx.depth("nodal.dead").await,
        7,
        "every poison message is dead-lettered"
    );
    assert_eq!(fx.depth("nodal.jobs").await, 0);
    assert_eq!(
        fx.depth("nodal.results").await,
        0,
        "nothing else was answered"
    );
    for (reason, n) in [
        ("undecodable", 1),
        ("unknown_version", 1),
        ("wrong_kind", 1),
        ("missing_archive", 1),
        ("bad_model", 3),
    ] {
        assert_eq!(
            fx.counter("nodal_worker_dead_lettered_total", reason),
            n,
            "{reason}"
        );
    }
    assert_eq!(
        (
            summary.dead_lettered,
            summary.jobs_answered,
            summary.jobs_requeued
        ),
        (7, 1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_is_loaded_once_and_shared_by_its_jobs() {
    let fx = Fixture::new().await;
    let model = TestModel::shipped("cytology-origin");
    let reference = fx.put_model(&model).await;
    for i in 0..5 {
        let archive = format!("cy-a.{i:04}");
        let cases = fx
            .put_archive(&archive, &[CaseSpec::good("CY-1", 1, 224, i)])
            .await;
        fx.publish(&job(&reference, &archive, cases, i)).await;
    }
    let worker = fx.start(config(20));
    let results = fx.results(5).await;
    worker.stop().await;
    let mut ids: Vec<Uuid> = results.iter().map(|r| r.job_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    assert_eq!(
        fx.histogram("nodal_worker_model_load_seconds").0,
        1,
        "one load for five jobs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_folder_with_the_jobs_hash_is_used_before_the_store() {
    let fx = Fixture::new().await;
    let model = TestModel::shipped("cytology-origin");
    // The model is only in the folder: the store has no card for it.
    let reference = nodal_types::wire::ModelRef {
        name: model.card.name.clone(),
        version: model.card.version.clone(),
        card_key: card_key(&model.card.name, &model.card.version),
        onnx_sha256: model.card.onnx_sha256.clone(),
    };
    let cases = fx
        .put_archive("cy-a.0001", &[CaseSpec::good("CY-1", 2, 224, 1)])
        .await;
    fx.publish(&job(&reference, "cy-a.0001", cases.clone(), 0))
        .await;
    // A job for a hash no folder holds goes to the store, which lacks it.
    let mut other = reference.clone();
    other.onnx_sha256 = "2".repeat(64);
    fx.publish(&job(&other, "cy-a.0001", cases, 1)).await;
    let mut settings = config(20);
    settings.model_dirs = vec![
        std::path::PathBuf::from("/nonexistent"),
        models::models_dir(),
    ];
    let worker = fx.start(settings);
    let result = fx.results(1).await.remove(0);
    let summary = worker.stop().await;
    assert_eq!(result.cases[0].tiles_ok, 2);
    assert_eq!((summary.jobs_answered, summary.dead_lettered), (1, 1));
    assert_eq!(
        fx.counter("nodal_worker_dead_lettered_total", "bad_model"),
        1
    );
}
