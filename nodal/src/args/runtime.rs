//! `RuntimeArgs`: where and how ONNX Runtime runs (worker, bench, demo).

use clap::{Args, ValueEnum};
use nodal_worker::config::share_threads;
use nodal_worker::{Device, RuntimeConfig};
use std::path::PathBuf;

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// ONNX Runtime's CPU execution provider.
    Cpu,
    /// The CUDA execution provider (a build with `--features cuda` and a GPU).
    Cuda,
}

/// The ONNX Runtime library, the device, and its threads.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// The ONNX Runtime library [default: $ORT_DYLIB_PATH, else .cache/onnxruntime/libonnxruntime.so.1.31.1].
    #[arg(long, env = "NODAL_ORT_DYLIB")]
    pub ort_dylib: Option<PathBuf>,
    /// Where inference runs.
    #[arg(long, env = "NODAL_DEVICE", value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// CUDA device ordinal (with --device cuda).
    #[arg(long, env = "NODAL_CUDA_DEVICE", default_value_t = 0)]
    pub cuda_device: i32,
    /// Cap on the CUDA memory arena, MiB (with --device cuda) [default: no cap].
    #[arg(long, env = "NODAL_CUDA_MEM_LIMIT_MIB")]
    pub cuda_mem_limit_mib: Option<usize>,
    /// ONNX Runtime intra-op threads (0: ONNX Runtime's default, one per
    /// core), shared out among the pipelines.
    #[arg(long, env = "NODAL_INTRA_OP_THREADS", default_value_t = 0)]
    pub intra_op_threads: usize,
}

impl RuntimeArgs {
    /// The device these flags name.
    pub fn device(&self) -> Device {
        match self.device {
            DeviceArg::Cpu => Device::Cpu,
            DeviceArg::Cuda => Device::Cuda {
                device_id: self.cuda_device,
            },
        }
    }

    /// The runtime settings for one of `pipelines` pipelines sharing the
    /// intra-op threads.
    pub fn config(&self, pipelines: usize) -> RuntimeConfig {
        RuntimeConfig {
            dylib: self.ort_dylib.clone(),
            device: self.device(),
            intra_threads: if pipelines > 1 {
                share_threads(self.intra_op_threads, pipelines)
            } else {
                self.intra_op_threads
            },
            cuda_mem_limit: self
                .cuda_mem_limit_mib
                .map(|mib| mib.saturating_mul(1 << 20)),
        }
    }
}
