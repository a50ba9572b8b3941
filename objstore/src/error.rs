//! What can go wrong with object storage.

/// An object-store failure, naming the object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Not an `s3://BUCKET/KEY` URL.
    #[error("{url:?} is not an s3://BUCKET/KEY URL: {why}")]
    BadUrl {
        /// What was given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The client could not be set up (credentials, endpoint, region).
    #[error("object store for bucket {bucket}: {message}")]
    Config {
        /// The bucket.
        bucket: String,
        /// The cause, as the client says it (its errors spell out their own causes,
        /// so they are not chained again).
        message: String,
    },
    /// A request failed.
    #[error("{what} s3://{bucket}/{key}: {message}")]
    Request {
        /// What was asked (`read`, `list`, `write`).
        what: &'static str,
        /// The bucket.
        bucket: String,
        /// The object or prefix.
        key: String,
        /// The cause, as the client says it.
        message: String,
        /// The object does not exist.
        not_found: bool,
    },
    /// The object is larger than the caller reads whole.
    #[error("s3://{bucket}/{key} has {size} bytes or more, more than {limit}")]
    TooLarge {
        /// The bucket.
        bucket: String,
        /// The object.
        key: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The runtime for the client could not start.
    #[error("starting the object-store client: {0}")]
    Runtime(#[source] std::io::Error),
}
