//! A bucket, through the `object_store` crate's S3 client, configured from the standard
//! AWS environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL` for a server of one's own, `AWS_ALLOW_HTTP=true` for
//! a plain-HTTP one). Every byte fetched is counted.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as KeyPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::StoreError;

/// One bucket and the runtime its client runs on.
pub struct Store {
    bucket: String,
    client: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
    bytes: AtomicU64,
    requests: AtomicU64,
}

/// What was fetched so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes received.
    pub bytes: u64,
    /// Requests made.
    pub requests: u64,
}

/// An object found by [`Store::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: String,
    /// Its size.
    pub size: u64,
    /// When it was last written, nanoseconds since the epoch.
    pub modified_ns: u128,
    /// Its entity tag, when the server gives one: with the size, what tells a rewritten
    /// object from the one signed (modification times have one-second resolution).
    pub e_tag: Option<String>,
}

impl Store {
    /// The bucket `bucket`, with credentials and endpoint from the environment.
    pub fn for_bucket(bucket: &str) -> Result<Store, StoreError> {
        Self::with_settings(bucket, &[])
    }

    /// [`Store::for_bucket`], with `settings` (`AWS_ENDPOINT_URL` and the like, by the
    /// names of the environment variables) over the environment's.
    pub fn with_settings(bucket: &str, settings: &[(&str, &str)]) -> Result<Store, StoreError> {
        // A mistyped endpoint or a dead server is said within seconds, not after the
        // client's default of ten retries over three minutes.
        let retry = object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: std::time::Duration::from_secs(30),
            ..object_store::RetryConfig::default()
        };
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry);
        for (name, value) in settings {
            let key = name
                .to_ascii_lowercase()
                .parse::<object_store::aws::AmazonS3ConfigKey>()
                .map_err(|source| StoreError::Config {
                    bucket: bucket.to_string(),
                    message: first_line(&source),
                })?;
            builder = builder.with_config(key, *value);
        }
        let client = builder.build().map_err(|source| StoreError::Config {
            bucket: bucket.to_string(),
            message: first_line(&source),
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("coroner-s3")
            .enable_all()
            .build()
            .map_err(StoreError::Runtime)?;
        Ok(Store {
            bucket: bucket.to_string(),
            client: Arc::new(client),
            runtime,
            bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// What this store fetched so far.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            bytes: self.bytes.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }

    /// Runs `future` to its end on this store's runtime.
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Enters this store's runtime, so that tasks spawned meanwhile run on it.
    pub(crate) fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.runtime.enter()
    }

    /// The client.
    pub(crate) fn client(&self) -> &Arc<dyn ObjectStore> {
        &self.client
    }

    /// Whether the object `key` exists (`Ok(false)` only when the server says it does not).
    pub fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.size(key) {
            Ok(_) => Ok(true),
            Err(StoreError::Request {
                not_found: true, ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn failed(
        &self,
        what: &'static str,
        key: &str,
    ) -> impl FnOnce(object_store::Error) -> StoreError {
        let (bucket, key) = (self.bucket.clone(), key.to_string());
        move |source| StoreError::Request {
            what,
            bucket,
            key,
            not_found: matches!(source, object_store::Error::NotFound { .. }),
            message: first_line(&source),
        }
    }

    /// The size of the object `key`.
    pub fn size(&self, key: &str) -> Result<u64, StoreError> {
        Ok(self.stat(key)?.size)
    }

    /// The object `key` as a listing shows it.
    pub fn stat(&self, key: &str) -> Result<Listed, StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let meta = self
            .runtime
            .block_on(self.client.head(&KeyPath::from(key)))
            .map_err(self.failed("stat", key))?;
        Ok(listed(meta))
    }

    /// The bytes `range` of the object `key`.
    pub fn read_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>, StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let bytes = self
            .runtime
            .block_on(self.client.get_range(&KeyPath::from(key), range))
            .map_err(self.failed("read", key))?;
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes.to_vec())
    }

    /// The whole objects `keys`, `concurrency` requests at a time, in order; one GET
    /// each. An object is read only up to `limit` bytes: a larger one (a listing said it
    /// was small, the server sends more) is [`StoreError::TooLarge`].
    pub fn read_many(
        &self,
        keys: &[String],
        limit: u64,
        concurrency: usize,
    ) -> Vec<Result<Vec<u8>, StoreError>> {
        use futures::StreamExt;
        let fetches = keys.iter().map(|key| async move {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let failed = self.failed("read", key);
            let mut body = match self.client.get(&KeyPath::from(key.as_str())).await {
                Ok(r) => r.into_stream(),
                Err(e) => return Err(failed(e)),
            };
            let mut bytes = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(self.failed("read", key))?;
                self.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if (bytes.len() + chunk.len()) as u64 > limit {
                    return Err(StoreError::TooLarge {
                        bucket: self.bucket.clone(),
                        key: key.clone(),
                        size: (bytes.len() + chunk.len()) as u64,
                        limit,
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        });
        self.runtime.block_on(
            futures::stream::iter(fetches)
                .buffered(concurrency.max(1))
                .collect(),
        )
    }

    /// Writes the small object `key` in one request: it appears whole or not at all.
    pub fn write_small(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.runtime
            .block_on(
                self.client
                    .put(&KeyPath::from(key), PutPayload::from(bytes)),
            )
            .map_err(self.failed("write", key))?;
        Ok(())
    }

    /// Every object under `prefix` (a "directory": `host1/`; empty for the bucket).
    pub fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let p = KeyPath::from(prefix.trim_end_matches('/'));
        let p = (!prefix.is_empty()).then_some(p);
        let found: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.client.list(p.as_ref()).try_collect())
            .map_err(self.failed("list", prefix))?;
        Ok(found.into_iter().map(listed).collect())
    }
}

fn listed(m: object_store::ObjectMeta) -> Listed {
    Listed {
        key: m.location.to_string(),
        size: m.size,
        modified_ns: m
            .last_modified
            .timestamp_nanos_opt()
            .map_or(0, |n| u128::try_from(n).unwrap_or(0)),
        e_tag: m.e_tag,
    }
}

/// The client's error with each nested cause once (each level's message spells out the
/// next, so the chain as it is repeats itself).
pub(crate) fn first_line(e: &object_store::Error) -> String {
    let mut levels: Vec<String> = Vec::new();
    let mut at: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = at {
        levels.push(err.to_string());
        at = err.source();
    }
    let mut parts: Vec<String> = Vec::new();
    for (i, text) in levels.iter().enumerate() {
        let own = match levels.get(i + 1).and_then(|next| text.find(next.as_str())) {
            Some(cut) => &text[..cut],
            None => text.as_str(),
        };
        let own = own.trim_end_matches([':', ' ', '-']).trim();
        if !own.is_empty() && !parts.iter().any(|p| p == own) {
            parts.push(own.to_string());
        }
    }
    parts.join(": ")
}
