//! The one place that sorts lapin and pool errors into transient (reconnect
//! and retry) and permanent.

use super::connect::PoolError;
use crate::broker::BrokerError;
use lapin::protocol::{AMQPErrorKind, AMQPHardError};
use lapin::{Error, ErrorKind};

/// A [`BrokerError`] for `op` on `queue` from a lapin error.
pub(super) fn from_lapin(op: &'static str, queue: &str, err: &Error) -> BrokerError {
    if let Some(problem) = crate::tls::certificate_problem(err) {
        return BrokerError::permanent(
            op,
            queue,
            format!(
                "TLS: the broker's certificate was refused: {problem} (trust its CA with --amqp-ca-file)"
            ),
        );
    }
    let message = err.to_string();
    if is_transient(err) {
        BrokerError::transient(op, queue, message)
    } else {
        BrokerError::permanent(op, queue, message)
    }
}

/// A [`BrokerError`] for `op` on `queue` from a connection-pool error.
pub(super) fn from_pool(op: &'static str, queue: &str, err: PoolError) -> BrokerError {
    match err {
        PoolError::Backend(e) => from_lapin(op, queue, &e),
        PoolError::Timeout(_) => {
            BrokerError::transient(op, queue, "timed out connecting to the broker")
        }
        other => BrokerError::permanent(op, queue, format!("connection pool: {other}")),
    }
}

/// Lost connections and channels, missed heartbeats, a broker shutting down
/// or short of resources are transient; refused logins, missing queues and
/// mismatched arguments are not.
fn is_transient(err: &Error) -> bool {
    match err.kind() {
        ErrorKind::IOError(_)
        | ErrorKind::InvalidChannelState(..)
        | ErrorKind::InvalidConnectionState(_)
        | ErrorKind::InvalidChannel(_)
        | ErrorKind::ChannelsLimitReached
        | ErrorKind::MissingHeartbeatError => true,
        ErrorKind::ProtocolError(e) => matches!(
            e.kind(),
            AMQPErrorKind::Hard(
                AMQPHardError::CONNECTIONFORCED
                    | AMQPHardError::INTERNALERROR
                    | AMQPHardError::RESOURCEERROR
                    | AMQPHardError::CHANNELERROR
            )
        ),
        _ => false,
    }
}
