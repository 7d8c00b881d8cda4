//! Asking for CUDA where it cannot be had is a clear error when the worker
//! starts, not a failure of every job. Without the `cuda` feature the
//! runtime refuses at once; with it, on a machine without a usable GPU, the
//! start-up probe refuses with the provider's reason.
//! Needs `scripts/setup.sh ort` (or ORT_DYLIB_PATH).

mod pipeline_support;

use nodal_worker::{Device, ErrorKind, Runtime, RuntimeConfig, WorkerError};
use pipeline_support::{Fixture, config};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuda_without_a_usable_gpu_is_a_clear_error_at_start() {
    let asked = RuntimeConfig {
        device: Device::Cuda { device_id: 0 },
        intra_threads: 1,
        ..RuntimeConfig::default()
    };
    let runtime = match Runtime::init(asked) {
        Ok(runtime) => runtime,
        Err(e) => {
            if cfg!(feature = "cuda") {
                panic!("a CUDA build initialises the runtime: {e}");
            }
            assert!(e.to_string().contains("--features cuda"), "{e}");
            assert_eq!(e.kind(), ErrorKind::Fatal);
            return;
        }
    };
    let mut fx = Fixture::new().await;
    fx.runtime = Arc::new(runtime);
    let worker = fx.start(config(20));
    worker.shutdown.cancel();
    match worker.handle.await.expect("worker task") {
        Err(e) => {
            assert!(
                matches!(
                    e,
                    WorkerError::Provider {
                        provider: "cuda",
                        ..
                    }
                ),
                "{e}"
            );
            assert!(
                e.to_string()
                    .starts_with("execution provider cuda unavailable: "),
                "{e}"
            );
            assert_eq!(e.kind(), ErrorKind::Fatal);
            eprintln!("refused as expected: {e}");
        }
        Ok(_) => {
            nodal_worker::probe::check_device(&fx.runtime).expect("a GPU is there: the probe works")
        }
    }
}
