//! Reading a container: the seek table and metadata are read and checked at open; frames
//! are read with `pread`, decompressed on demand and kept in a cache bounded by bytes.
//!
//! The cache is a CLOCK (second chance) approximation of LRU: a hit sets the slot's
//! referenced bit and copies out, with no allocation; a miss decompresses outside the lock
//! into a recycled buffer, then evicts unreferenced slots until the new frame fits.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use sha2::{Digest, Sha256};
use zstd::bulk::Decompressor;
use zstd::zstd_safe;

use super::digest::{frame_digest, ContentDigest, FramesDigest};
use super::metadata::{self, Metadata, MAX_METADATA_FRAME};
use super::seek_table::{self, Layout};
use super::{hex, is_zero, le_u32, ZSTD_MAGIC};
use crate::error::{Error, Result};
use crate::progress::{interrupted, Progress};
use crate::source::{check_bounds, ByteSource};

/// Frame cache budget of [`ContainerReader::open`]: 128 default frames. The analyses read
/// each frame in bursts (a table, a ring, a slab of task_structs), so a larger cache
/// only grows the peak RSS (64 MiB made `coroner ps` on 2,000 tasks peak at 82 MiB, with
/// the same decompressions).
pub const DEFAULT_CACHE_BYTES: usize = 16 << 20;

/// Decompression contexts and buffers kept for reuse.
const SCRATCH_POOL: usize = 8;

/// Decompressed buffers kept for reuse after eviction.
const SPARE_BUFFERS: usize = 4;

/// A `.core.zst` container (or any zstd seekable stream), readable by content offset from
/// several threads at once.
///
/// ```no_run
/// use coroner_formats::{ByteSource, ContainerReader};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let r = ContainerReader::open("vm1.core.zst".as_ref())?;
/// let mut ident = [0u8; 16];
/// r.read_at(0, &mut ident)?;
/// println!("{} content bytes in {} frames", r.len(), r.frame_count());
/// # Ok(()) }
/// ```
pub struct ContainerReader {
    raw: Box<dyn ByteSource>,
    layout: Layout,
    metadata: Option<Metadata>,
    cache: Mutex<Cache>,
    scratch: Mutex<Vec<Scratch>>,
    zero_frame: OnceLock<ZeroFrame>,
}

/// The compressed bytes of an all-zero frame, learned from the first one decompressed.
///
/// The writer emits every full all-zero frame as the same bytes, so a later frame with
/// exactly these bytes is known to hold zeros without decompressing it: a cache miss on
/// the (often most common) zero frames costs one tiny `pread` and a compare.
struct ZeroFrame {
    size: u64,
    compressed: Vec<u8>,
}

/// The largest compressed frame considered as a zero-frame pattern.
const ZERO_FRAME_MAX: usize = 512;

/// The container file itself, read with `pread`.
struct RawFile {
    file: File,
    path: PathBuf,
    size: u64,
}

impl ByteSource for RawFile {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.size)?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| Error::Io {
                what: "read",
                path: self.path.clone(),
                source,
            })
    }
}

/// What decompressing one frame needs besides its output buffer.
struct Scratch {
    dctx: Decompressor<'static>,
    compressed: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something did, the data is still
    // consistent (each update is a few plain assignments).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ContainerReader {
    /// Opens `path` with a frame cache of 16 MiB.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens `path` with a frame cache of at most `cache_bytes` (but always room for one
    /// frame; 0 disables caching).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self> {
        let io = |what| {
            let path = path.to_path_buf();
            move |source| Error::Io { what, path, source }
        };
        let file = crate::input_file::open_regular(path)?;
        let size = file.metadata().map_err(io("stat"))?.len();
        let raw = RawFile {
            file,
            path: path.to_path_buf(),
            size,
        };
        Self::from_source(Box::new(raw), cache_bytes)
    }

    /// Reads the container whose file bytes are `raw`.
    pub fn from_source(raw: Box<dyn ByteSource>, cache_bytes: usize) -> Result<Self> {
        let layout = seek_table::read_layout(raw.as_ref())?;
        let data_end = layout.data_end();
        let gap = layout.table_offset - data_end;
        let metadata = if gap == 0 {
            None
        } else {
            if gap > MAX_METADATA_FRAME {
                return Err(Error::Metadata {
                    offset: data_end,
                    reason: format!(
                        "{gap} bytes lie between the data frames and the seek table, more than a metadata frame may take ({MAX_METADATA_FRAME})"
                    ),
                });
            }
            let mut frame = vec![0u8; gap as usize];
            raw.read_at(data_end, &mut frame)?;
            let meta = metadata::decode_frame(&frame, data_end)?;
            if meta.content_size != layout.content_size() {
                return Err(Error::Metadata {
                    offset: data_end,
                    reason: format!(
                        "content_size is {}, but the seek table adds up to {}",
                        meta.content_size,
                        layout.content_size()
                    ),
                });
            }
            Some(meta)
        };
        if layout.frames() > 0 {
            let mut magic = [0u8; 4];
            raw.read_at(0, &mut magic)?;
            if u32::from_le_bytes(magic) != ZSTD_MAGIC {
                return Err(Error::Frame {
                    frame: 0,
                    offset: 0,
                    reason: format!("starts with {magic:02x?}, not a zstd frame"),
                });
            }
        }
        let cache = Cache::new(cache_bytes, layout.frames());
        Ok(Self {
            raw,
            layout,
            metadata,
            cache: Mutex::new(cache),
            scratch: Mutex::new(Vec::new()),
            zero_frame: OnceLock::new(),
        })
    }

    /// The coroner metadata; `None` for a plain seekable zstd stream.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }

    /// Number of data frames.
    pub fn frame_count(&self) -> usize {
        self.layout.frames()
    }

    /// Size of the container file.
    pub fn compressed_size(&self) -> u64 {
        self.raw.len()
    }

    /// Decompresses the whole content in order into `out` and returns its digest: the
    /// one the metadata records (format 1: sha256 of the content; format 2: sha256 of
    /// the frame manifest), the frame manifest's when it records none.
    ///
    /// A digest different from the recorded one is [`Error::Checksum`] (after all bytes
    /// were written to `out`). Checks `interrupt` before every frame.
    pub fn copy_to(
        &self,
        out: &mut dyn Write,
        progress: &dyn Progress,
        interrupt: &AtomicBool,
    ) -> Result<ContentDigest> {
        self.check_content(Some(out), progress, interrupt)
    }

    /// Checks the whole content against the digest the metadata records, as
    /// [`Self::copy_to`] does, without writing it anywhere: frames whose compressed bytes
    /// are the container's zero frame (verified once) are not decompressed again.
    pub fn verify(&self, progress: &dyn Progress, interrupt: &AtomicBool) -> Result<ContentDigest> {
        self.check_content(None, progress, interrupt)
    }

    fn check_content(
        &self,
        mut out: Option<&mut dyn Write>,
        progress: &dyn Progress,
        interrupt: &AtomicBool,
    ) -> Result<ContentDigest> {
        progress.set_total(self.layout.content_size());
        let recorded = self.metadata.as_ref().and_then(Metadata::recorded_digest);
        let whole = matches!(recorded, Some(ContentDigest::Sha256(_)));
        let mut content = Sha256::new();
        let mut manifest = FramesDigest::new();
        let mut zero_digests: Vec<(usize, [u8; 32])> = Vec::new();
        let mut buf = Vec::new();
        let mut done = 0u64;
        for frame in 0..self.frame_count() {
            if interrupted(interrupt) {
                return Err(Error::Interrupted);
            }
            if out.is_none() && self.frame_is_zero(frame)? {
                let size = self.layout.frame(frame).map_or(0, |(_, _, _, size)| size);
                buf.clear();
                buf.resize(size as usize, 0);
            } else {
                self.load_frame(frame, &mut buf)?;
            }
            if whole {
                content.update(&buf);
            } else if is_zero(&buf) {
                // Zero frames (most of an idle guest) hash once per length.
                let digest = match zero_digests.iter().find(|(len, _)| *len == buf.len()) {
                    Some((_, d)) => *d,
                    None => {
                        let d = frame_digest(&buf);
                        zero_digests.push((buf.len(), d));
                        d
                    }
                };
                manifest.push(&digest);
            } else {
                manifest.push(&frame_digest(&buf));
            }
            if let Some(out) = out.as_mut() {
                out.write_all(&buf).map_err(|source| Error::Stream {
                    what: "write the decompressed content",
                    source,
                })?;
            }
            done += buf.len() as u64;
            progress.set_done(done);
        }
        if let Some(out) = out.as_mut() {
            out.flush().map_err(|source| Error::Stream {
                what: "write the decompressed content",
                source,
            })?;
        }
        let found = if whole {
            ContentDigest::Sha256(hex(&content.finalize()))
        } else {
            ContentDigest::FramesBlake3(manifest.finish())
        };
        // An abandoned capture records the digest of what it did write, so it is checked
        // too.
        match recorded {
            Some(expected) if expected != found => Err(Error::Checksum {
                field: expected.field(),
                expected: expected.hex().to_string(),
                found: found.hex().to_string(),
            }),
            _ => Ok(found),
        }
    }

    /// Reads and decompresses frame `frame` into `out` (which ends up holding exactly
    /// its content).
    fn load_frame(&self, frame: usize, out: &mut Vec<u8>) -> Result<()> {
        let (offset, compressed, _, size) =
            self.layout.frame(frame).ok_or_else(|| Error::Frame {
                frame,
                offset: 0,
                reason: "no such frame".into(),
            })?;
        let popped = lock(&self.scratch).pop();
        let mut scratch = match popped {
            Some(s) => s,
            None => Scratch {
                dctx: Decompressor::new().map_err(|source| Error::Stream {
                    what: "create a zstd decompressor",
                    source,
                })?,
                compressed: Vec::new(),
            },
        };
        // Both sizes were checked against the caps when the seek table was read.
        scratch.compressed.resize(compressed as usize, 0);
        let result =
            self.raw
                .read_at(offset, &mut scratch.compressed)
                .and_then(|()| {
                    decode_frame(&mut scratch.dctx, &scratch.compressed, size as usize, out)
                        .map_err(|reason| Error::Frame {
                            frame,
                            offset,
                            reason,
                        })
                });
        let mut pool = lock(&self.scratch);
        if pool.len() < SCRATCH_POOL {
            pool.push(scratch);
        }
        result
    }

    /// Fills `out` from frame `frame` starting `within` bytes into its content.
    fn read_in_frame(&self, frame: usize, within: usize, out: &mut [u8]) -> Result<()> {
        if self.is_known_zero_frame(frame)? {
            out.fill(0);
            return Ok(());
        }
        let mut data = {
            let mut cache = lock(&self.cache);
            if cache.copy_hit(frame, within, out) {
                return Ok(());
            }
            cache.take_spare()
        };
        self.load_frame(frame, &mut data)?;
        let part = data
            .get(within..within + out.len())
            .ok_or_else(|| Error::Frame {
                frame,
                offset: self.layout.frame(frame).map_or(0, |f| f.0),
                reason: format!(
                    "read of {} bytes at {within} lies outside the frame's {} bytes",
                    out.len(),
                    data.len()
                ),
            })?;
        out.copy_from_slice(part);
        if self.learn_zero_frame(frame, &data)? {
            lock(&self.cache).give_back(data);
        } else {
            lock(&self.cache).insert(frame, data);
        }
        Ok(())
    }

    /// True when frame `frame` holds only zeros, known without decompressing it once the
    /// zero-frame pattern is learned (a small frame is decompressed to learn it).
    fn frame_is_zero(&self, frame: usize) -> Result<bool> {
        if self.zero_frame.get().is_none() {
            match self.layout.frame(frame) {
                Some((_, compressed, _, _)) if compressed as usize <= ZERO_FRAME_MAX => {
                    self.read_in_frame(frame, 0, &mut [0u8; 1])?;
                }
                _ => return Ok(false),
            }
        }
        self.is_known_zero_frame(frame)
    }

    /// True when frame `frame`'s compressed bytes are those of the known zero frame.
    fn is_known_zero_frame(&self, frame: usize) -> Result<bool> {
        let Some(zero) = self.zero_frame.get() else {
            return Ok(false);
        };
        let Some((offset, compressed, _, size)) = self.layout.frame(frame) else {
            return Ok(false);
        };
        if size != zero.size || compressed as usize != zero.compressed.len() {
            return Ok(false);
        }
        let mut bytes = [0u8; ZERO_FRAME_MAX];
        let bytes = &mut bytes[..zero.compressed.len()];
        self.raw.read_at(offset, bytes)?;
        Ok(*bytes == *zero.compressed)
    }

    /// Remembers frame `frame` as the zero-frame pattern when its verified content
    /// `data` is all zero and it is small; returns true when it holds zeros.
    fn learn_zero_frame(&self, frame: usize, data: &[u8]) -> Result<bool> {
        let Some((offset, compressed, _, size)) = self.layout.frame(frame) else {
            return Ok(false);
        };
        if compressed as usize > ZERO_FRAME_MAX || data.iter().any(|&b| b != 0) {
            return Ok(false);
        }
        if self.zero_frame.get().is_none() {
            let mut bytes = vec![0u8; compressed as usize];
            self.raw.read_at(offset, &mut bytes)?;
            let _ = self.zero_frame.set(ZeroFrame {
                size,
                compressed: bytes,
            });
        }
        Ok(true)
    }
}

impl ByteSource for ContainerReader {
    fn len(&self) -> u64 {
        self.layout.content_size()
    }

    fn zero_run_end(&self, offset: u64) -> Option<u64> {
        if offset >= self.layout.content_size() {
            return None;
        }
        let mut frame = self.layout.frame_of(offset);
        let mut end = None;
        while let Some((_, _, start, size)) = self.layout.frame(frame) {
            if !self.frame_is_zero(frame).unwrap_or(false) {
                break;
            }
            end = Some(start + size);
            frame += 1;
        }
        end
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.layout.content_size())?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let frame = self.layout.frame_of(pos);
            let (_, _, start, size) = self.layout.frame(frame).ok_or_else(|| Error::Truncated {
                offset: pos,
                needed: (buf.len() - done) as u64,
                size: self.layout.content_size(),
            })?;
            // pos is inside the frame, whose size is at most MAX_FRAME_SIZE.
            let within = (pos - start) as usize;
            let n = (size as usize - within).min(buf.len() - done);
            self.read_in_frame(frame, within, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }
}

/// Decompresses `src`, one whole zstd frame, into `out`, which must end up holding
/// exactly `expected` bytes. Never allocates more than `expected` for the output.
fn decode_frame(
    dctx: &mut Decompressor<'static>,
    src: &[u8],
    expected: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    if le_u32(src, 0) != Some(ZSTD_MAGIC) {
        return Err(format!(
            "starts with {:02x?}, not a zstd frame",
            &src[..src.len().min(4)]
        ));
    }
    match zstd_safe::find_frame_compressed_size(src) {
        Ok(n) if n == src.len() => {}
        Ok(n) => {
            return Err(format!(
                "the zstd frame is {n} bytes, the seek table says {}",
                src.len()
            ))
        }
        Err(code) => {
            return Err(format!(
                "not a complete zstd frame: {}",
                zstd_safe::get_error_name(code)
            ))
        }
    }
    match zstd_safe::get_frame_content_size(src) {
        Ok(Some(n)) if n != expected as u64 => {
            return Err(format!(
                "the frame header says {n} content bytes, the seek table says {expected}"
            ))
        }
        Ok(_) => {}
        Err(_) => return Err("the zstd frame header is invalid".into()),
    }
    out.clear();
    // A recycled buffer may be larger; the length check below still holds.
    out.reserve(expected);
    let n = dctx
        .decompress_to_buffer(src, out)
        .map_err(|e| format!("zstd: {e}"))?;
    if n != expected || out.len() != expected {
        return Err(format!(
            "decompressed to {n} bytes, the seek table says {expected}"
        ));
    }
    Ok(())
}

/// Frames decompressed recently, bounded by their total size.
struct Cache {
    budget: usize,
    used: usize,
    /// Slot index of each frame, [`NO_SLOT`] when not cached.
    slot_of: Vec<u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    hand: usize,
    spare: Vec<Vec<u8>>,
}

struct Slot {
    /// [`NO_FRAME`] when empty.
    frame: usize,
    data: Vec<u8>,
    referenced: bool,
}

const NO_SLOT: u32 = u32::MAX;
const NO_FRAME: usize = usize::MAX;

impl Cache {
    fn new(budget: usize, frames: usize) -> Self {
        Self {
            budget,
            used: 0,
            slot_of: if budget == 0 {
                Vec::new()
            } else {
                vec![NO_SLOT; frames]
            },
            slots: Vec::new(),
            free: Vec::new(),
            hand: 0,
            spare: Vec::new(),
        }
    }

    fn copy_hit(&mut self, frame: usize, within: usize, out: &mut [u8]) -> bool {
        let Some(&s) = self.slot_of.get(frame) else {
            return false;
        };
        let Some(slot) = self.slots.get_mut(s as usize) else {
            return false;
        };
        match slot.data.get(within..within + out.len()) {
            Some(part) if slot.frame == frame => {
                out.copy_from_slice(part);
                slot.referenced = true;
                true
            }
            _ => false,
        }
    }

    fn take_spare(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    fn give_back(&mut self, buf: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(buf);
        }
    }

    fn insert(&mut self, frame: usize, data: Vec<u8>) {
        match self.slot_of.get(frame) {
            Some(&NO_SLOT) => {}
            // Already cached (another thread loaded it too), or caching is off.
            _ => return self.give_back(data),
        }
        while self.used > 0 && self.used + data.len() > self.budget {
            if !self.evict_one() {
                break;
            }
        }
        let slot = Slot {
            frame,
            data,
            referenced: true,
        };
        let len = slot.data.len();
        let s = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = slot;
                s
            }
            None => {
                let Ok(s) = u32::try_from(self.slots.len()) else {
                    return self.give_back(slot.data);
                };
                self.slots.push(slot);
                s
            }
        };
        self.slot_of[frame] = s;
        self.used += len;
    }

    /// Evicts one frame, giving unreferenced slots priority; false if none is cached.
    fn evict_one(&mut self) -> bool {
        let n = self.slots.len();
        for _ in 0..2 * n + 1 {
            if n == 0 {
                return false;
            }
            self.hand %= n;
            let s = self.hand;
            self.hand += 1;
            let slot = &mut self.slots[s];
            if slot.frame == NO_FRAME {
                continue;
            }
            if slot.referenced {
                slot.referenced = false;
                continue;
            }
            let data = std::mem::take(&mut slot.data);
            let frame = std::mem::replace(&mut slot.frame, NO_FRAME);
            self.used -= data.len();
            if let Some(entry) = self.slot_of.get_mut(frame) {
                *entry = NO_SLOT;
            }
            self.free.push(s as u32);
            self.give_back(data);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_stays_within_budget_and_keeps_referenced_frames() {
        let mut c = Cache::new(3 * 100, 10);
        for f in 0..3 {
            c.insert(f, vec![f as u8; 100]);
        }
        assert_eq!(c.used, 300);
        let mut b = [0u8; 10];
        // All three are referenced (new); inserting a fourth clears the bits and evicts one.
        c.insert(3, vec![3; 100]);
        assert_eq!(c.used, 300);
        // Touch frame 3's neighbours that survived, then insert more: the cache never grows.
        for f in 4..10 {
            for g in 0..f {
                let _ = c.copy_hit(g, 0, &mut b);
            }
            c.insert(f, vec![f as u8; 100]);
            assert!(c.used <= 300);
            assert!(c.copy_hit(f, 90, &mut b));
            assert_eq!(b, [f as u8; 10]);
        }
        assert!(!c.copy_hit(9, 95, &mut b), "read past the frame's end");
        assert!(c.slots.len() <= 4);
    }

    #[test]
    fn a_frame_larger_than_the_budget_is_still_cached_alone() {
        let mut c = Cache::new(10, 3);
        c.insert(0, vec![1; 100]);
        c.insert(1, vec![2; 100]);
        let mut b = [0u8; 1];
        assert!(!c.copy_hit(0, 0, &mut b));
        assert!(c.copy_hit(1, 0, &mut b));
        assert_eq!(c.used, 100);
    }

    #[test]
    fn zero_budget_caches_nothing() {
        let mut c = Cache::new(0, 3);
        c.insert(0, vec![1; 100]);
        assert!(!c.copy_hit(0, 0, &mut [0u8; 1]));
        assert_eq!(c.used, 0);
    }
}
