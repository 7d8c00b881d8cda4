//! ONNX Runtime, loaded once from a dynamic library, and the sessions made
//! from it with the chosen execution provider and thread count.

use crate::error::WorkerError;
use ort::environment::Environment;
use ort::session::Session;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// File name of the ONNX Runtime library nodal is built against (`api-31`).
pub const ORT_LIB_NAME: &str = "libonnxruntime.so.1.31.1";
/// Where `scripts/setup.sh ort` puts it, relative to the repository root.
pub const ORT_CACHE_DIR: &str = ".cache/onnxruntime";

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// ONNX Runtime's CPU execution provider.
    Cpu,
    /// The CUDA execution provider on the given GPU (needs the `cuda` feature).
    Cuda {
        /// CUDA device ordinal.
        device_id: i32,
    },
}

/// How to set up ONNX Runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// The library file; `None` = `$ORT_DYLIB_PATH`, then the `.cache/onnxruntime` search.
    pub dylib: Option<PathBuf>,
    /// The execution provider.
    pub device: Device,
    /// Threads per session for intra-op parallelism (0 = ONNX Runtime's default).
    pub intra_threads: usize,
    /// Cap on the CUDA memory arena in bytes (CUDA only; `None` = no cap).
    pub cuda_mem_limit: Option<usize>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            dylib: None,
            device: Device::Cpu,
            intra_threads: 0,
            cuda_mem_limit: None,
        }
    }
}

/// An initialised ONNX Runtime: makes sessions for models.
#[derive(Clone)]
pub struct Runtime {
    env: Environment,
    config: RuntimeConfig,
    dylib: PathBuf,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .field("dylib", &self.dylib)
            .finish()
    }
}

/// The process-wide environment: ONNX Runtime's library is loaded once per process.
static ENVIRONMENT: OnceLock<(Environment, PathBuf)> = OnceLock::new();

impl Runtime {
    /// Load ONNX Runtime (once per process) and check that the device can be used.
    /// When the library is already loaded, the first path stays in use.
    pub fn init(config: RuntimeConfig) -> Result<Runtime, WorkerError> {
        let (env, dylib) = match ENVIRONMENT.get() {
            Some(loaded) => loaded.clone(),
            None => {
                let path = locate_dylib(config.dylib.as_deref())?;
                let env = ort::init_from(&path)
                    .map_err(|e| WorkerError::RuntimeLoad {
                        path: path.clone(),
                        message: e.to_string(),
                    })?
                    .with_name("nodal")
                    .build()
                    .map_err(WorkerError::ort("create environment"))?;
                ENVIRONMENT.get_or_init(|| (env, path)).clone()
            }
        };
        if let Device::Cuda { .. } = config.device {
            check_cuda_build()?;
        }
        Ok(Runtime { env, config, dylib })
    }

    /// The library in use.
    pub fn dylib(&self) -> &Path {
        &self.dylib
    }

    /// The configuration sessions are made with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// A session for an ONNX graph held in memory.
    pub fn session(&self, onnx: &[u8]) -> Result<Session, WorkerError> {
        let mut builder =
            Session::builder(&self.env).map_err(WorkerError::ort("session builder"))?;
        if self.config.intra_threads > 0 {
            builder = builder
                .with_intra_threads(self.config.intra_threads)
                .map_err(|e| WorkerError::ort("set intra-op threads")(e.into()))?;
        }
        // Intra-op threads that spin between parallel sections take the cores
        // the worker's decode pool shares with them (measured: ~8 % more
        // end-to-end tiles/s on 2 cores without spinning, the same ceiling).
        builder = builder
            .with_intra_op_spinning(false)
            .map_err(|e| WorkerError::ort("turn off intra-op spinning")(e.into()))?;
        builder = self.with_provider(builder)?;
        builder
            .commit_from_memory(onnx)
            .map_err(WorkerError::ort("load the ONNX graph"))
    }

    #[cfg(feature = "cuda")]
    fn with_provider(
        &self,
        builder: ort::session::builder::SessionBuilder,
    ) -> Result<ort::session::builder::SessionBuilder, WorkerError> {
        let Device::Cuda { device_id } = self.config.device else {
            return Ok(builder);
        };
        let mut cuda = ort::ep::CUDA::default().with_device_id(device_id);
        if let Some(limit) = self.config.cuda_mem_limit {
            cuda = cuda.with_memory_limit(limit);
        }
        builder
            .with_execution_providers([cuda.build().error_on_failure()])
            .map_err(|e| WorkerError::Provider {
                provider: "cuda",
                message: e.to_string(),
            })
    }

    #[cfg(not(feature = "cuda"))]
    fn with_provider(
        &self,
        builder: ort::session::builder::SessionBuilder,
    ) -> Result<ort::session::builder::SessionBuilder, WorkerError> {
        match self.config.device {
            Device::Cpu => Ok(builder),
            Device::Cuda { .. } => Err(cuda_not_built()),
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda_not_built() -> WorkerError {
    WorkerError::Provider {
        provider: "cuda",
        message: "this nodal was built without CUDA support; rebuild with `--features cuda`".into(),
    }
}

#[cfg(feature = "cuda")]
fn check_cuda_build() -> Result<(), WorkerError> {
    Ok(())
}

#[cfg(not(feature = "cuda"))]
fn check_cuda_build() -> Result<(), WorkerError> {
    Err(cuda_not_built())
}

/// Find the ONNX Runtime library: the configured path, else `$ORT_DYLIB_PATH`,
/// else `.cache/onnxruntime/libonnxruntime.so.1.31.1` in the current directory,
/// the executable's directory, or any of their ancestors.
pub fn locate_dylib(configured: Option<&Path>) -> Result<PathBuf, WorkerError> {
    let explicit = configured
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from));
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path);
        }
        return Err(WorkerError::RuntimeMissing {
            tried: path.display().to_string(),
        });
    }
    let relative = Path::new(ORT_CACHE_DIR).join(ORT_LIB_NAME);
    let tried = match nodal_common::locate::find_in_ancestors(&relative) {
        Ok(found) => return Ok(found),
        Err(tried) => tried,
    };
    let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(WorkerError::RuntimeMissing {
        tried: tried.join("; "),
    })
}
