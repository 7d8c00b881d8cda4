//! One object-store suite, run against every implementation: LocalStore over
//! a temporary folder and S3Store against a real S3 server (s3s-fs). Then
//! the S3-only behaviour: refused credentials, outages, multipart, prefixes.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use nodal_common::store::{
    LocalStore, ObjectStore, S3Store, SharedStore, StoreConfig, StoreErrorKind, open_store,
};
use nodal_testkit::S3Server;
use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The suite: each check takes any store, empty at the start.
mod suite {
    use super::*;

    /// A body of `len` bytes that differs from position to position and
    /// from seed to seed, so that misplaced bytes are caught.
    pub fn body(len: usize, seed: u8) -> Bytes {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
            .collect::<Vec<u8>>()
            .into()
    }

    pub async fn put_get_head(store: &dyn ObjectStore) {
        let key = "archives/cy-a.0123456789abcdef/manifest.json";
        assert_eq!(store.head(key).await.unwrap(), None);
        store
            .put(key, Bytes::from_static(b"{\"cases\":[]}"))
            .await
            .unwrap();
        assert_eq!(
            store.get(key).await.unwrap(),
            Bytes::from_static(b"{\"cases\":[]}")
        );
        let meta = store.head(key).await.unwrap().unwrap();
        assert_eq!((meta.key.as_str(), meta.size), (key, 12));
        store.put("empty", Bytes::new()).await.unwrap();
        assert_eq!(store.get("empty").await.unwrap().len(), 0);
        assert_eq!(store.head("empty").await.unwrap().unwrap().size, 0);
    }

    /// Ranges at the start, in the middle and at the end of an object are
    /// exactly its bytes there; 0 bytes read nothing; a range past the end
    /// is `Permanent` and a missing object `NotFound`, both naming the key.
    pub async fn get_range_reads_exact_bytes(store: &dyn ObjectStore) {
        let key = "archives/cy-a.0123456789abcdef/tiles/c1/0.jpg";
        let whole = body(100_003, 5);
        store.put(key, whole.clone()).await.unwrap();
        let size = whole.len() as u64;
        for (offset, len) in [
            (0, 1),
            (0, 4096),
            (1, 2),
            (50_000, 12_345),
            (size - 7, 7),
            (size - 1, 1),
            (0, size),
        ] {
            let got = store.get_range(key, offset, len).await.unwrap();
            let want = whole.slice(offset as usize..(offset + len) as usize);
            assert_eq!(got.len() as u64, len, "{offset}+{len}");
            assert!(got == want, "bytes {offset}+{len} differ");
        }
        for offset in [0, 77, size] {
            let got = store.get_range(key, offset, 0).await.unwrap();
            assert!(got.is_empty(), "0 bytes at {offset}");
        }
        for (offset, len) in [
            (size - 7, 8),
            (size, 1),
            (size + 10, 5),
            (0, size + 1),
            (size + 1, 0),
            (u64::MAX, 2),
        ] {
            let err = store.get_range(key, offset, len).await.unwrap_err();
            assert_eq!(err.kind, StoreErrorKind::Permanent, "{offset}+{len}: {err}");
            assert_eq!((err.op, err.key.as_str()), ("get_range", key), "{err}");
            assert!(!err.is_transient());
        }
        let err = store.get_range(key, size - 2, 3).await.unwrap_err();
        assert!(err.message.contains("ends before"), "{err}");
        for (offset, len) in [(0, 1), (10, 10), (0, 0)] {
            let err = store
                .get_range("archives/cy-a.0123456789abcdef/none", offset, len)
                .await
                .unwrap_err();
            assert_eq!(err.kind, StoreErrorKind::NotFound, "{offset}+{len}: {err}");
            assert!(err.to_string().contains("/none"), "{err}");
        }
        assert_eq!(
            store.get_range("a//b", 0, 1).await.unwrap_err().kind,
            StoreErrorKind::Permanent
        );
        store.put("empty", Bytes::new()).await.unwrap();
        assert!(store.get_range("empty", 0, 0).await.unwrap().is_empty());
        let err = store.get_range("empty", 0, 1).await.unwrap_err();
        assert_eq!(err.kind, StoreErrorKind::Permanent, "{err}");
        assert!(
            store.get(key).await.unwrap() == whole,
            "the object is unchanged"
        );
    }

    pub async fn overwrite_replaces(store: &dyn ObjectStore) {
        store.put("runs/r1/run.json", body(5000, 1)).await.unwrap();
        store.put("runs/r1/run.json", body(10, 2)).await.unwrap();
        assert_eq!(store.get("runs/r1/run.json").await.unwrap(), body(10, 2));
        assert_eq!(
            store.head("runs/r1/run.json").await.unwrap().unwrap().size,
            10
        );
        assert_eq!(store.list("runs/").await.unwrap().len(), 1);
    }

    pub async fn delete_removes_and_is_idempotent(store: &dyn ObjectStore) {
        store.put("a/b/c", body(3, 0)).await.unwrap();
        store.put("a/b/d", body(4, 0)).await.unwrap();
        store.delete("a/b/c").await.unwrap();
        store.delete("a/b/c").await.unwrap();
        store.delete("never/was").await.unwrap();
        assert_eq!(store.head("a/b/c").await.unwrap(), None);
        let keys: Vec<String> = store
            .list("a/")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(keys, ["a/b/d"]);
    }

    pub async fn missing_objects_are_not_found(store: &dyn ObjectStore) {
        store.put("tiles/c1/0.jpg", body(10, 0)).await.unwrap();
        for key in ["tiles/c1/1.jpg", "tiles/c2/0.jpg", "nothing/here"] {
            let err = store.get(key).await.unwrap_err();
            assert_eq!(err.kind, StoreErrorKind::NotFound, "{key}: {err}");
            assert!(err.is_not_found() && !err.is_transient());
            assert!(err.to_string().contains(key), "{err}");
            assert_eq!(store.head(key).await.unwrap(), None, "{key}");
        }
    }

    /// More keys than one ListObjectsV2 page (1000), listed whole and by
    /// prefixes that end inside a segment.
    pub async fn list_pages_sorts_and_filters(store: &dyn ObjectStore) {
        let keys: Vec<String> = (0..1100)
            .map(|i| format!("many/{:02}/{i:05}.bin", i % 13))
            .collect();
        futures::stream::iter(keys.iter())
            .map(|k| store.put(k, Bytes::from(k.clone())))
            .buffer_unordered(32)
            .try_collect::<Vec<()>>()
            .await
            .unwrap();
        store.put("manyother", body(1, 0)).await.unwrap();
        store.put("zzz/after", body(1, 0)).await.unwrap();
        let listed = store.list("many/").await.unwrap();
        let mut want = keys.clone();
        want.sort();
        assert_eq!(
            listed.iter().map(|m| m.key.clone()).collect::<Vec<_>>(),
            want
        );
        assert!(listed.iter().all(|m| m.size == m.key.len() as u64));
        let partial = store.list("many/0").await.unwrap();
        let want_partial = want.iter().filter(|k| k.starts_with("many/0")).count();
        assert_eq!(partial.len(), want_partial);
        assert!(want_partial > 500 && want_partial < 1100);
        let many = store.list("many").await.unwrap();
        assert_eq!(
            many.len(),
            1101,
            "prefix without '/' also matches manyother"
        );
        let all = store.list("").await.unwrap();
        assert_eq!(all.len(), 1102);
        assert!(all.windows(2).all(|w| w[0].key < w[1].key));
        assert!(store.list("nothing/").await.unwrap().is_empty());
    }

    /// Larger than the multipart threshold the S3 fixture uses (5 MiB).
    pub async fn large_objects_round_trip(store: &dyn ObjectStore) {
        let big = body(12 * 1024 * 1024 + 12345, 7);
        store
            .put("models/resnet/1/model.onnx", big.clone())
            .await
            .unwrap();
        let back = store.get("models/resnet/1/model.onnx").await.unwrap();
        assert!(back == big, "large object differs");
        let meta = store
            .head("models/resnet/1/model.onnx")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(meta.size, big.len() as u64);
    }

    /// Concurrent writers: distinct keys all land; writers racing on one
    /// key leave exactly one of their bodies, whole.
    pub async fn concurrent_puts(store: &dyn ObjectStore) {
        let distinct = (0..64).map(|i| async move {
            store
                .put(&format!("par/{i}"), body(1000 + i, i as u8))
                .await
        });
        futures::future::try_join_all(distinct).await.unwrap();
        for i in 0..64 {
            assert_eq!(
                store.get(&format!("par/{i}")).await.unwrap(),
                body(1000 + i, i as u8)
            );
        }
        let racing = (0..16u8).map(|i| store.put("race/one", body(200_000, i)));
        futures::future::try_join_all(racing).await.unwrap();
        let got = store.get("race/one").await.unwrap();
        assert!(
            (0..16u8).any(|i| got == body(200_000, i)),
            "a mixed or partial body"
        );
        assert_eq!(store.list("race/").await.unwrap().len(), 1);
    }

    pub async fn odd_but_valid_keys(store: &dyn ObjectStore) {
        let keys = [
            "odd/with space.jpg",
            "odd/plus+equals=amp&at@.bin",
            "odd/percent%20not-decoded",
            "odd/ünïcødé/日本語.png",
            "odd/quote'paren(1)!~,;",
            "odd/..dots.../.hidden",
            "odd/#hash$dollar",
        ];
        for (i, key) in keys.iter().enumerate() {
            store.put(key, body(10 + i, i as u8)).await.unwrap();
        }
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(
                store.get(key).await.unwrap(),
                body(10 + i, i as u8),
                "{key}"
            );
        }
        let mut want: Vec<&str> = keys.to_vec();
        want.sort();
        let listed = store.list("odd/").await.unwrap();
        assert_eq!(
            listed.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(),
            want
        );
    }

    pub async fn bad_keys_are_refused(store: &dyn ObjectStore) {
        for key in [
            "",
            "/abs",
            "a//b",
            "a/../b",
            "..",
            "trailing/",
            "back\\slash",
            "ctl\u{1}",
        ] {
            let err = store.put(key, body(1, 0)).await.unwrap_err();
            assert_eq!(err.kind, StoreErrorKind::Permanent, "{key:?}");
            assert!(err.to_string().contains("invalid key"), "{err}");
            assert!(err.key == key, "the error names the key: {err:?}");
            assert!(store.get(key).await.is_err());
            assert!(store.head(key).await.is_err());
            assert!(store.delete(key).await.is_err());
        }
        for prefix in ["/", "a//", "../x"] {
            assert!(store.list(prefix).await.is_err(), "{prefix:?}");
        }
        assert!(
            store.list("").await.unwrap().is_empty(),
            "nothing was written"
        );
    }
}

/// A store and whatever keeps its backend alive.
struct Fixture {
    store: SharedStore,
    _backend: Box<dyn Any + Send>,
}

async fn local() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path().join("store")).await.unwrap();
    Fixture {
        store: Arc::new(store),
        _backend: Box::new(dir),
    }
}

async fn s3() -> Fixture {
    let server = S3Server::start().await.unwrap();
    let store = S3Store::connect(&server.config("site/prefix"))
        .await
        .unwrap();
    Fixture {
        store: Arc::new(store),
        _backend: Box::new(server),
    }
}

macro_rules! run_suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            async fn store() -> Fixture {
                super::$backend().await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn put_get_head() {
                suite::put_get_head(&*store().await.store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn get_range_reads_exact_bytes() {
                suite::get_range_reads_exact_bytes(&*store().await.store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn overwrite_replaces() {
                suite::overwrite_replaces(&*store().await.store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn delete_removes_and_is_idempotent() {
                suite::delete_removes_and_is_idempotent(&*store().await.store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn missing_objects_are_not_found() {
                suite::missing_objects_are_not_found(&*store().await.store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn list_pages_sorts_and_filters() {
                suite::list_pages_sorts_and_filters(&*store().await.store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn large_objects_round_trip() {
                suite::large_objects_round_trip(&*store().await.store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_puts() {
                suite::concurrent_puts(&*store().await.store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn odd_but_valid_keys() {
                suite::odd_but_valid_keys(&*store().await.store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bad_keys_are_refused() {
                suite::bad_keys_are_refused(&*store().await.store).await;
            }
        }
    };
}

run_suite!(local);
run_suite!(s3);

mod local_only {
    use super::*;

    #[tokio::test]
    async fn objects_survive_reopening_and_temp_files_never_show() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();
        store.put("a/b", suite::body(100, 3)).await.unwrap();
        // A writer that died mid-put leaves a temporary file behind.
        std::fs::write(dir.path().join("a/.nodal-tmp-deadbeef"), b"partial").unwrap();
        let reopened = open_store(&StoreConfig::Local {
            root: dir.path().to_owned(),
        })
        .await
        .unwrap();
        assert_eq!(reopened.get("a/b").await.unwrap(), suite::body(100, 3));
        let keys: Vec<String> = reopened
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(keys, ["a/b"]);
        let err = reopened
            .put("a/.nodal-tmp-x", Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind, StoreErrorKind::Permanent);
    }

    /// A key that only prefixes other keys is a folder on disk: not an object.
    #[tokio::test]
    async fn folders_are_not_objects() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();
        store
            .put("tiles/c1/0.jpg", suite::body(1, 0))
            .await
            .unwrap();
        for key in ["tiles/c1", "tiles", "tiles/c1/0.jpg/deeper"] {
            let err = store.get(key).await.unwrap_err();
            assert_eq!(err.kind, StoreErrorKind::NotFound, "{key}: {err}");
            assert_eq!(store.head(key).await.unwrap(), None, "{key}");
            store.delete(key).await.unwrap();
        }
        assert!(store.head("tiles/c1/0.jpg").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn an_object_and_a_folder_of_the_same_name_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();
        store.put("x/y", suite::body(1, 0)).await.unwrap();
        let err = store.put("x", suite::body(1, 0)).await.unwrap_err();
        assert_eq!(err.kind, StoreErrorKind::Permanent, "{err}");
        assert!(err.to_string().contains("\"x\""), "{err}");
    }
}

mod s3_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_secret_is_denied() {
        let server = S3Server::start().await.unwrap();
        let mut config = server.config("");
        config.secret_key = Some("not-the-secret".into());
        let store = S3Store::connect(&config).await.unwrap();
        let err = store.put("k", Bytes::from_static(b"x")).await.unwrap_err();
        assert_eq!(err.kind, StoreErrorKind::Denied, "{err}");
        let err = store.get("k").await.unwrap_err();
        assert_eq!(err.kind, StoreErrorKind::Denied, "{err}");
        assert!(
            err.message.contains("SignatureDoesNotMatch (HTTP 403)"),
            "{err}"
        );
        assert!(!format!("{err} {err:?} {store:?}").contains("not-the-secret"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_server_is_transient_and_recovers() {
        let mut server = S3Server::start().await.unwrap();
        let store = S3Store::connect(&server.config("p")).await.unwrap();
        store.put("k", Bytes::from_static(b"before")).await.unwrap();
        server.stop();
        let started = Instant::now();
        let err = store.get("k").await.unwrap_err();
        assert_eq!(err.kind, StoreErrorKind::Transient, "{err}");
        assert!(err.message.contains("Connection refused"), "{err}");
        assert!(err.is_transient());
        let err = store.put("k2", Bytes::from_static(b"x")).await.unwrap_err();
        assert_eq!(err.kind, StoreErrorKind::Transient, "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "gave up in time"
        );
        server.restart().await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), Bytes::from_static(b"before"));
    }

    /// The SDK's own retries carry a request across a short outage.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retries_ride_out_a_short_outage() {
        let mut server = S3Server::start().await.unwrap();
        let mut config = server.config("p");
        config.max_attempts = 12;
        config.retry_initial_backoff = Duration::from_millis(200);
        let store = Arc::new(S3Store::connect(&config).await.unwrap());
        store.put("k", Bytes::from_static(b"kept")).await.unwrap();
        server.stop();
        let reader = store.clone();
        let pending = tokio::spawn(async move { reader.get("k").await });
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(
            !pending.is_finished(),
            "the request should still be retrying"
        );
        server.restart().await.unwrap();
        let got = pending.await.unwrap().unwrap();
        assert_eq!(got, Bytes::from_static(b"kept"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bodies_over_the_threshold_go_in_parts() {
        let server = S3Server::start().await.unwrap();
        let store = S3Store::connect(&server.config("mp")).await.unwrap();
        let big = suite::body(11 * 1024 * 1024, 9);
        store.put("big.bin", big.clone()).await.unwrap();
        assert!(store.get("big.bin").await.unwrap() == big);
        // s3s-fs logs each completed multipart upload with its ETag,
        // `<md5>-<number of parts>`: 5 + 5 + 1 MiB.
        let completed = |log: &str| {
            log.lines()
                .filter(|l| l.contains("multipart etag"))
                .map(|l| l.contains("-3\""))
                .collect::<Vec<bool>>()
        };
        assert_eq!(completed(&server.log()), [true], "{}", server.log());
        // Below the threshold: one plain PUT.
        store
            .put("small.bin", suite::body(4 * 1024 * 1024, 1))
            .await
            .unwrap();
        assert_eq!(completed(&server.log()).len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prefixes_keep_stores_apart() {
        let server = S3Server::start().await.unwrap();
        let a = S3Store::connect(&server.config("site-a")).await.unwrap();
        let b = S3Store::connect(&server.config("site-b/deeper"))
            .await
            .unwrap();
        a.put("x/1", Bytes::from_static(b"a")).await.unwrap();
        b.put("x/1", Bytes::from_static(b"b")).await.unwrap();
        assert_eq!(a.get("x/1").await.unwrap(), Bytes::from_static(b"a"));
        let listed = b.list("").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "x/1");
        assert!(
            server
                .data_dir()
                .join("nodal-test/site-b/deeper/x/1")
                .is_file()
        );
    }
}
