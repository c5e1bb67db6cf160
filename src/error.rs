//! The crate's one error type: a kind a caller can branch on, and a message a
//! storefront developer can act on.

use std::fmt;

/// What went wrong, coarsely. New kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The model file is truncated, tampered with, of an unknown version or
    /// otherwise unusable.
    ModelFile,
    /// The tokenizer bytes are not a usable `tokenizer.json`.
    Tokenizer,
    /// A candidate in a rerank request is malformed.
    InvalidCandidate,
    /// A session event is malformed.
    InvalidEvent,
    /// An option passed by the caller is out of range.
    InvalidOption,
    /// The compute backend failed (adapter missing, device lost, readback).
    Backend,
    /// A dataset file is missing or malformed (native tools only).
    Data,
}

impl ErrorKind {
    /// A stable, machine-readable name, also used as the JavaScript error name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ModelFile => "ModelFileError",
            ErrorKind::Tokenizer => "TokenizerError",
            ErrorKind::InvalidCandidate => "InvalidCandidateError",
            ErrorKind::InvalidEvent => "InvalidEventError",
            ErrorKind::InvalidOption => "InvalidOptionError",
            ErrorKind::Backend => "BackendError",
            ErrorKind::Data => "DataError",
        }
    }
}

/// An error with a kind and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand used across the crate: `bail(ErrorKind::X, "...")?`.
pub(crate) fn err<T>(kind: ErrorKind, message: impl Into<String>) -> Result<T> {
    Err(Error::new(kind, message))
}
