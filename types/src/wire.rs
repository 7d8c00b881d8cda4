//! Wire messages between coordinator and workers, in a versioned envelope.
//!
//! Layout of every message body: the 4-byte magic `NDL1`, a little-endian
//! `u16` envelope version, a `u8` message kind, then the bincode payload.
//! A body that does not decode, or has an unknown version or kind, is a
//! [`WireError`] — the consumer dead-letters it; nothing panics.

use crate::partial::CasePartial;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Magic bytes that open every nodal message.
pub const MAGIC: &[u8; 4] = b"NDL1";
/// The envelope version this build writes and reads (2: jobs name byte
/// ranges of tile shards, not tile objects).
pub const WIRE_VERSION: u16 = 2;
/// Largest body accepted by the decoder (64 MiB).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// A shard of work: some cases' tiles of one archive, for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The run the job belongs to.
    pub run_id: Uuid,
    /// Deterministic id within the run; results are stored under it.
    pub job_id: Uuid,
    /// Index of the job in the run's plan.
    pub index: u32,
    /// The model to run.
    pub model: ModelRef,
    /// The archive whose tiles the job holds.
    pub archive_id: String,
    /// The case parts of this job.
    pub cases: Vec<JobCase>,
    /// W3C `traceparent` of the span that published the job, if any.
    pub traceparent: Option<String>,
}

impl Job {
    /// Number of tiles in the job.
    pub fn tile_count(&self) -> usize {
        self.cases.iter().map(|c| c.tiles.len()).sum()
    }
}

/// Where a worker finds a model and how it checks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// Object key of the model's `card.json` in the store.
    pub card_key: String,
    /// Expected hex SHA-256 of the ONNX file.
    pub onnx_sha256: String,
}

/// One case's share of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobCase {
    /// The case id.
    pub case_id: String,
    /// Part number when the case is split over several jobs (0 otherwise).
    pub part: u32,
    /// The tiles to run, in manifest order.
    pub tiles: Vec<JobTile>,
    /// The encoded report-feature vector, for multimodal models.
    pub report: Option<Vec<f32>>,
}

/// One tile of a job: its name, and the bytes of a shard that hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTile {
    /// The tile's name (`<case>/<image>-<x>-<y>.jpg`), for results and logs.
    pub name: String,
    /// Object key of the shard holding it.
    pub shard_key: String,
    /// Byte offset of the tile in the shard.
    pub offset: u64,
    /// Length of the tile's bytes.
    pub length: u32,
    /// CRC-32C of the tile's bytes, checked after reading.
    pub crc32c: u32,
}

impl JobTile {
    /// A tile of archive `archive_id`'s manifest, as jobs name it.
    pub fn of(archive_id: &str, tile: &crate::manifest::TileRef) -> Self {
        Self {
            name: tile.name.clone(),
            shard_key: crate::layout::shard_key(archive_id, tile.at.shard),
            offset: tile.at.offset,
            length: tile.at.length,
            crc32c: tile.at.crc32c,
        }
    }

    /// The offset one past the tile's last byte.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.length)
    }
}

/// What a worker returns for one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// The run.
    pub run_id: Uuid,
    /// The job answered.
    pub job_id: Uuid,
    /// Identity of the worker that ran it.
    pub worker: String,
    /// One partial aggregate per case part that had at least one usable tile,
    /// and for every case part, even when all its tiles failed (then `tiles_ok` = 0).
    pub cases: Vec<CasePartial>,
    /// Tiles that could not be used, with the reason.
    pub tile_failures: Vec<TileFailure>,
    /// Time spent per stage, for progress and metrics.
    pub timings: StageTimings,
}

/// A tile the worker could not use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileFailure {
    /// The case the tile belongs to.
    pub case_id: String,
    /// The tile's name ([`JobTile::name`]).
    pub tile: String,
    /// Which stage failed.
    pub stage: FailureStage,
    /// Human-readable reason.
    pub reason: String,
}

/// The stage at which a tile failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureStage {
    /// The tile could not be fetched from the store, or its bytes failed
    /// their checksum.
    Fetch,
    /// The tile's bytes did not decode to an image of the expected size.
    Decode,
    /// Inference failed on the batch holding the tile.
    Infer,
}

impl FailureStage {
    /// Lowercase name used in `failures.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureStage::Fetch => "fetch",
            FailureStage::Decode => "decode",
            FailureStage::Infer => "infer",
        }
    }
}

/// Seconds a job spent in each stage of the worker (summed over its tiles' batches).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimings {
    /// Fetching tiles.
    pub fetch_s: f64,
    /// Decoding and preprocessing.
    pub decode_s: f64,
    /// Running the model (the job's share of its batches).
    pub infer_s: f64,
}

/// A job a worker handed back to the jobs queue because the store was
/// unavailable, with when that first happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandedBack {
    /// The job, unchanged.
    pub job: Job,
    /// When a worker first met a store outage on it (Unix milliseconds):
    /// its transient deadline counts from here, whichever worker holds it.
    pub first_outage_unix_ms: u64,
    /// Times it was handed back so far.
    pub times: u32,
}

/// Kinds of message that travel in the envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Coordinator → worker.
    Job(Job),
    /// Worker → coordinator.
    Result(JobResult),
    /// Worker → worker: a job to try again after a store outage.
    HandedBack(HandedBack),
}

impl Message {
    fn kind_byte(&self) -> u8 {
        match self {
            Message::Job(_) => 1,
            Message::Result(_) => 2,
            Message::HandedBack(_) => 3,
        }
    }
}

/// Why a message body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The body does not start with nodal's magic bytes.
    #[error("not a nodal message (bad magic bytes)")]
    BadMagic,
    /// The body is shorter than the envelope header.
    #[error("message truncated: {0} bytes")]
    Truncated(usize),
    /// The body is larger than [`MAX_MESSAGE_BYTES`].
    #[error("message too large: {0} bytes")]
    TooLarge(usize),
    /// Written by a nodal speaking another envelope version.
    #[error("unknown envelope version {found} (this build reads {WIRE_VERSION})")]
    UnknownVersion {
        /// The version found.
        found: u16,
    },
    /// The kind byte names no known message.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// The payload does not decode as the announced message.
    #[error("payload does not decode: {0}")]
    Payload(String),
    /// A payload could not be encoded (should not happen for valid values).
    #[error("payload does not encode: {0}")]
    Encode(String),
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_MESSAGE_BYTES>()
}

/// Encode a message into its envelope.
pub fn encode(message: &Message) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&WIRE_VERSION.to_le_bytes());
    out.push(message.kind_byte());
    let payload = match message {
        Message::Job(j) => bincode::serde::encode_to_vec(j, bincode_config()),
        Message::Result(r) => bincode::serde::encode_to_vec(r, bincode_config()),
        Message::HandedBack(h) => bincode::serde::encode_to_vec(h, bincode_config()),
    }
    .map_err(|e| WireError::Encode(e.to_string()))?;
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decode an envelope into a message.
pub fn decode(body: &[u8]) -> Result<Message, WireError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge(body.len()));
    }
    if body.len() < 7 {
        return Err(WireError::Truncated(body.len()));
    }
    if &body[..4] != MAGIC {
        return Err(WireError::BadMagic);
    }
    let version = u16::from_le_bytes([body[4], body[5]]);
    if version != WIRE_VERSION {
        return Err(WireError::UnknownVersion { found: version });
    }
    let payload = &body[7..];
    match body[6] {
        1 => decode_exact(payload).map(Message::Job),
        2 => decode_exact(payload).map(Message::Result),
        3 => decode_exact(payload).map(Message::HandedBack),
        other => Err(WireError::UnknownKind(other)),
    }
}

fn decode_exact<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, WireError> {
    let (value, used) = bincode::serde::decode_from_slice(payload, bincode_config())
        .map_err(|e| WireError::Payload(e.to_string()))?;
    if used != payload.len() {
        return Err(WireError::Payload(format!(
            "{} trailing bytes after the payload",
            payload.len() - used
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_job() -> Job {
        Job {
            run_id: Uuid::from_u128(1),
            job_id: Uuid::from_u128(2),
            index: 7,
            model: ModelRef {
                name: "ptc-ln".into(),
                version: "1.0.0".into(),
                card_key: "models/ptc-ln/1.0.0/card.json".into(),
                onnx_sha256: "ab".repeat(32),
            },
            archive_id: "arc".into(),
            cases: vec![JobCase {
                case_id: "US-1".into(),
                part: 0,
                tiles: vec![JobTile {
                    name: "US-1/0-0-0.jpg".into(),
                    shard_key: "archives/arc/shards/000000.bin".into(),
                    offset: 4096,
                    length: 1234,
                    crc32c: 0xDEAD_BEEF,
                }],
                report: Some(vec![0.5, 1.0]),
            }],
            traceparent: None,
        }
    }

    #[test]
    fn job_round_trips() {
        let m = Message::Job(sample_job());
        assert_eq!(decode(&encode(&m).unwrap()).unwrap(), m);
    }

    #[test]
    fn a_handed_back_job_round_trips_with_its_first_outage() {
        let m = Message::HandedBack(HandedBack {
            job: sample_job(),
            first_outage_unix_ms: 1_764_000_000_123,
            times: 3,
        });
        let body = encode(&m).unwrap();
        assert_eq!(body[6], 3);
        assert_eq!(decode(&body).unwrap(), m);
    }

    #[test]
    fn unknown_version_is_rejected_by_name() {
        let mut body = encode(&Message::Job(sample_job())).unwrap();
        body[4] = 9;
        assert!(matches!(
            decode(&body),
            Err(WireError::UnknownVersion { found: 9 })
        ));
    }

    #[test]
    fn trailing_bytes_and_bad_kind_are_rejected() {
        let mut body = encode(&Message::Job(sample_job())).unwrap();
        body.push(0);
        assert!(matches!(decode(&body), Err(WireError::Payload(_))));
        body.pop();
        body[6] = 42;
        assert!(matches!(decode(&body), Err(WireError::UnknownKind(42))));
    }

    proptest! {
        #[test]
        fn decoder_never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decoder_never_panics_on_corrupted_jobs(flips in prop::collection::vec((0usize..400, any::<u8>()), 1..8)) {
            let mut body = encode(&Message::Job(sample_job())).unwrap();
            for (i, b) in flips { let n = body.len(); body[i % n] = b; }
            let _ = decode(&body);
        }
    }
}
