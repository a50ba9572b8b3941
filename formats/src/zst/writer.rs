//! Writing a container: content is cut into frames of `frame_size` bytes, each hashed
//! (BLAKE3) and compressed by one of `threads` workers, and written in order by the
//! caller's thread, which also feeds the frame manifest ([`FramesDigest`]).
//!
//! ```text
//! write_all ─> current frame ─full─> zero? ─yes─> Ready::Zero (precompressed bytes,
//!   write_zeros ─> whole zero frames ─────────────┘  precomputed digest) ──────────┐
//!                                      └─no──> workers (BLAKE3 + zstd) ─┐          │
//!                                                                       v          v
//!            file + manifest <── in seq order <── ready map <── done channel ──────┘
//! ```
//!
//! The caller's thread only copies, checks for zeros and writes compressed bytes; zero
//! frames cost neither hashing nor compression. At most `2 * threads` frames are between
//! "cut" and "written", so memory stays near `(2 * threads + 2) * frame_size`. The first error (a failed write, ENOSPC) is returned
//! at once and makes every later call fail; dropping the writer stops and joins the
//! workers and leaves the `.partial` file as it is, without a seek table.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use zstd::bulk::Compressor;
use zstd::zstd_safe::CParameter;

use super::digest::{frame_digest, FramesDigest};
use super::metadata::{self, Metadata, FORMAT_NAME};
use super::seek_table::{self, Entry, MAX_FRAMES};
use super::{is_zero, DEFAULT_FRAME_SIZE, FORMAT_VERSION, MAX_FRAME_SIZE, MIN_FRAME_SIZE};
use crate::destination::Destination;
use crate::error::{Error, Result};
use crate::output_file::OutputFile;

/// How a [`ContainerWriter`] cuts and compresses.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Uncompressed bytes per frame: a multiple of 4096 between 4 KiB and 64 MiB.
    pub frame_size: usize,
    /// zstd compression level (negative levels are the fast ones).
    pub level: i32,
    /// Number of compression threads, at least 1.
    pub threads: usize,
}

impl Default for WriteOptions {
    /// Frames of `DEFAULT_FRAME_SIZE` (128 KiB), level 3, one thread more than the CPUs:
    /// the thread that feeds them waits on its input part of the time (a capture's pipe
    /// from qemu), and the extra worker uses that time (5% faster captures on 2 cores).
    fn default() -> Self {
        Self {
            frame_size: DEFAULT_FRAME_SIZE,
            level: 3,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()) + 1,
        }
    }
}

impl WriteOptions {
    /// Checks the options; [`ContainerWriter::create`] calls this first.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::Container { reason });
        if self.frame_size < MIN_FRAME_SIZE
            || self.frame_size > MAX_FRAME_SIZE
            || self.frame_size % 4096 != 0
        {
            return bad(format!(
                "frame size {} is not a multiple of 4096 between {MIN_FRAME_SIZE} and {MAX_FRAME_SIZE}",
                self.frame_size
            ));
        }
        let levels = zstd::compression_level_range();
        if !levels.contains(&self.level) {
            return bad(format!(
                "compression level {} is outside zstd's range {}..={}",
                self.level,
                levels.start(),
                levels.end()
            ));
        }
        if self.threads == 0 {
            return bad("0 compression threads: at least 1 is needed".into());
        }
        Ok(())
    }
}

/// What [`ContainerWriter::finish`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The final path (the `.partial` file was renamed to it).
    pub path: PathBuf,
    /// Decompressed bytes.
    pub content_size: u64,
    /// Size of the file.
    pub compressed_size: u64,
    /// Number of data frames.
    pub frames: u64,
    /// How many of them were all zeros.
    pub zero_frames: u64,
    /// The content digest (FORMAT.md): lowercase hex BLAKE3 of the frame manifest.
    pub frames_blake3: String,
}

/// Writes a `.core.zst` container under a unique temporary name next to `path`
/// ([`OutputFile`]), renamed to `path` by [`finish`](Self::finish), or to `path.partial`
/// by [`abandon`](Self::abandon) when kept. Dropped or abandoned without keeping, the
/// temporary file is removed.
///
/// ```no_run
/// use coroner_formats::{ContainerWriter, Metadata, WriteOptions};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut w = ContainerWriter::create("vm1.core.zst".as_ref(), WriteOptions::default())?;
/// std::io::copy(&mut std::fs::File::open("vm1.elf")?, &mut w)?;
/// let done = w.finish(Metadata::new("coroner 0.1.0"))?;
/// println!("{} bytes, frames-blake3 {}", done.content_size, done.frames_blake3);
/// # Ok(()) }
/// ```
pub struct ContainerWriter {
    sink: Sink,
    pipe: Pipeline,
    final_path: PathBuf,
    frame_size: usize,
    current: Vec<u8>,
    bytes_in: u64,
    failed: Option<String>,
}

/// The destination and what has gone into it.
struct Sink {
    out: Box<dyn Destination>,
    written: u64,
    entries: Vec<Entry>,
    zero_frames: u64,
    /// The compressed form of an all-zero frame of `frame_size` bytes.
    zero_frame: Vec<u8>,
    /// Its BLAKE3.
    zero_digest: [u8; 32],
    frame_size: u32,
    manifest: FramesDigest,
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.append(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn put(&mut self, frame: &Ready) -> Result<()> {
        let (data, len, digest): (&[u8], u32, &[u8; 32]) = match frame {
            Ready::Zero => (&self.zero_frame, self.frame_size, &self.zero_digest),
            Ready::Data { bytes, len, digest } => (bytes, *len, digest),
        };
        let compressed = u32::try_from(data.len()).map_err(|_| Error::Container {
            reason: format!("a frame compressed to {} bytes", data.len()),
        })?;
        self.out.append(data)?;
        self.written += data.len() as u64;
        self.entries.push(Entry {
            compressed,
            decompressed: len,
        });
        self.manifest.push(digest);
        if let Ready::Zero = frame {
            self.zero_frames += 1;
        }
        Ok(())
    }
}

impl ContainerWriter {
    /// Starts the compression threads and creates the output under a fresh temporary
    /// name next to `path` (mode 0600; nothing planted there can redirect it).
    pub fn create(path: &Path, opts: WriteOptions) -> Result<Self> {
        opts.validate()?;
        Self::into_destination(Box::new(OutputFile::create(path)?), opts)
    }

    /// Writes into `out`: a file already created, or an upload.
    pub fn into_destination(out: Box<dyn Destination>, opts: WriteOptions) -> Result<Self> {
        opts.validate()?;
        let path = out.final_name().to_path_buf();
        let frame_size = u32::try_from(opts.frame_size).map_err(|_| Error::Container {
            reason: format!("frame size {} does not fit 32 bits", opts.frame_size),
        })?;
        let zero_frame = compress_frame(
            &mut None,
            opts.level,
            &vec![0u8; opts.frame_size],
            Vec::new(),
        )
        .map_err(|source| Error::Stream {
            what: "compress",
            source,
        })?;
        let zero_digest = frame_digest(&vec![0u8; opts.frame_size]);
        let pipe = Pipeline::start(opts.threads, opts.level, opts.frame_size)?;

        Ok(Self {
            sink: Sink {
                out,
                written: 0,
                entries: Vec::new(),
                zero_frames: 0,
                zero_frame,
                zero_digest,
                frame_size,
                manifest: FramesDigest::new(),
            },
            pipe,
            final_path: path,
            frame_size: opts.frame_size,
            current: Vec::with_capacity(opts.frame_size),
            bytes_in: 0,
            failed: None,
        })
    }

    /// Where the bytes go now (a temporary name next to the final path, an upload).
    pub fn partial_path(&self) -> &Path {
        self.sink.out.in_progress()
    }

    /// Content bytes accepted so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// Appends `data` to the content. Chunks of any size are fine; full frames are
    /// handed to the compression threads, and this blocks while too many are in flight.
    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        self.check_failed()?;
        let result = self.accept(data);
        self.record(result)
    }

    /// Appends `len` zero bytes without touching them: whole frames go out as the
    /// precompressed zero frame with its precomputed digest, so a run of zero memory
    /// costs neither hashing nor compression.
    pub fn write_zeros(&mut self, len: u64) -> Result<()> {
        self.check_failed()?;
        let result = self.accept_zeros(len);
        self.record(result)
    }

    /// Writes the last frame, the metadata (marked complete, with the content size and
    /// digest) and the seek table, fsyncs, renames `.partial` to the final path and fsyncs
    /// the directory.
    pub fn finish(mut self, mut meta: Metadata) -> Result<Finished> {
        self.check_failed()?;
        let frames_blake3 = self.flush_frames()?;
        meta.complete = true;
        meta.incomplete_reason = None;
        self.write_trailer(meta, &frames_blake3)?;
        let Sink {
            out,
            written,
            entries,
            zero_frames,
            ..
        } = self.sink;
        let path = out.commit()?;
        debug_assert_eq!(path, self.final_path);
        Ok(Finished {
            path,
            content_size: self.bytes_in,
            compressed_size: written,
            frames: entries.len() as u64,
            zero_frames,
            frames_blake3,
        })
    }

    /// Stops writing. With `keep_partial`, everything accepted so far is written,
    /// followed by metadata saying `complete: false` with `reason` and a seek table; the
    /// file is fsynced, renamed to the final path plus `.partial` (replacing whatever was
    /// there, never writing through it) and that path is returned. Without, the temporary
    /// file is deleted and `None` is returned.
    pub fn abandon(
        mut self,
        mut meta: Metadata,
        reason: &str,
        keep_partial: bool,
    ) -> Result<Option<PathBuf>> {
        if !keep_partial {
            // The content is being thrown away: worker errors no longer matter.
            self.pipe.abort();
            self.sink.out.discard()?;
            return Ok(None);
        }
        self.check_failed()?;
        let frames_blake3 = self.flush_frames()?;
        meta.complete = false;
        meta.incomplete_reason = Some(reason.to_string());
        self.write_trailer(meta, &frames_blake3)?;
        Ok(Some(self.sink.out.keep_partial()?))
    }

    fn check_failed(&self) -> Result<()> {
        match &self.failed {
            None => Ok(()),
            Some(first) => Err(Error::Container {
                reason: format!("an earlier error stopped this writer: {first}"),
            }),
        }
    }

    fn record<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            self.failed.get_or_insert_with(|| e.to_string());
        }
        result
    }

    fn accept(&mut self, mut data: &[u8]) -> Result<()> {
        let fs = self.frame_size;
        while !data.is_empty() {
            if self.current.is_empty() && data.len() >= fs {
                // A whole frame straight from the caller's buffer: no copy when zero.
                let (frame, rest) = data.split_at(fs);
                data = rest;
                self.bytes_in += fs as u64;
                if is_zero(frame) {
                    self.submit_zero()?;
                } else {
                    let mut buf = self.pipe.take_input(fs);
                    buf.extend_from_slice(frame);
                    self.submit(buf)?;
                }
            } else {
                let n = (fs - self.current.len()).min(data.len());
                let (part, rest) = data.split_at(n);
                data = rest;
                self.current.extend_from_slice(part);
                self.bytes_in += n as u64;
                if self.current.len() == fs {
                    let next = self.pipe.take_input(fs);
                    let frame = std::mem::replace(&mut self.current, next);
                    if is_zero(&frame) {
                        self.pipe.recycle_input(frame);
                        self.submit_zero()?;
                    } else {
                        self.submit(frame)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn accept_zeros(&mut self, mut len: u64) -> Result<()> {
        const CHUNK: [u8; 4096] = [0; 4096];
        let fs = self.frame_size as u64;
        while len > 0 {
            if self.current.is_empty() && len >= fs {
                self.bytes_in += fs;
                len -= fs;
                self.submit_zero()?;
            } else {
                // Up to the next frame boundary, through the ordinary path.
                let room = fs - self.current.len() as u64;
                let n = room.min(len).min(CHUNK.len() as u64) as usize;
                self.accept(&CHUNK[..n])?;
                len -= n as u64;
            }
        }
        Ok(())
    }

    fn next_seq(&mut self) -> Result<u64> {
        let seq = self.pipe.next_seq;
        if seq >= MAX_FRAMES {
            return Err(Error::Container {
                reason: format!(
                    "content exceeds {MAX_FRAMES} frames of {} bytes; use a larger frame size",
                    self.frame_size
                ),
            });
        }
        self.pipe.next_seq += 1;
        Ok(seq)
    }

    fn submit(&mut self, data: Vec<u8>) -> Result<()> {
        let seq = self.next_seq()?;
        self.pipe.send(Job { seq, data })?;
        self.pipe.data_pending += 1;
        self.settle(self.pipe.limit - 1)
    }

    fn submit_zero(&mut self) -> Result<()> {
        let seq = self.next_seq()?;
        self.pipe.ready.insert(seq, Ready::Zero);
        self.settle(self.pipe.limit - 1)
    }

    /// Writes finished frames in order until at most `max_data` frames holding data (and
    /// at most `MAX_ZERO_PENDING` of any kind) are not yet written. Zero frames hold no
    /// buffer, so they queue behind a slow data frame without counting: qemu's stream
    /// runs on through zero memory while the workers finish the data before it.
    fn settle(&mut self, max_data: u64) -> Result<()> {
        loop {
            while self.pipe.receive(false)? {}
            while let Some(frame) = self.pipe.ready.remove(&self.pipe.next_write) {
                self.sink.put(&frame)?;
                self.pipe.next_write += 1;
                if let Ready::Data { bytes, .. } = frame {
                    self.pipe.data_pending -= 1;
                    self.pipe.recycle_output(bytes);
                }
            }
            if self.pipe.data_pending <= max_data
                && self.pipe.next_seq - self.pipe.next_write <= MAX_ZERO_PENDING
            {
                return Ok(());
            }
            self.pipe.receive(true)?;
        }
    }

    /// Submits the last, possibly short, frame, writes every frame, stops the threads and
    /// returns the content digest (hex).
    fn flush_frames(&mut self) -> Result<String> {
        let result = (|| {
            if !self.current.is_empty() {
                let frame = std::mem::take(&mut self.current);
                self.submit(frame)?;
            }
            while self.pipe.next_write < self.pipe.next_seq {
                self.settle(0)?;
                if self.pipe.next_write < self.pipe.next_seq && self.pipe.outstanding == 0 {
                    return Err(Error::Container {
                        reason: format!("internal: frame {} never came", self.pipe.next_write),
                    });
                }
            }
            self.pipe.finish()?;
            Ok(std::mem::take(&mut self.sink.manifest).finish())
        })();
        self.record(result)
    }

    fn write_trailer(&mut self, mut meta: Metadata, frames_blake3: &str) -> Result<()> {
        meta.format = FORMAT_NAME.to_string();
        meta.format_version = FORMAT_VERSION;
        meta.content_size = self.bytes_in;
        meta.content_sha256 = String::new();
        meta.content_frames_blake3 = frames_blake3.to_string();
        meta.frame_size = self.frame_size as u64;
        let frame = metadata::encode_frame(&meta, self.sink.written)?;
        let table = seek_table::encode(&self.sink.entries)?;
        let result = self
            .sink
            .write(&frame)
            .and_then(|()| self.sink.write(&table));
        self.record(result)
    }
}

impl Write for ContainerWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        ContainerWriter::write_all(self, buf)
            .map(|()| buf.len())
            .map_err(into_io)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        ContainerWriter::write_all(self, buf).map_err(into_io)
    }

    /// Does nothing: frames are written when full, the rest by `finish`.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An `io::Error` carrying `e`, with the kind of the underlying OS error when there is
/// one (never `Interrupted`, which `io::copy` would retry).
fn into_io(e: Error) -> io::Error {
    let kind = match &e {
        Error::Io { source, .. } | Error::Stream { source, .. } => source.kind(),
        _ => io::ErrorKind::Other,
    };
    let kind = if kind == io::ErrorKind::Interrupted {
        io::ErrorKind::Other
    } else {
        kind
    };
    io::Error::new(kind, e)
}

fn new_compressor(level: i32) -> io::Result<Compressor<'static>> {
    let mut c = Compressor::new(level)?;
    c.set_parameter(CParameter::ChecksumFlag(true))?;
    c.set_parameter(CParameter::ContentSizeFlag(true))?;
    Ok(c)
}

/// Compresses `data` into one zstd frame in `out`, creating the compressor on first use.
fn compress_frame(
    slot: &mut Option<Compressor<'static>>,
    level: i32,
    data: &[u8],
    mut out: Vec<u8>,
) -> io::Result<Vec<u8>> {
    let c = match slot {
        Some(c) => c,
        None => slot.insert(new_compressor(level)?),
    };
    out.clear();
    out.reserve(zstd::zstd_safe::compress_bound(data.len()));
    c.compress_to_buffer(data, &mut out)?;
    Ok(out)
}

/// Content bytes the frames holding data may take between "cut" and "written" (at
/// least two frames a worker): enough for qemu's stream to run ahead of the workers.
pub(super) const IN_FLIGHT_BYTES: usize = 32 << 20;

/// Most frames of any kind between "cut" and "written" (zero frames take a map entry).
const MAX_ZERO_PENDING: u64 = 1 << 20;

struct Job {
    seq: u64,
    data: Vec<u8>,
}

struct Done {
    seq: u64,
    input: Vec<u8>,
    digest: [u8; 32],
    output: io::Result<Vec<u8>>,
}

enum Ready {
    /// An all-zero frame of `frame_size` bytes: the precompressed bytes are written.
    Zero,
    /// A compressed frame of `len` content bytes with that content's BLAKE3.
    Data {
        bytes: Vec<u8>,
        len: u32,
        digest: [u8; 32],
    },
}

/// The compression threads and the frames in flight.
struct Pipeline {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    out_pool: Arc<Mutex<Vec<Vec<u8>>>>,
    in_pool: Vec<Vec<u8>>,
    ready: BTreeMap<u64, Ready>,
    next_seq: u64,
    next_write: u64,
    outstanding: usize,
    /// Most frames holding data between "cut" and "written".
    limit: u64,
    /// Frames holding data cut and not yet written.
    data_pending: u64,
}

impl Pipeline {
    fn start(threads: usize, level: i32, frame_size: usize) -> Result<Self> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut pipe = Pipeline {
            jobs: Some(job_tx),
            done: done_rx,
            stop: Arc::new(AtomicBool::new(false)),
            workers: Vec::with_capacity(threads),
            out_pool: Arc::new(Mutex::new(Vec::new())),
            in_pool: Vec::new(),
            ready: BTreeMap::new(),
            next_seq: 0,
            next_write: 0,
            outstanding: 0,
            limit: (2 * threads).max(IN_FLIGHT_BYTES / frame_size) as u64,
            data_pending: 0,
        };
        for i in 0..threads {
            let (jobs, done) = (Arc::clone(&job_rx), done_tx.clone());
            let (pool, stop) = (Arc::clone(&pipe.out_pool), Arc::clone(&pipe.stop));
            let handle = std::thread::Builder::new()
                .name(format!("coroner-zst-{i}"))
                .spawn(move || worker(level, &jobs, &done, &pool, &stop))
                .map_err(|source| Error::Stream {
                    what: "start a compression thread",
                    source,
                })?;
            pipe.workers.push(handle);
        }
        Ok(pipe)
    }

    fn send(&mut self, job: Job) -> Result<()> {
        match &self.jobs {
            Some(tx) if tx.send(job).is_ok() => {
                self.outstanding += 1;
                Ok(())
            }
            _ => Err(workers_gone()),
        }
    }

    /// Moves one finished job into `ready`; false when `block` is false and none is done.
    fn receive(&mut self, block: bool) -> Result<bool> {
        if self.outstanding == 0 {
            if block {
                return Err(Error::Container {
                    reason: format!(
                        "internal: waiting for frame {} but no frame is being compressed",
                        self.next_write
                    ),
                });
            }
            return Ok(false);
        }
        let done = if block {
            self.done.recv().map_err(|_| workers_gone())?
        } else {
            match self.done.try_recv() {
                Ok(done) => done,
                Err(TryRecvError::Empty) => return Ok(false),
                Err(TryRecvError::Disconnected) => return Err(workers_gone()),
            }
        };
        self.outstanding -= 1;
        // Cannot truncate: a frame holds at most MAX_FRAME_SIZE bytes.
        let len = done.input.len() as u32;
        self.recycle_input(done.input);
        let bytes = done.output.map_err(|source| Error::Stream {
            what: "compress",
            source,
        })?;
        let digest = done.digest;
        self.ready
            .insert(done.seq, Ready::Data { bytes, len, digest });
        Ok(true)
    }

    fn pool_cap(&self) -> usize {
        self.limit as usize + 2
    }

    fn take_input(&mut self, frame_size: usize) -> Vec<u8> {
        self.in_pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(frame_size))
    }

    fn recycle_input(&mut self, mut buf: Vec<u8>) {
        if self.in_pool.len() < self.pool_cap() {
            buf.clear();
            self.in_pool.push(buf);
        }
    }

    fn recycle_output(&mut self, buf: Vec<u8>) {
        let cap = self.pool_cap();
        let mut pool = self.out_pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < cap {
            pool.push(buf);
        }
    }

    /// Once every frame is written: closes the job channel and joins the workers.
    fn finish(&mut self) -> Result<()> {
        self.jobs = None;
        if self.join_workers() {
            Ok(())
        } else {
            Err(Error::Container {
                reason: "a compression thread panicked".into(),
            })
        }
    }

    /// Stops every thread, dropping queued frames, and joins them. Idempotent.
    fn abort(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.jobs = None;
        self.join_workers();
    }

    /// Joins the workers (they exit once the job channel is closed); false if one panicked.
    fn join_workers(&mut self) -> bool {
        let mut ok = true;
        for handle in self.workers.drain(..) {
            ok &= handle.join().is_ok();
        }
        ok
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.abort();
    }
}

fn workers_gone() -> Error {
    Error::Stream {
        what: "compress",
        source: io::Error::other("the compression threads have stopped"),
    }
}

fn worker(
    level: i32,
    jobs: &Mutex<Receiver<Job>>,
    done: &Sender<Done>,
    out_pool: &Mutex<Vec<Vec<u8>>>,
    stop: &AtomicBool,
) {
    let mut compressor = None;
    loop {
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(Job { seq, data }) = job else { return };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let out = out_pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        let digest = frame_digest(&data);
        let output = std::panic::catch_unwind(AssertUnwindSafe(|| {
            compress_frame(&mut compressor, level, &data, out)
        }))
        .unwrap_or_else(|_| {
            compressor = None;
            Err(io::Error::other("the compressor panicked"))
        });
        if done
            .send(Done {
                seq,
                input: data,
                digest,
                output,
            })
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        let ok = WriteOptions {
            frame_size: 4096,
            level: 3,
            threads: 1,
        };
        assert!(ok.validate().is_ok());
        assert!(WriteOptions::default().validate().is_ok());
        for (fs, level, threads) in [
            (4095, 3, 1),
            (0, 3, 1),
            (4096 + 512, 3, 1),
            ((64 << 20) + 4096, 3, 1),
            (4096, 3, 0),
            (4096, 1000, 1),
        ] {
            let o = WriteOptions {
                frame_size: fs,
                level,
                threads,
            };
            assert!(
                matches!(o.validate(), Err(Error::Container { .. })),
                "{o:?}"
            );
        }
    }
}
