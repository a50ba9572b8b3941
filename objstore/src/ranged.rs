//! An object read by ranged requests, as a [`ByteSource`]: reads are served from a
//! bounded cache of aligned blocks, and a read that misses fetches its missing blocks in
//! one request. Memory stays at [`CACHE_BLOCKS`] x [`BLOCK_BYTES`] whatever the object's
//! size.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use coroner_formats::{ByteSource, Error};

use crate::error::StoreError;
use crate::object_url::ObjectUrl;
use crate::store::Store;

/// The unit of fetching and caching.
pub const BLOCK_BYTES: u64 = 256 << 10;

/// Blocks kept (16 MiB).
pub const CACHE_BLOCKS: usize = 64;

/// Blocks fetched at once when reads go through the object in order (`verify`, `slim`):
/// 4 MiB per request instead of 256 KiB.
pub const READ_AHEAD_BLOCKS: u64 = 16;

/// In-order misses in a row after which reads are taken to go through the object.
const SEQUENTIAL_STREAK: u32 = 4;

/// An object of a [`Store`], read in blocks.
pub struct RangedObject {
    store: Arc<Store>,
    url: ObjectUrl,
    size: u64,
    /// Most recently used last.
    cache: Mutex<VecDeque<(u64, Arc<Vec<u8>>)>>,
    /// The block after the last one fetched (a miss there continues a sequential
    /// read), and how many misses in a row did.
    next_block: Mutex<(u64, u32)>,
}

impl RangedObject {
    /// The object at `url` in `store` (its size asked once).
    pub fn open(store: Arc<Store>, url: ObjectUrl) -> Result<RangedObject, StoreError> {
        let size = store.size(&url.key)?;
        Ok(RangedObject {
            store,
            url,
            size,
            cache: Mutex::new(VecDeque::new()),
            next_block: Mutex::new((u64::MAX, 0)),
        })
    }

    fn io_error(&self, e: impl std::fmt::Display) -> Error {
        Error::Io {
            what: "read",
            path: PathBuf::from(self.url.to_string()),
            source: std::io::Error::other(e.to_string()),
        }
    }

    fn cached(&self, block: u64) -> Option<Arc<Vec<u8>>> {
        let mut cache = self.cache.lock().ok()?;
        let i = cache.iter().position(|(b, _)| *b == block)?;
        let hit = cache.remove(i)?;
        let data = hit.1.clone();
        cache.push_back(hit);
        Some(data)
    }

    fn keep(&self, block: u64, data: Arc<Vec<u8>>) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_BLOCKS {
                cache.pop_front();
            }
            cache.push_back((block, data));
        }
    }

    /// Blocks `first..=last`, fetching those not cached (the missing run in one
    /// request).
    fn blocks(&self, first: u64, last: u64) -> coroner_formats::Result<Vec<Arc<Vec<u8>>>> {
        let mut got: Vec<Option<Arc<Vec<u8>>>> = (first..=last).map(|b| self.cached(b)).collect();
        if let (Some(lo), Some(hi)) = (
            got.iter().position(Option::is_none),
            got.iter().rposition(Option::is_none),
        ) {
            // A miss right after the last fetch: the reader goes through in order.
            let from_block = first + lo as u64;
            let mut to_block = first + hi as u64 + 1;
            // Analyses hop about and read a few neighbouring blocks at most; only a
            // streak of in-order misses is a reader going through the whole object.
            if let Ok(mut next) = self.next_block.lock() {
                let streak = if next.0 == from_block { next.1 + 1 } else { 0 };
                if streak >= SEQUENTIAL_STREAK {
                    to_block = to_block.max(from_block + READ_AHEAD_BLOCKS);
                }
                to_block = to_block
                    .min(self.size.div_ceil(BLOCK_BYTES))
                    .max(from_block + 1);
                *next = (to_block, streak);
            }
            let start = from_block * BLOCK_BYTES;
            let end = (to_block * BLOCK_BYTES).min(self.size);
            let bytes = self
                .store
                .read_range(&self.url.key, start..end)
                .map_err(|e| self.io_error(e))?;
            if bytes.len() as u64 != end - start {
                return Err(self.io_error(format!(
                    "asked for {} bytes at {start}, got {}",
                    end - start,
                    bytes.len()
                )));
            }
            for (n, chunk) in bytes.chunks(BLOCK_BYTES as usize).enumerate() {
                let block_no = from_block + n as u64;
                let block = Arc::new(chunk.to_vec());
                self.keep(block_no, block.clone());
                if let Some(slot) = block_no
                    .checked_sub(first)
                    .and_then(|i| got.get_mut(usize::try_from(i).ok()?))
                {
                    *slot = Some(block);
                }
            }
        }
        got.into_iter()
            .map(|b| b.ok_or_else(|| self.io_error("a block was not fetched")))
            .collect()
    }
}

impl ByteSource for RangedObject {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> coroner_formats::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or(Error::Truncated {
                offset,
                needed: buf.len() as u64,
                size: self.size,
            })?;
        let (first, last) = (offset / BLOCK_BYTES, (end - 1) / BLOCK_BYTES);
        let blocks = self.blocks(first, last)?;
        let mut done = 0usize;
        for (i, block) in blocks.iter().enumerate() {
            let block_start = (first + i as u64) * BLOCK_BYTES;
            let from = (offset + done as u64 - block_start) as usize;
            let n = (block.len() - from).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&block[from..from + n]);
            done += n;
        }
        Ok(())
    }
}
