//! The pipe from qemu to the container: a reader thread that drains qemu's dump stream
//! into a [`ContainerWriter`] as the bytes arrive. No uncompressed copy touches the disk.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coroner_formats::kdump::KdumpStream;
use coroner_formats::{ContainerWriter, PageSpotter};
use rustix::event::{poll, PollFd, PollFlags, Timespec};

/// Bytes of the stream's start kept for header checks (headers and notes of thousands of
/// vCPUs fit).
pub const HEAD_MAX: usize = 8 << 20;

/// Where the stream's bytes go.
pub enum Intake {
    /// qemu's ELF, kept byte for byte.
    Elf(Box<ContainerWriter>),
    /// qemu's flattened kdump stream, turned into an ELF core as it arrives.
    Kdump(Box<KdumpStream>),
}

impl Intake {
    /// The container, to abandon after a failure.
    pub fn into_writer(self) -> ContainerWriter {
        match self {
            Intake::Elf(w) => *w,
            Intake::Kdump(k) => k.into_writer(),
        }
    }

    /// Content bytes written into the container so far.
    pub fn bytes_in(&self) -> u64 {
        match self {
            Intake::Elf(w) => w.bytes_in(),
            Intake::Kdump(k) => k.bytes_in(),
        }
    }
}

/// How a drain ended.
#[derive(Debug)]
pub enum DrainEnd {
    /// qemu closed its end: the dump finished, failed, or qemu died.
    Eof,
    /// The interrupt flag was set.
    Interrupted,
    /// No byte came for the stall limit while qemu kept its end open.
    Stalled,
    /// Writing the container failed.
    WriteFailed(coroner_formats::Error),
    /// qemu's stream is not what its format says (a kdump stream that does not parse).
    StreamInvalid(coroner_formats::Error),
    /// Reading the pipe failed.
    ReadFailed(std::io::Error),
}

/// Everything the drain hands back.
pub struct Drained {
    /// Where the bytes went, to finish or abandon.
    pub intake: Intake,
    /// The first bytes of the stream.
    pub head: Vec<u8>,
    /// Why it stopped.
    pub end: DrainEnd,
    /// Pages that looked like the guest's VMCOREINFO.
    pub vmcoreinfo_candidates: Vec<u64>,
}

/// Reads `pipe` into `writer` until EOF, an error, `interrupt`, or (with `stall`) no byte
/// for that long. `received` counts the bytes for progress. Returning drops the read end,
/// so qemu's next write fails with EPIPE.
///
/// The pipe is read without blocking and polled only when it is empty: a poll before
/// every read cost about 5% of a capture's CPU while qemu kept it full.
pub fn drain(
    pipe: OwnedFd,
    mut intake: Intake,
    received: &AtomicU64,
    interrupt: &AtomicBool,
    stall: Option<Duration>,
) -> Drained {
    let mut head = Vec::new();
    let mut spotter = PageSpotter::new();
    let mut buf = vec![0u8; 1 << 20];
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: 200_000_000,
    };
    let mut last_byte = Instant::now();
    let mut empty = false;
    if let Err(e) = rustix::fs::fcntl_setfl(&pipe, rustix::fs::OFlags::NONBLOCK) {
        return Drained {
            intake,
            head,
            end: DrainEnd::ReadFailed(e.into()),
            vmcoreinfo_candidates: Vec::new(),
        };
    }
    let end = loop {
        if interrupt.load(Ordering::Relaxed) {
            break DrainEnd::Interrupted;
        }
        if stall.is_some_and(|limit| last_byte.elapsed() > limit) {
            break DrainEnd::Stalled;
        }
        if empty {
            let mut fds = [PollFd::new(&pipe, PollFlags::IN)];
            match poll(&mut fds, Some(&tick)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => break DrainEnd::ReadFailed(e.into()),
            }
        }
        let n = match rustix::io::read(&pipe, &mut buf) {
            Ok(0) => break DrainEnd::Eof,
            Ok(n) => n,
            Err(rustix::io::Errno::AGAIN) => {
                empty = true;
                continue;
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => break DrainEnd::ReadFailed(e.into()),
        };
        empty = false;
        match &mut intake {
            Intake::Elf(writer) => {
                if head.len() < HEAD_MAX {
                    let take = n.min(HEAD_MAX - head.len());
                    head.extend_from_slice(&buf[..take]);
                }
                spotter.feed(writer.bytes_in(), &buf[..n], &head);
                if let Err(e) = writer.write_all(&buf[..n]) {
                    break DrainEnd::WriteFailed(e);
                }
            }
            Intake::Kdump(k) => match k.feed(&buf[..n]) {
                Ok(()) => {}
                Err(e @ coroner_formats::Error::Kdump { .. }) => break DrainEnd::StreamInvalid(e),
                Err(e) => break DrainEnd::WriteFailed(e),
            },
        }
        received.fetch_add(n as u64, Ordering::Relaxed);
        last_byte = Instant::now();
    };
    drop(pipe);
    Drained {
        intake,
        head,
        end,
        vmcoreinfo_candidates: spotter.found().to_vec(),
    }
}
