//! Logging setup shared by every process.

use tracing_subscriber::EnvFilter;

/// Install the global tracing subscriber: `RUST_LOG` filters (else
/// `default_filter`, e.g. `info`), human-readable lines, or JSON lines when
/// `json` is set. Calling it twice is harmless.
pub fn init(json: bool, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
