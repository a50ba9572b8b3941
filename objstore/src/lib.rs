//! Captures in S3-compatible object storage (Ceph RGW, MinIO, a cloud's): `s3://` URLs,
//! a client configured from the standard AWS environment variables, and ranged reads
//! through a bounded block cache, so an analysis fetches the frames it needs and not the
//! capture. Synchronous to its callers: the `object_store` crate's async client runs on a
//! small runtime of its own.

mod error;
mod object_url;
mod ranged;
mod store;
mod upload;

pub use error::StoreError;
pub use object_url::{is_object_url, object_url_of, ObjectUrl};
pub use ranged::{RangedObject, BLOCK_BYTES, CACHE_BLOCKS};
pub use store::{Listed, Store, Traffic};
pub use upload::{
    not_aborted_message, part_bytes_for, take_uploads_not_aborted, Upload, MAX_PARTS,
    MAX_PART_BYTES, MIN_PART_BYTES, PARTS_IN_FLIGHT,
};
